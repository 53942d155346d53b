"""The glue for ``pm sim`` (run simulated printers) and ``pm simctl`` (talk to the
control server of a running ``pm sim``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pm_agent.sim.cloudprnt_client import SimulatedCloudPrntPrinter
from pm_agent.sim.fleet import DEFAULT_CONTROL_PORT, SimulatorFleet
from pm_agent.sim.printer import DEFAULT_PORT, HOST, PRINTER_STATES, SIM_LANGUAGES
from pm_core.private_files import read_secret


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pm sim``."""
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port of the first printer; the others follow (0: free ports) [%(default)s]",
    )
    parser.add_argument("--count", type=int, default=1, help="number of printers [%(default)s]")
    parser.add_argument(
        "--host",
        default=HOST,
        choices=[HOST],
        help="listen address; simulated printers only listen on 127.0.0.1",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        help="port of the HTTP control server (0: a free port) [%(default)s]",
    )
    parser.add_argument(
        "--print-delay",
        type=float,
        default=0.0,
        help="seconds each receipt takes to print [%(default)s]",
    )
    parser.add_argument(
        "--no-status",
        action="store_true",
        help="never answer DLE EOT status queries (like some cheap printers)",
    )
    parser.add_argument(
        "--language",
        choices=SIM_LANGUAGES,
        default="escpos",
        help="command language: escpos, a Star printer (star_raster, star_line), a Zebra "
        "label printer (zpl: answers ~HS) or raw (answers nothing) [%(default)s]",
    )
    cloud = parser.add_argument_group("a Star CloudPRNT printer polling a hub instead")
    cloud.add_argument(
        "--cloudprnt",
        metavar="URL",
        help="poll this CloudPRNT URL (http://HUB:3001/cloudprnt) instead of listening",
    )
    cloud.add_argument("--mac", help="the printer's MAC, as enrolled (pm printer cloudprnt add)")
    cloud.add_argument(
        "--secret-file",
        metavar="FILE",
        help="file holding the printer's secret (or PM_CLOUDPRNT_SECRET)",
    )
    cloud.add_argument(
        "--poll-every", type=float, default=2.0, help="seconds between polls [%(default)s]"
    )


async def run_cloudprnt_sim(args: argparse.Namespace) -> None:
    """``pm sim --cloudprnt URL``: one CloudPRNT printer polling a hub until cancelled;
    each ticket it prints is announced on stdout."""
    secret = os.environ.get("PM_CLOUDPRNT_SECRET")
    if args.secret_file:
        secret = read_secret(Path(args.secret_file), "CloudPRNT secret")
    if not args.mac or not secret:
        raise SystemExit("pm sim --cloudprnt: --mac and --secret-file (or PM_CLOUDPRNT_SECRET)")
    if not 0.1 <= args.poll_every <= 60:
        raise SystemExit("pm sim: --poll-every must be from 0.1 to 60 seconds")
    printer = SimulatedCloudPrntPrinter(
        args.cloudprnt, mac=args.mac, secret=secret, poll_interval=args.poll_every
    )
    async with printer:
        print(f"CloudPRNT printer {args.mac} polling {args.cloudprnt}", flush=True)
        printed = 0
        while True:
            receipts = await printer.wait_for_receipts(printed + 1, timeout=3600)
            for receipt in receipts[printed:]:
                print(f"printed {receipt.text}", flush=True)
            printed = len(receipts)


async def run_sim(args: argparse.Namespace) -> None:
    """``pm sim``: run the printers until cancelled (Ctrl-C)."""
    if getattr(args, "cloudprnt", None):
        await run_cloudprnt_sim(args)
        return
    count = int(args.count)
    if not 1 <= count <= 100:
        raise SystemExit("pm sim: --count must be from 1 to 100")
    if args.print_delay < 0:
        raise SystemExit("pm sim: --print-delay must not be negative")
    try:
        fleet = await SimulatorFleet.start(
            count=count,
            base_port=args.port,
            control_port=args.control_port,
            print_delay=args.print_delay,
            status_supported=not args.no_status,
            language=args.language,
        )
    except OSError as exc:
        raise SystemExit(f"pm sim: cannot listen: {exc}") from None
    try:
        for printer in fleet.printers:
            print(f"{printer.name} listening on {printer.address}", flush=True)
        print(f"Control server on {fleet.control_url}/printers", flush=True)
        await asyncio.Event().wait()
    finally:
        await fleet.stop()


def add_simctl_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pm simctl``."""
    parser.add_argument(
        "--control",
        default=f"http://{HOST}:{DEFAULT_CONTROL_PORT}",
        help="URL of the simulator control server [%(default)s]",
    )
    commands = parser.add_subparsers(dest="simctl_command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="list the simulated printers")
    state = commands.add_parser("state", help="put a printer in a state")
    state.add_argument("printer_port", metavar="PORT", type=int)
    state.add_argument("new_state", metavar="STATE", help=" | ".join(PRINTER_STATES))
    receipts = commands.add_parser("receipts", help="show what a printer printed")
    receipts.add_argument("printer_port", metavar="PORT", type=int)
    clear = commands.add_parser("clear", help="forget a printer's receipts")
    clear.add_argument("printer_port", metavar="PORT", type=int)


class _SimctlError(Exception):
    pass


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = base.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code} {exc.reason}"
        raise _SimctlError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _SimctlError(
            f"no simulator control server at {base} ({reason}); start one with `pm sim`"
        ) from None
    except ValueError:
        raise _SimctlError(
            f"{url} did not answer JSON; is it a simulator control server?"
        ) from None


def run_simctl(args: argparse.Namespace) -> int:
    """``pm simctl``: talk to a running ``pm sim``. Returns the exit code."""
    base = str(args.control)
    try:
        if args.simctl_command == "list":
            printers = _call(base, "GET", "/printers")
            print(f"{'PORT':>6}  {'NAME':<16} {'STATE':<11} {'RECEIPTS':>8}")
            for p in printers:
                print(f"{p['port']:>6}  {p['name']:<16} {p['state']:<11} {p['receipts']:>8}")
        elif args.simctl_command == "state":
            if args.new_state not in PRINTER_STATES:
                raise _SimctlError(
                    f"STATE must be one of {', '.join(PRINTER_STATES)}, not {args.new_state!r}"
                )
            p = _call(
                base, "POST", f"/printers/{args.printer_port}/state", {"state": args.new_state}
            )
            print(f"{p['name']} (port {p['port']}) is now {p['state']}")
        elif args.simctl_command == "receipts":
            receipts = _call(base, "GET", f"/printers/{args.printer_port}/receipts")
            if not receipts:
                print(f"port {args.printer_port}: no receipts")
            for r in receipts:
                when = time.strftime("%H:%M:%S", time.localtime(r["finished_at"]))
                ending = "cut" if r["cut"] else "not cut"
                print(f"--- receipt {r['index']} at {when}, {r['bytes']} bytes, {ending} ---")
                print(r["text"])
        elif args.simctl_command == "clear":
            result = _call(base, "DELETE", f"/printers/{args.printer_port}/receipts")
            print(f"cleared {result['cleared']} receipt(s)")
        else:
            raise _SimctlError(f"unknown command {args.simctl_command!r}")
    except _SimctlError as exc:
        print(f"pm simctl: {exc}", file=sys.stderr)
        return 1
    return 0
