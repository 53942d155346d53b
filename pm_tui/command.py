"""``pm tui`` (also ``python -m pm_tui``): the dashboard's command-line options.

The ``pm`` command adds these to its ``tui`` subcommand; ``--web`` starts each
browser tab's dashboard as ``python -m pm_tui`` with the same options.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_tui_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pm tui``. No env defaults for the hub and token here:
    pm_tui.config reads PM_HUB and PM_TOKEN itself, so that it can say where a
    refused token came from."""
    parser.add_argument(
        "--hub",
        help="hub URL (or PM_HUB; default: the hub announced on mDNS, else http://127.0.0.1:3001)",
    )
    parser.add_argument(
        "--mdns-interface", action="append", metavar="IP", help="look for the hub only here"
    )
    parser.add_argument(
        "--hub-branch",
        default=os.environ.get("PM_HUB_BRANCH"),
        metavar="NAME",
        help="without --hub: take the hub announced for this branch name when several "
        "hubs share the network (or PM_HUB_BRANCH)",
    )
    parser.add_argument(
        "--token", help="operator token (or PM_TOKEN; prefer --token-file: ps shows arguments)"
    )
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE", help="read the operator token from FILE"
    )
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=os.environ.get("PM_CA_FILE"),
        metavar="PEM",
        help="trust the hub's certificate from this CA for https:// (or PM_CA_FILE)",
    )
    parser.add_argument("--log-level", default=os.environ.get("PM_LOG_LEVEL", "WARNING"))
    parser.add_argument(
        "--config",
        type=Path,
        help="dashboard settings (default ~/.config/printermaster/tui.toml: hub, token)",
    )
    parser.add_argument("--web", action="store_true", help="serve the dashboard to a browser")
    parser.add_argument("--web-host", default="127.0.0.1", help="--web address (default 127.0.0.1)")
    parser.add_argument("--web-port", type=int, default=8080, help="--web port (default 8080)")
    parser.add_argument(
        "--web-sessions",
        type=int,
        default=4,
        metavar="N",
        help="--web: browser dashboards open at once (default 4; each is a process)",
    )


def run_tui(args: argparse.Namespace) -> int:
    """Start the dashboard with parsed ``pm tui`` options."""
    from pm_tui.launch import launch  # Textual loads here, not at `pm --help`

    return launch(
        hub_url=args.hub,
        token=args.token,
        token_file=args.token_file,
        ca_file=args.ca_file,
        log_level=args.log_level,
        config_file=args.config,
        mdns_interfaces=args.mdns_interface,
        hub_branch=args.hub_branch,
        web=args.web,
        web_host=args.web_host,
        web_port=args.web_port,
        web_sessions=args.web_sessions,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pm tui", description="the terminal dashboard")
    add_tui_arguments(parser)
    return run_tui(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
