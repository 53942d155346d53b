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
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pm_agent.discovery.options import add_discovery_arguments, discovery_config
from pm_core import __version__
from pm_core.event_loop import run_until_signalled
from pm_core.logs import setup_logging
from pm_hub.command import (
    SERVER_DEFAULTS,
    add_hub_arguments,
    add_mdns_argument,
    add_settings_arguments,
    add_upstream_arguments,
    check_upstream,
    run_hub,
    settings_from,
    upstream_from,
)
from pm_hub.config import default_data_dir
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


def _poll_interval_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between printer status queries (default 2; or PM_POLL_INTERVAL, "
        "poll_interval in --config)",
    )


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
    _poll_interval_flag(p)
    p.add_argument("--branch-name", help="name of this branch (shown in the dashboard)")
    add_upstream_arguments(p)
    add_mdns_argument(p)
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
        "--license", default=os.environ.get("PM_LICENSE"), help="license key (or PM_LICENSE)"
    )
    p.add_argument("--printer", action="append", metavar="[NAME=]URI[#STATION]", help="repeatable")
    _poll_interval_flag(p)
    p.add_argument("--name", help="agent name shown to operators (default: host name)")
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

    p = sub.add_parser("token", help="operator tokens")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION")
    tsub.required = True
    t = tsub.add_parser("create", help="print a new operator JWT")
    t.add_argument(
        "--role", required=True, choices=["admin", "manager", "operator", "viewer", "branch"]
    )
    t.add_argument(
        "--branch", action="append", type=int, help="branch id the token may see (repeatable)"
    )
    t.add_argument("--company", type=int, default=1, help="company id (default 1)")
    t.add_argument("--ttl", default="8h", help="lifetime, e.g. 30m, 8h, 30d (default 8h)")
    t.add_argument("--sub", help="who the token is for (shown in logs and job history)")
    t.add_argument("--data-dir", type=Path, help="hub data dir (holds the signing secret)")

    p = sub.add_parser("license", help="agent license keys")
    lsub = p.add_subparsers(dest="license_command", metavar="ACTION")
    lsub.required = True
    lc = lsub.add_parser("create", help="print a new agent license key (shown once)")
    lc.add_argument("--branch", type=int, help="branch the agent serves (default: first branch)")
    lc.add_argument("--label", help="a note to recognise the key later")
    lc.add_argument("--data-dir", type=Path, help="hub data dir")

    for name, plugin in sorted(plugins.items()):
        p = sub.add_parser(name, help=plugin.HELP)
        plugin.add_arguments(p)
    if "bench" not in plugins:
        p = sub.add_parser(
            "bench",
            help="load benchmark (installed with the bench extra: pip install "
            "'printermaster[bench]')",
        )
        p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    plugins = _plugins()
    args = build_parser(plugins).parse_args(argv)
    try:
        return _dispatch(args, plugins)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"pm {args.command}: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, plugins: dict[str, Any]) -> int:
    command = args.command
    if command in plugins:
        return int(plugins[command].run(args))
    if command in ("up", "agent", "sim", "demo", "discover"):
        setup_logging(args.log_level)
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
            **_agent_health_settings(args),
        )
        if not check_upstream("up", settings):
            return 2
        return run_until_signalled(
            run_up(
                settings,
                printers=_printer_specs(args.printer),
                sim_count=args.sim,
                sim_port=args.sim_port,
                sim_control_port=args.sim_control_port,
                poll_interval=settings.poll_interval,
                discovery=discovery_config(args),
            )
        )
    if command == "agent":
        from pm.branch_box import run_agent

        if not args.license:
            print(
                "pm agent: --license KEY is required (or PM_LICENSE); "
                "create one with `pm license create` on the hub",
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
        return _token_create(args)
    if command == "license":
        return _license_create(args)
    if command == "bench":
        print(BENCH_MISSING, file=sys.stderr)
        return 2
    raise AssertionError(command)


def _token_create(args: argparse.Namespace) -> int:
    from pm_hub import auth

    data_dir = args.data_dir or default_data_dir()
    issuer = auth.TokenIssuer(auth.load_or_create_secret(data_dir))
    token = issuer.create(
        role=args.role,
        company_id=args.company,
        branch_ids=args.branch,
        ttl_seconds=auth.parse_ttl(args.ttl),
        sub=args.sub,
    )
    print(token)
    return 0


def _license_create(args: argparse.Namespace) -> int:
    from pm_hub.licenses import create_license_offline

    data_dir = args.data_dir or default_data_dir()
    key = create_license_offline(data_dir, branch_id=args.branch, label=args.label)
    print(key)
    print(
        "Keep this key: it is shown only once. Start an agent with:\n"
        f"  pm agent --hub http://HUB:3001 --license {key} --printer tcp://PRINTER:9100",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
