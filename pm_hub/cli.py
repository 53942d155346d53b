"""The ``pm`` command: every subcommand of the branch box.

Heavy modules are imported inside each command so ``pm --help`` is quick and the
hub never imports the agent or the dashboard at module level.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pm_hub import __version__
from pm_hub.config import HubSettings, default_data_dir, load_settings
from pm_hub.event_loop import event_loop_factory


def _common(parser: argparse.ArgumentParser, *, server: bool = True) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"where state lives (default: $PM_DATA_DIR or {default_data_dir()})",
    )
    parser.add_argument("--config", type=Path, help="TOML settings file ([hub] table)")
    parser.add_argument("--log-level", default=os.environ.get("PM_LOG_LEVEL", "INFO"))
    if server:
        parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, help="port to listen on (default 3001)")


def _settings(
    args: argparse.Namespace, *, defaults: dict[str, Any] | None = None, **extra: Any
) -> HubSettings:
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        **extra,
    }
    return load_settings(
        config_file=getattr(args, "config", None), overrides=overrides, defaults=defaults
    )


#: ``pm hub`` and ``pm up`` announce themselves on mDNS unless told otherwise.
SERVER_DEFAULTS = {"mdns": True}


def _printer_specs(values: list[str] | None) -> list[Any]:
    from pm_agent.printer_uri import parse_printer_spec

    return [parse_printer_spec(v) for v in values or []]


def _upstream_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="company hub to sync this branch to, e.g. http://company:3001 (or PM_UPSTREAM_URL)",
    )
    parser.add_argument(
        "--upstream-token",
        metavar="T",
        help="branch token made on the company hub with "
        "`pm token create --role branch --branch B` (or PM_UPSTREAM_TOKEN)",
    )


def _upstream(args: argparse.Namespace) -> dict[str, Any]:
    return {"upstream_url": args.upstream, "upstream_token": args.upstream_token}


def _check_upstream(command: str, settings: HubSettings) -> bool:
    if settings.upstream_url and not settings.upstream_token:
        print(
            f"pm {command}: --upstream needs --upstream-token (make it on the company hub "
            "with: pm token create --role branch --branch B)",
            file=sys.stderr,
        )
        return False
    return True


def _mdns_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mdns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="announce the hub on mDNS as _printermaster._tcp (default: on; only on "
        "127.0.0.1 while the hub listens there; --no-mdns or PM_MDNS=0 to switch it off)",
    )


def _hub_branch_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hub-branch",
        default=os.environ.get("PM_HUB_BRANCH"),
        metavar="NAME",
        help="without --hub: take the hub announced for this branch name when several "
        "hubs share the network (or PM_HUB_BRANCH)",
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


def _discovery_options(parser: argparse.ArgumentParser) -> None:
    from pm_agent.discovery.options import add_discovery_arguments

    add_discovery_arguments(parser)


def _discovery(args: argparse.Namespace) -> Any:
    from pm_agent.discovery.options import discovery_config

    return discovery_config(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pm",
        description="PrinterMaster: keeps a restaurant's thermal printers discovered, "
        "watched and printing.",
    )
    parser.add_argument("--version", action="version", version=f"pm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("up", help="hub + agent in one process: the headless branch service")
    _common(p)
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
        "--poll-interval",
        type=float,
        help="seconds between printer status queries (default 2; or PM_POLL_INTERVAL, "
        "poll_interval in --config)",
    )
    p.add_argument("--branch-name", help="name of this branch (shown in the dashboard)")
    _upstream_options(p)
    _mdns_flag(p)
    _agent_health_options(p)
    _discovery_options(p)

    p = sub.add_parser("hub", help="the hub alone")
    _common(p)
    p.add_argument(
        "--company-mode",
        action="store_true",
        default=None,
        help="run as a company hub: branch hubs sync to it on /branch",
    )
    p.add_argument("--branch-name", help="name of this branch (shown in the dashboard)")
    _upstream_options(p)
    _mdns_flag(p)

    p = sub.add_parser("agent", help="the agent alone, connecting to a hub")
    _common(p, server=False)
    p.add_argument(
        "--hub",
        default=os.environ.get("PM_HUB"),
        help="hub URL, e.g. http://10.0.0.2:3001 (default: the hub announced on mDNS)",
    )
    p.add_argument(
        "--license", default=os.environ.get("PM_LICENSE"), help="license key (or PM_LICENSE)"
    )
    p.add_argument("--printer", action="append", metavar="[NAME=]URI[#STATION]", help="repeatable")
    p.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between printer status queries (default 2; or PM_POLL_INTERVAL, "
        "poll_interval in --config)",
    )
    p.add_argument("--name", help="agent name shown to operators (default: host name)")
    _hub_branch_flag(p)
    _agent_health_options(p)
    _discovery_options(p)

    p = sub.add_parser("tui", help="the terminal dashboard")
    # No env defaults here: pm_tui.config reads PM_HUB and PM_TOKEN itself, so that it
    # can say where a refused token came from.
    p.add_argument(
        "--hub",
        help="hub URL (or PM_HUB; default: the hub announced on mDNS, else http://127.0.0.1:3001)",
    )
    p.add_argument(
        "--mdns-interface", action="append", metavar="IP", help="look for the hub only here"
    )
    _hub_branch_flag(p)
    p.add_argument("--token", help="operator token (or PM_TOKEN)")
    p.add_argument("--log-level", default=os.environ.get("PM_LOG_LEVEL", "WARNING"))
    p.add_argument(
        "--config",
        type=Path,
        help="dashboard settings (default ~/.config/printermaster/tui.toml: hub, token)",
    )
    p.add_argument("--web", action="store_true", help="serve the dashboard to a browser")
    p.add_argument("--web-host", default="127.0.0.1", help="--web address (default 127.0.0.1)")
    p.add_argument("--web-port", type=int, default=8080, help="--web port (default 8080)")

    p = sub.add_parser("demo", help="hub + agent + simulated printers + the dashboard, zero set-up")
    _common(p)
    p.add_argument("--printers", type=int, default=3, help="how many simulated printers")
    p.add_argument(
        "--headless", action="store_true", help="run the branch box without the dashboard"
    )

    from pm_agent.sim import add_sim_arguments, add_simctl_arguments

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

    p = sub.add_parser("bench", help="load benchmark (prints a table; --json for machines)")
    p.add_argument(
        "scenarios",
        nargs="*",
        help="idle, roundtrip, throughput, fanout, connections, baseline (default: all)",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each load phase")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    p.add_argument(
        "--profile", type=Path, metavar="DIR", help="sample the hub with py-spy into DIR"
    )
    return parser


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    """Run until done or until SIGINT/SIGTERM, then shut down cleanly."""

    async def main() -> int | None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            return await task
        except asyncio.CancelledError:
            return 0

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main()) or 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as exc:
        print(f"pm {args.command}: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from pm_hub.logs import setup_logging

    command = args.command
    if command in ("hub", "up", "agent", "sim", "demo", "discover"):
        setup_logging(args.log_level)
    if command == "hub":
        from pm_hub.branch_box import run_hub

        settings = _settings(
            args,
            defaults=SERVER_DEFAULTS,
            company_mode=args.company_mode,
            branch_name=args.branch_name,
            mdns=args.mdns,
            **_upstream(args),
        )
        if settings.company_mode and settings.upstream_url:
            print("pm hub: a company hub has no upstream (drop --upstream)", file=sys.stderr)
            return 2
        if not _check_upstream("hub", settings):
            return 2
        return _run(run_hub(settings))
    if command == "up":
        from pm_hub.branch_box import run_up

        settings = _settings(
            args,
            defaults=SERVER_DEFAULTS,
            branch_name=args.branch_name,
            mdns=args.mdns,
            poll_interval=args.poll_interval,
            **_upstream(args),
            **_agent_health_settings(args),
        )
        if not _check_upstream("up", settings):
            return 2
        return _run(
            run_up(
                settings,
                printers=_printer_specs(args.printer),
                sim_count=args.sim,
                sim_port=args.sim_port,
                sim_control_port=args.sim_control_port,
                poll_interval=settings.poll_interval,
                discovery=_discovery(args),
            )
        )
    if command == "agent":
        from pm_hub.branch_box import run_agent

        if not args.license:
            print(
                "pm agent: --license KEY is required (or PM_LICENSE); "
                "create one with `pm license create` on the hub",
                file=sys.stderr,
            )
            return 2
        settings = _settings(args, poll_interval=args.poll_interval, **_agent_health_settings(args))
        return _run(
            run_agent(
                hub_url=args.hub,
                license_key=args.license,
                data_dir=settings.data_dir,
                settings=settings,
                printers=_printer_specs(args.printer),
                poll_interval=settings.poll_interval,
                name=args.name,
                discovery=_discovery(args),
                mdns_interfaces=args.mdns_interface,
                hub_branch=args.hub_branch,
            )
        )
    if command == "tui":
        from pm_tui.launch import launch

        return launch(
            hub_url=args.hub,
            token=args.token,
            log_level=args.log_level,
            config_file=args.config,
            mdns_interfaces=args.mdns_interface,
            hub_branch=args.hub_branch,
            web=args.web,
            web_host=args.web_host,
            web_port=args.web_port,
        )
    if command == "demo":
        from pm_hub.demo import run_demo

        settings = _settings(args)
        return run_demo(
            settings,
            printers=args.printers,
            headless=args.headless,
            data_dir_given=args.data_dir is not None,
        )
    if command == "sim":
        from pm_agent.sim import run_sim

        return _run(run_sim(args))
    if command == "simctl":
        from pm_agent.sim import run_simctl

        return run_simctl(args)
    if command == "discover":
        from pm_agent.discovery.command import run_discover

        return _run(run_discover(args))
    if command == "token":
        return _token_create(args)
    if command == "license":
        return _license_create(args)
    if command == "bench":
        from pm_hub.bench.procs import BenchError
        from pm_hub.bench.runner import run_bench

        try:
            return run_bench(
                args.scenarios,
                duration=args.duration,
                json_path=args.json,
                profile_dir=args.profile,
            )
        except BenchError as exc:
            print(f"pm bench: {exc}", file=sys.stderr)
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
