"""The ``pm`` command: every subcommand of the branch box.

The composition root: each component brings its own options (``pm_hub.command``,
``pm_tui.command``, ``pm_agent.sim.cli``, ``pm_agent.discovery``) and this module puts
them under one command. Modules that load a framework (aiohttp, python-escpos,
Textual) are imported inside the command that needs them, so ``pm --help`` is quick.
Commands from other installed packages (``pm bench`` from the bench extra) are found
through the ``printermaster.commands`` entry points.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pm_agent.discovery.options import add_discovery_arguments, discovery_config
from pm_core import __version__
from pm_core.event_loop import run_until_signalled
from pm_core.logs import setup_logging
from pm_core.private_files import read_secret
from pm_core.sql import DatabaseUnavailable
from pm_hub.command import (
    SERVER_DEFAULTS,
    add_database_argument,
    add_hub_arguments,
    add_mdns_argument,
    add_settings_arguments,
    add_tls_arguments,
    add_upstream_arguments,
    check_upstream,
    run_hub,
    settings_from,
    tls_from,
    upstream_from,
)
from pm_tui.command import add_tui_arguments, run_tui

#: Entry points that add a subcommand: each names a module (or object) with ``HELP``,
#: ``add_arguments(parser)`` and ``run(args) -> int``.
PLUGIN_GROUP = "printermaster.commands"

BENCH_MISSING = (
    "pm bench: the benchmark is not installed. It comes with the bench extra:\n"
    "  pip install 'printermaster[bench]'     (from a checkout: make bench)"
)


def _printer_specs(values: list[str] | None) -> list[Any]:
    from pm_agent.printer_uri import parse_printer_spec

    return [parse_printer_spec(v) for v in values or []]


def _hub_branch_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hub-branch",
        default=os.environ.get("PM_HUB_BRANCH"),
        metavar="NAME",
        help="without --hub: take the hub announced for this branch name when several "
        "hubs share the network (or PM_HUB_BRANCH)",
    )


def _ca_file_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=os.environ.get("PM_CA_FILE"),
        metavar="PEM",
        help="trust the hub's certificate from this CA (a private one) for https:// "
        "(default: the system's CAs; or PM_CA_FILE)",
    )


def _poll_interval_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between printer status queries (default 2; or PM_POLL_INTERVAL, "
        "poll_interval in --config)",
    )


def _font_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--font",
        action="append",
        metavar="PATH",
        help="a font file or folder to draw text the printer's code pages lack, tried "
        "before the system's fonts (repeatable; see docs/printers.md)",
    )


def _use_fonts(command: str, args: argparse.Namespace) -> bool:
    """Apply ``--font``; False (after saying why) when a path is no font."""
    if not getattr(args, "font", None):
        return True
    from pm_core.fonts import use_fonts

    try:
        use_fonts(args.font)
    except ValueError as exc:
        print(f"pm {command}: --font {exc}", file=sys.stderr)
        return False
    return True


def _agent_health_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ping-interval",
        type=float,
        metavar="S",
        help="seconds between the agent's health pings (default 15, or agent_ping_interval_s)",
    )
    parser.add_argument(
        "--report-interval",
        type=float,
        metavar="S",
        help="seconds between the agent's health reports (default 300, or agent_report_interval_s)",
    )


def _agent_health_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "agent_ping_interval_s": args.ping_interval,
        "agent_report_interval_s": args.report_interval,
    }


def _credential_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="hub data dir (holds the signing secret)")
    parser.add_argument("--config", type=Path, help="TOML settings file (token lifetimes)")
    add_database_argument(parser)


def _plugins() -> dict[str, Any]:
    """Subcommands that installed packages add (``pm bench``), by name."""
    found: dict[str, Any] = {}
    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            found[entry.name] = entry.load()
        except Exception as exc:  # a broken extra must not break the other commands
            print(f"pm: warning: the {entry.name!r} command cannot load: {exc}", file=sys.stderr)
    return found


def build_parser(plugins: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    plugins = _plugins() if plugins is None else plugins
    parser = argparse.ArgumentParser(
        prog="pm",
        description="PrinterMaster: keeps a restaurant's thermal printers discovered, "
        "watched and printing.",
    )
    parser.add_argument("--version", action="version", version=f"pm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("up", help="hub + agent in one process: the headless branch service")
    add_settings_arguments(p)
    p.add_argument(
        "--printer",
        action="append",
        metavar="[NAME=]URI[#STATION]",
        help="a printer the agent drives, e.g. Kitchen-1=tcp://10.0.0.5:9100#kitchen (repeatable)",
    )
    p.add_argument("--sim", type=int, default=0, metavar="N", help="also run N simulated printers")
    p.add_argument("--sim-port", type=int, default=9101, help="first simulated printer port")
    p.add_argument("--sim-control-port", type=int, default=9180, help="simulator control port")
    p.add_argument(
        "--sim-cloudprnt",
        action="store_true",
        help="also run a simulated Star CloudPRNT printer that polls this hub",
    )
    _poll_interval_flag(p)
    _font_flag(p)
    p.add_argument("--branch-name", help="name of this branch (shown in the dashboard)")
    add_upstream_arguments(p)
    add_mdns_argument(p)
    add_tls_arguments(p)
    _agent_health_options(p)
    add_discovery_arguments(p)

    p = sub.add_parser("hub", help="the hub alone")
    add_hub_arguments(p)

    p = sub.add_parser("agent", help="the agent alone, connecting to a hub")
    add_settings_arguments(p, server=False)
    p.add_argument(
        "--hub",
        default=os.environ.get("PM_HUB"),
        help="hub URL, e.g. http://10.0.0.2:3001 (default: the hub announced on mDNS)",
    )
    p.add_argument(
        "--license",
        default=os.environ.get("PM_LICENSE"),
        help="license key (or PM_LICENSE; prefer --license-file: ps shows arguments)",
    )
    p.add_argument(
        "--license-file",
        type=Path,
        default=os.environ.get("PM_LICENSE_FILE"),
        metavar="FILE",
        help="read the license key from FILE (or PM_LICENSE_FILE)",
    )
    p.add_argument("--printer", action="append", metavar="[NAME=]URI[#STATION]", help="repeatable")
    _poll_interval_flag(p)
    _font_flag(p)
    p.add_argument("--name", help="agent name shown to operators (default: host name)")
    _ca_file_flag(p)
    _hub_branch_flag(p)
    _agent_health_options(p)
    add_discovery_arguments(p)

    p = sub.add_parser("tui", help="the terminal dashboard")
    add_tui_arguments(p)

    p = sub.add_parser("demo", help="hub + agent + simulated printers + the dashboard, zero set-up")
    add_settings_arguments(p)
    p.add_argument("--printers", type=int, default=3, help="how many simulated printers")
    p.add_argument(
        "--headless", action="store_true", help="run the branch box without the dashboard"
    )

    from pm_agent.sim.cli import add_sim_arguments, add_simctl_arguments

    p = sub.add_parser("sim", help="simulated ESC/POS network printers")
    add_sim_arguments(p)
    p.add_argument("--log-level", default=os.environ.get("PM_LOG_LEVEL", "INFO"))
    p = sub.add_parser("simctl", help="switch a simulated printer's state, list its receipts")
    add_simctl_arguments(p)

    from pm_agent.discovery.command import add_discover_command_arguments

    p = sub.add_parser("discover", help="find printers (scan, mDNS, USB, serial) and list them")
    add_discover_command_arguments(p)
    p.add_argument("--log-level", default=os.environ.get("PM_LOG_LEVEL", "WARNING"))

    p = sub.add_parser("token", help="operator and branch tokens: create, list, revoke")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    t = tsub.add_parser("create", help="print a new token (its id goes to stderr)")
    t.add_argument(
        "--role", required=True, choices=["admin", "manager", "operator", "viewer", "branch"]
    )
    t.add_argument(
        "--branch", action="append", type=int, help="branch id the token may see (repeatable)"
    )
    t.add_argument("--company", type=int, default=1, help="company id (default 1)")
    t.add_argument(
        "--ttl",
        default="8h",
        help="lifetime, e.g. 30m, 8h, 30d (default 8h; at most 12h for people and 30d for "
        "branch links: token_max_ttl_s, branch_token_max_ttl_s)",
    )
    t.add_argument("--sub", help="who the token is for (shown in logs and job history)")
    _credential_options(t)
    t = tsub.add_parser("list", help="tokens still usable (--all: also expired and revoked)")
    t.add_argument("--all", action="store_true", help="also expired and revoked tokens")
    _credential_options(t)
    t = tsub.add_parser("revoke", help="revoke a token by id (and the tokens refreshed from it)")
    t.add_argument("token_id", metavar="ID", help="the id `pm token list` shows")
    _credential_options(t)

    p = sub.add_parser("license", help="agent license keys: create, list, revoke")
    lsub = p.add_subparsers(dest="license_command", metavar="ACTION")
    lsub.required = True
    lc = lsub.add_parser("create", help="print a new agent license key (shown once)")
    lc.add_argument("--branch", type=int, help="branch the agent serves (default: first branch)")
    lc.add_argument("--label", help="a note to recognise the key later")
    _credential_options(lc)
    lc = lsub.add_parser("list", help="every license key: prefix, branch, device, state")
    _credential_options(lc)
    lc = lsub.add_parser(
        "revoke", help="revoke a license (a connected agent using it is disconnected)"
    )
    lc.add_argument(
        "license", metavar="ID|PREFIX", help="the id or key prefix `pm license list` shows"
    )
    _credential_options(lc)

    p = sub.add_parser("printer", help="printers that poll the hub: Star CloudPRNT")
    psub = p.add_subparsers(dest="printer_command", metavar="KIND")
    psub.required = True
    pc = psub.add_parser("cloudprnt", help="Star CloudPRNT printers: add, list, remove")
    csub = pc.add_subparsers(dest="cloudprnt_command", metavar="ACTION")
    csub.required = True
    ca = csub.add_parser("add", help="enroll a printer by MAC; prints its secret (shown once)")
    ca.add_argument("--mac", required=True, help="the printer's MAC (on its self-test print)")
    ca.add_argument("--name", required=True, help="the name the dashboard shows")
    ca.add_argument(
        "--dots", type=int, default=576, help="dots per line: 576 (80 mm), 384 (58 mm) [576]"
    )
    ca.add_argument("--station", help="the station it serves (kitchen, bar, ...)")
    _credential_options(ca)
    cl = csub.add_parser("list", help="the enrolled CloudPRNT printers")
    _credential_options(cl)
    cr = csub.add_parser("remove", help="take a printer's enrollment back (history stays)")
    cr.add_argument("--mac", required=True)
    _credential_options(cr)

    for name, plugin in sorted(plugins.items()):
        p = sub.add_parser(name, help=plugin.HELP)
        plugin.add_arguments(p)
    if "bench" not in plugins:
        p = sub.add_parser(
            "bench",
            help="load benchmark (installed with the bench extra: pip install "
            "'printermaster[bench]')",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    plugins = _plugins()
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["bench"] and "bench" not in plugins and not {"-h", "--help"} & set(words):
        print(BENCH_MISSING, file=sys.stderr)  # whatever options follow
        return 2
    args = build_parser(plugins).parse_args(argv)
    try:
        return _dispatch(args, plugins)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, DatabaseUnavailable) as exc:
        print(f"pm {args.command}: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, plugins: dict[str, Any]) -> int:
    command = args.command
    if command in plugins:
        return int(plugins[command].run(args))
    if command in ("up", "agent", "sim", "demo", "discover"):
        setup_logging(args.log_level)
    if command in ("up", "agent") and not _use_fonts(command, args):
        return 2
    if command == "hub":
        return run_hub(args)
    if command == "up":
        from pm.branch_box import run_up

        settings = settings_from(
            args,
            defaults=SERVER_DEFAULTS,
            branch_name=args.branch_name,
            mdns=args.mdns,
            poll_interval=args.poll_interval,
            **upstream_from(args),
            **tls_from(args),
            **_agent_health_settings(args),
        )
        if not check_upstream("up", settings):
            return 2
        return run_until_signalled(
            run_up(
                settings,
                printers=_printer_specs(args.printer),
                sim_count=args.sim,
                sim_cloudprnt=args.sim_cloudprnt,
                sim_port=args.sim_port,
                sim_control_port=args.sim_control_port,
                poll_interval=settings.poll_interval,
                discovery=discovery_config(args),
            )
        )
    if command == "agent":
        from pm.branch_box import run_agent

        if not args.license and args.license_file:
            args.license = read_secret(Path(args.license_file), "license key")
        if not args.license:
            print(
                "pm agent: --license-file FILE (or --license KEY, PM_LICENSE) is required; "
                "create a key with `pm license create` on the hub",
                file=sys.stderr,
            )
            return 2
        settings = settings_from(
            args, poll_interval=args.poll_interval, **_agent_health_settings(args)
        )
        return run_until_signalled(
            run_agent(
                hub_url=args.hub,
                license_key=args.license,
                data_dir=settings.data_dir,
                settings=settings,
                printers=_printer_specs(args.printer),
                poll_interval=settings.poll_interval,
                name=args.name,
                discovery=discovery_config(args),
                mdns_interfaces=args.mdns_interface,
                hub_branch=args.hub_branch,
                ca_file=args.ca_file,
            )
        )
    if command == "tui":
        return run_tui(args)
    if command == "demo":
        from pm.demo import run_demo

        return run_demo(
            settings_from(args),
            printers=args.printers,
            headless=args.headless,
            data_dir_given=args.data_dir is not None,
        )
    if command == "sim":
        from pm_agent.sim.cli import run_sim

        return run_until_signalled(run_sim(args))
    if command == "simctl":
        from pm_agent.sim.cli import run_simctl

        return run_simctl(args)
    if command == "discover":
        from pm_agent.discovery.command import run_discover

        return run_until_signalled(run_discover(args))
    if command == "token":
        return _token(args)
    if command == "license":
        return _license(args)
    if command == "printer":
        return _cloudprnt(args)
    if command == "bench":  # not installed (main() answers before parsing when options follow)
        print(BENCH_MISSING, file=sys.stderr)
        return 2
    raise AssertionError(command)


def _when(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(value)) if value else "-"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def _token(args: argparse.Namespace) -> int:
    from pm_hub import credential_admin as credentials

    settings = settings_from(args)
    if args.token_command == "create":
        issued = credentials.issue_token(
            settings,
            role=args.role,
            company_id=args.company,
            branch_ids=args.branch,
            ttl_seconds=_ttl(args.ttl),
            sub=args.sub,
        )
        print(issued.token)
        print(f"token id {issued.token_id} (pm token revoke {issued.token_id})", file=sys.stderr)
        return 0
    if args.token_command == "list":
        now = time.time()
        rows = []
        for t in credentials.list_tokens(
            settings.data_dir, include_ended=args.all, database=settings.database_url
        ):
            state = (
                "revoked" if t["revoked_at"] else "expired" if t["expires_at"] <= now else "valid"
            )
            branches = ",".join(map(str, t["branch_ids"])) if t["branch_ids"] else "all"
            session = "" if t["session"] == t["jti"] else f"from {t['session']}"
            rows.append(
                [t["jti"], t["role"], t["sub"], str(t["company_id"]), branches,
                 _when(t["issued_at"]), _when(t["expires_at"]), state, session]
            )  # fmt: skip
        header = [
            "ID",
            "ROLE",
            "SUB",
            "COMPANY",
            "BRANCHES",
            "ISSUED",
            "EXPIRES",
            "STATE",
            "SESSION",
        ]
        _table(header, rows)
        return 0
    count = credentials.revoke_token(
        settings.data_dir, args.token_id, database=settings.database_url
    )
    print(
        f"revoked {count} token(s); a running hub closes their connections within a second"
        if count
        else f"token {args.token_id} was already revoked"
    )
    return 0


def _ttl(text: str) -> int:
    from pm_hub import auth

    return auth.parse_ttl(text)


def _license(args: argparse.Namespace) -> int:
    from pm_hub import credential_admin as credentials

    settings = settings_from(args)
    data_dir, database = settings.data_dir, settings.database_url
    if args.license_command == "create":
        key = credentials.create_license_offline(
            data_dir, branch_id=args.branch, label=args.label, database=database
        )
        print(key)
        print(
            "Keep this key: it is shown only once. Start an agent with:\n"
            f"  pm agent --hub http://HUB:3001 --license {key} --printer tcp://PRINTER:9100",
            file=sys.stderr,
        )
        return 0
    if args.license_command == "list":
        rows = [
            [str(k["id"]), k["key_prefix"] + "…", str(k["branch_id"]), k["label"] or "",
             k["device_id"] or "(unused)", k["agent_name"] or "", _when(k["created_at"]),
             "revoked " + _when(k["revoked_at"]) if k["revoked_at"] else "valid"]
            for k in credentials.list_licenses(data_dir, database=database)
        ]  # fmt: skip
        _table(["ID", "KEY", "BRANCH", "LABEL", "DEVICE", "AGENT", "CREATED", "STATE"], rows)
        return 0
    row = credentials.revoke_license(data_dir, args.license, database=database)
    print(
        f"license {row['id']} ({row['key_prefix']}…) revoked; a running hub disconnects its "
        "agent within a second"
    )
    return 0


def _cloudprnt(args: argparse.Namespace) -> int:
    from pm_hub import cloudprnt_admin

    settings = settings_from(args)
    data_dir, database = settings.data_dir, settings.database_url
    if args.cloudprnt_command == "add":
        row, secret = cloudprnt_admin.enroll_printer(
            data_dir,
            mac=args.mac,
            name=args.name,
            dots=args.dots,
            station=args.station,
            database=database,
        )
        print(secret)
        print(
            f"CloudPRNT printer {row['name']} ({row['mac']}) is printer {row['id']}. Keep the "
            "secret: it is shown only once. On the printer's web page (CloudPRNT settings) "
            "enter:\n"
            "  Server URL: http://HUB:3001/cloudprnt   (https:// with --tls-cert)\n"
            f"  User name: {row['mac'].replace(':', '')} (any name works)   "
            "Password: the secret above\n"
            "  Polling interval: 5 seconds (see docs/printers.md)",
            file=sys.stderr,
        )
        return 0
    if args.cloudprnt_command == "list":
        rows = [
            [r["mac"], str(r["printer_id"]), r["name"], str(r["dots"]), r["status"],
             _when(r["last_seen"])]
            for r in cloudprnt_admin.list_printers(data_dir, database=database)
        ]  # fmt: skip
        _table(["MAC", "PRINTER", "NAME", "DOTS", "STATUS", "LAST POLL"], rows)
        return 0
    cloudprnt_admin.remove_printer(data_dir, args.mac, database=database)
    print(f"CloudPRNT printer {args.mac} removed; a running hub refuses it within seconds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
