"""``pm printer list|add|rename|move|remove`` and ``pm agent list|retire``: printers and
agents that come and go, on a running hub (its HTTP API, :mod:`pm.hub_client`).

Adding (through a connected agent, which keeps the printer across its restarts),
renaming and moving take a manager's token, removing too; retiring an agent an
admin's. What each does at the hub: docs/operations.md, "Printers and agents that
come and go".
"""

from __future__ import annotations

import argparse
from typing import Any

from pm.hub_client import add_hub_client_arguments, call_hub


def add_printer_actions(psub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``list``, ``add``, ``rename``, ``move``, ``remove`` under ``pm printer``."""
    c = psub.add_parser("list", help="every printer the hub serves")
    add_hub_client_arguments(c)
    c = psub.add_parser(
        "add",
        help="drive one more printer through a connected agent (kept across its restarts)",
    )
    c.add_argument("--agent", type=int, required=True, metavar="ID", help="pm agent list shows it")
    c.add_argument("uri", metavar="URI", help="tcp://HOST:PORT, usb://VID:PID, serial:///dev/...")
    c.add_argument("--name", help="what operators see (default: from the address)")
    c.add_argument("--station", help="the station it prints for, e.g. kitchen")
    add_hub_client_arguments(c)
    c = psub.add_parser("rename", help="give a printer a new name")
    c.add_argument("printer_id", type=int, metavar="ID")
    c.add_argument("name", metavar="NAME")
    add_hub_client_arguments(c)
    c = psub.add_parser("move", help="move a printer to another station")
    c.add_argument("printer_id", type=int, metavar="ID")
    c.add_argument("station", metavar="STATION")
    add_hub_client_arguments(c)
    c = psub.add_parser(
        "remove",
        help="forget a printer: gone from lists, its alerts cleared, refused if an agent "
        "registers it again (take it out of that agent's --printer list)",
    )
    c.add_argument("printer_id", type=int, metavar="ID")
    add_hub_client_arguments(c)


def add_agent_actions(parser: argparse.ArgumentParser) -> None:
    """``pm agent list`` and ``pm agent retire ID`` (``pm agent`` alone runs an agent)."""
    asub = parser.add_subparsers(dest="agent_command", metavar="[ACTION]")
    c = asub.add_parser("list", help="the agents the hub knows (retired ones left out)")
    add_hub_client_arguments(c)
    c = asub.add_parser(
        "retire",
        help="forget an agent for good: its license revoked, its printers retired, no "
        "alerts about it (now or after a restart)",
    )
    c.add_argument("agent_id", type=int, metavar="ID")
    add_hub_client_arguments(c)


def _table(header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def run_printer_command(args: argparse.Namespace) -> int:
    action = args.printer_command
    command = f"printer {action}"
    if action == "list":
        answer = call_hub(args, "GET", "/api/v1/printers", command=command)
        rows = [
            [p["id"], p["name"], p.get("station") or "-", p["status"], p.get("agent_id") or "-",
             p["address"]]
            for p in answer.get("printers", [])
        ]  # fmt: skip
        _table(["ID", "NAME", "STATION", "STATUS", "AGENT", "ADDRESS"], rows)
        return 0
    if action == "add":
        body = {"agent_id": args.agent, "uri": args.uri, "name": args.name, "station": args.station}
        answer = call_hub(
            args,
            "POST",
            "/api/v1/printers",
            {k: v for k, v in body.items() if v is not None},
            command=command,
        )
        printer = answer["printer"]
        print(
            f"printer {printer['id']}: {printer['name']} (station {printer.get('station')}, "
            f"{printer['status']}) added on agent {args.agent}"
        )
        return 0
    printer_id = args.printer_id
    if action in ("rename", "move"):
        change = {"name": args.name} if action == "rename" else {"station": args.station}
        answer = call_hub(args, "PATCH", f"/api/v1/printers/{printer_id}", change, command=command)
        printer = answer["printer"]
        print(f"printer {printer['id']}: {printer['name']} (station {printer.get('station')})")
        return 0
    call_hub(args, "DELETE", f"/api/v1/printers/{printer_id}", command=command)
    print(f"printer {printer_id} removed; its alerts are cleared")
    return 0


def run_agent_action(args: argparse.Namespace) -> int:
    command = f"agent {args.agent_command}"
    if args.agent_command == "list":
        answer = call_hub(args, "GET", "/api/v1/agents", command=command)
        rows = [
            [a["id"], a.get("name") or "-", a.get("hostname") or "-",
             "connected" if a.get("connected") else "disconnected",
             ",".join(map(str, a.get("printers") or [])) or "-"]
            for a in answer.get("agents", [])
        ]  # fmt: skip
        _table(["ID", "NAME", "HOST", "LINK", "PRINTERS"], rows)
        return 0
    answer = call_hub(args, "POST", f"/api/v1/agents/{args.agent_id}/retire", {}, command=command)
    printers = answer.get("printers") or []
    print(
        f"agent {args.agent_id} retired: its license is revoked and "
        f"{len(printers)} printer(s) retired; no alerts will follow"
    )
    return 0
