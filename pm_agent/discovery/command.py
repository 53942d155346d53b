"""``pm discover``: run the discovery sources once and print what they found."""

from __future__ import annotations

import argparse
import json
import sys

from pm_agent.discovery.found import FoundPrinter
from pm_agent.discovery.options import add_discovery_arguments, discovery_config
from pm_agent.discovery.runner import ConfiguredSource, Discovery
from pm_agent.printer_uri import parse_printer_spec


def add_discover_command_arguments(parser: argparse.ArgumentParser) -> None:
    add_discovery_arguments(parser, periodic=False)
    parser.add_argument(
        "--printer",
        action="append",
        metavar="[NAME=]URI[#STATION]",
        help="also list a configured printer (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def format_table(found: list[FoundPrinter]) -> str:
    if not found:
        return "no printers found"
    rows = [("ADDRESS", "IDENTITY", "MODEL", "STATUS", "FOUND BY")]
    for f in found:
        status = f.status or ("-" if f.confirmed else "silent")
        rows.append((f.uri, f.identity, f.model or "-", status, ",".join(f.sources or (f.source,))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def run_discover(args: argparse.Namespace) -> int:
    config = discovery_config(args)
    specs = [parse_printer_spec(p) for p in args.printer or []]
    sources = config.sources()
    if specs:
        sources.insert(0, ConfiguredSource(specs))
    if not sources:
        print(
            "pm discover: nothing to do; add --scan CIDR and/or --discover mdns|usb|serial|all",
            file=sys.stderr,
        )
        return 2
    found = await Discovery(sources).run_once()
    if args.json:
        print(json.dumps([f.to_json() for f in found], indent=2))
    else:
        print(format_table(found))
    return 0
