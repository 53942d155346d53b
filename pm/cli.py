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
import sqlite3
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pm.config_file import SERVICE_CONFIG, apply_to_args, load_config, read_config
from pm.demo_dirs import demo_data_dir
from pm.printer_command import (
    add_agent_actions,
    add_printer_actions,
    run_agent_action,
    run_printer_command,
)
from pm.service import add_service_arguments, run_service
from pm_agent.discovery.options import add_discovery_arguments, discovery_config
from pm_core import __version__
from pm_core.event_loop import run_until_signalled
from pm_core.logs import setup_logging
from pm_core.private_files import read_secret
from pm_core.sql import DatabaseUnavailable
from pm_core.startup_checks import StartupError, check_clock, check_data_dir
from pm_hub.command import (
    SERVER_DEFAULTS,
    add_database_argument,
    add_hub_arguments,
    add_mdns_argument,
    add_settings_arguments,
    add_tls_arguments,
    add_upstream_arguments,
    check_before_serving,
    check_upstream,
    log_level_of,
    run_hub,
    settings_from,
    tls_from,
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
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"the hub's data dir, which holds its signing secret (default: $PM_DATA_DIR or "
        f"{default_data_dir()}; the demo's: {demo_data_dir()})",
    )
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
    parser.add_argument(
        "--debug",
        action="store_true",
        default=bool(os.environ.get("PM_DEBUG")),
        help="show the traceback of an error (or PM_DEBUG=1); without it every error is one line",
    )
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
    p.add_argument("--sim", type=int, metavar="N", help="also run N simulated printers (default 0)")
    p.add_argument("--sim-port", type=int, help="first simulated printer port (default 9101)")
    p.add_argument("--sim-control-port", type=int, help="simulator control port (default 9180)")
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
    add_agent_actions(p)  # pm agent list / retire ID (a running hub's agents)

    p = sub.add_parser("tui", help="the terminal dashboard")
    add_tui_arguments(p)

    p = sub.add_parser(
        "demo",
        help="hub + agent + simulated printers + the dashboard, zero set-up",
        description="A branch box with simulated printers and the dashboard. Its state is "
        f"kept apart from pm up's, in {demo_data_dir()} (a second demo running at the same "
        "time takes printermaster-demo-2, and so on); it prints its hub URL, token file "
        "and the pm simctl and curl lines for the ports it took.",
    )
    add_settings_arguments(p)
    for action in p._actions:
        if action.dest == "data_dir":
            action.help = (
                f"where the demo's state lives (default: {demo_data_dir()}, or -2, -3, ... "
                "while another demo runs)"
            )
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
    t.add_argument(
        "token_id",
        metavar="ID",
        help="the id `pm token list` shows (an older id starting with '-': revoke -- ID)",
    )
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
    lc = lsub.add_parser("show", help="one license: its branch, device, agent and state")
    lc.add_argument(
        "license", metavar="ID|PREFIX", help="the id or key prefix `pm license list` shows"
    )
    _credential_options(lc)
    lc = lsub.add_parser(
        "revoke", help="revoke a license (a connected agent using it is disconnected)"
    )
    lc.add_argument(
        "license", metavar="ID|PREFIX", help="the id or key prefix `pm license list` shows"
    )
    _credential_options(lc)

    from pm.backup_command import add_backup_commands

    add_backup_commands(sub)
    p = sub.add_parser(
        "printer", help="printers of a running hub (list, add, rename, move, remove); CloudPRNT"
    )
    psub = p.add_subparsers(dest="printer_command", metavar="ACTION")
    psub.required = True
    add_printer_actions(psub)
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

    p = sub.add_parser("service", help="run the branch box as a systemd service")
    add_service_arguments(p)

    p = sub.add_parser("config", help="check a config file: what is wrong and where")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    c = csub.add_parser("check", help="check FILE (default: PM_CONFIG or the service's)")
    c.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=os.environ.get("PM_CONFIG") or SERVICE_CONFIG,
        metavar="FILE",
        help=f"the config file (default: PM_CONFIG or {SERVICE_CONFIG})",
    )

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
        # Ctrl-C in a command that is not a service (a service stops with exit 0).
        return 130
    except OPERATIONAL_ERRORS as exc:
        if args.debug:
            raise
        print(f"pm {args.command}: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"pm {args.command}: unexpected error: {type(exc).__name__}: {one_line(exc)} "
            f"(run `pm --debug {args.command} ...` for the traceback)",
            file=sys.stderr,
        )
        return 1


#: Commands whose ``--config`` is the branch box's config file (pm tui has its own).
SERVICE_CONFIG_COMMANDS = ("up", "hub", "agent", "demo", "token", "license", "printer")

#: What goes wrong in operation (a bad path or config, a busy port, a database that
#: cannot be opened): one line, no traceback (``--debug`` shows it).
OPERATIONAL_ERRORS = (StartupError, ValueError, OSError, DatabaseUnavailable, sqlite3.Error)


def one_line(exc: BaseException) -> str:
    """An error as one line: an OSError as its reason and path, without ``[Errno N]``."""
    if isinstance(exc, sqlite3.Error):
        return (
            f"the SQLite database cannot be used ({exc}): is hub.sqlite in the data dir "
            "damaged, or another program's file? (docs/operations.md: when it does not start)"
        )
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split()) if "\n" not in text.strip() else text.strip()


def _dispatch(args: argparse.Namespace, plugins: dict[str, Any]) -> int:
    command = args.command
    if command in plugins:
        return int(plugins[command].run(args))
    if command in SERVICE_CONFIG_COMMANDS and getattr(args, "config", None) is not None:
        apply_to_args(load_config(Path(args.config)), args)
    if command in ("up", "agent", "sim", "demo", "discover"):
        setup_logging(log_level_of(args, "WARNING" if command == "discover" else "INFO"))
    if command in ("up", "agent") and not _use_fonts(command, args):
        return 2
    if command == "hub":
        return run_hub(args)
    if command == "service":
        return run_service(args)
    if command == "config":
        return _config_check(args.file)
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
        printers = _printer_specs(args.printer)
        check_before_serving(settings)
        return run_until_signalled(
            run_up(
                settings,
                printers=printers,
                sim_count=args.sim or 0,
                sim_cloudprnt=args.sim_cloudprnt,
                sim_port=args.sim_port or 9101,
                sim_control_port=args.sim_control_port or 9180,
                poll_interval=settings.poll_interval,
                discovery=discovery_config(args),
            ),
            name="pm up",
        )
    if command == "agent" and getattr(args, "agent_command", None):
        return run_agent_action(args)
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
        printers = _printer_specs(args.printer)
        check_clock()
        check_data_dir(settings.data_dir)
        return run_until_signalled(
            run_agent(
                hub_url=args.hub,
                license_key=args.license,
                data_dir=settings.data_dir,
                settings=settings,
                printers=printers,
                poll_interval=settings.poll_interval,
                name=args.name,
                discovery=discovery_config(args),
                mdns_interfaces=args.mdns_interface,
                hub_branch=args.hub_branch,
                ca_file=args.ca_file,
            ),
            name="pm agent",
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

        return run_until_signalled(run_sim(args), name="pm sim")
    if command == "simctl":
        from pm_agent.sim.cli import run_simctl

        return run_simctl(args)
    if command == "discover":
        from pm_agent.discovery.command import run_discover

        return run_until_signalled(run_discover(args), name="pm discover")
    if command == "token":
        return _token(args)
    if command == "license":
        return _license(args)
    if command == "printer":
        if args.printer_command == "cloudprnt":
            return _cloudprnt(args)
        return run_printer_command(args)
    if command in ("backup", "restore"):
        from pm.backup_command import run_backup_command

        return run_backup_command(args)
    if command == "bench":  # not installed (main() answers before parsing when options follow)
        print(BENCH_MISSING, file=sys.stderr)
        return 2
    raise AssertionError(command)


def _config_check(path: Path) -> int:
    """``pm config check FILE``: every problem on its own line (file, line, field)."""
    config, problems = read_config(path)
    for problem in sorted(problems, key=lambda p: p.line or 0):
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    printers = ", ".join(p.name or p.uri for p in config.printers) or "none"
    print(f"{path}: OK ({len(config.printers)} printer(s): {printers})")
    return 0


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
        _check_signing_secret(args, settings.data_dir)
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


def _check_signing_secret(args: argparse.Namespace, data_dir: Path) -> None:
    """A token is only good for a hub that has this data dir's signing secret. With no
    secret there and no ``--data-dir`` given, no hub has used the dir: refuse rather
    than make a secret no hub knows (the token would answer ``invalid token``)."""
    from pm_hub.auth import SECRET_FILE

    if (data_dir / SECRET_FILE).exists():
        return
    from pm.demo_dirs import demo_data_dir

    if args.data_dir is None and not os.environ.get("PM_DATA_DIR"):
        demo = demo_data_dir()
        hint = f" (the demo's: --data-dir {demo})" if (demo / SECRET_FILE).exists() else ""
        raise ValueError(
            f"no hub has used {data_dir} yet (no signing secret there), so no hub would accept "
            f"a token made here; pass the hub's --data-dir{hint}, or start the hub once first"
        )
    check_data_dir(data_dir)
    print(
        f"pm token: made a new signing secret in {data_dir} (no hub has used it yet); "
        f"only a hub started with --data-dir {data_dir} accepts this token",
        file=sys.stderr,
    )


def _ttl(text: str) -> int:
    from pm_hub import auth

    return auth.parse_ttl(text)


def _license(args: argparse.Namespace) -> int:
    from pm_hub import credential_admin as credentials

    settings = settings_from(args)
    if not settings.on_postgresql:
        check_data_dir(settings.data_dir)
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
    if args.license_command == "show":
        return _show_license(credentials.show_license(data_dir, args.license, database=database))
    row = credentials.revoke_license(data_dir, args.license, database=database)
    print(
        f"license {row['id']} ({row['key_prefix']}…) revoked; a running hub disconnects its "
        "agent within a second"
    )
    return 0


def _show_license(k: dict[str, Any]) -> int:
    agent = k.get("agent") or {}
    state = "revoked " + _when(k["revoked_at"]) if k["revoked_at"] else "valid"
    link = "-"
    if k["agent_id"] is not None:
        link = (
            "retired"
            if agent.get("retired_at")
            else ("connected" if agent.get("connected") else "disconnected")
        )
    for label, value in (
        ("id", k["id"]),
        ("key", k["key_prefix"] + "… (the whole key is shown only when it is made)"),
        ("state", state),
        ("company", k["company_id"]),
        ("branch", k["branch_id"]),
        ("label", k["label"] or "-"),
        ("created", _when(k["created_at"])),
        ("device", k["device_id"] or "(unused)"),
        ("bound", _when(k["bound_at"])),
        ("agent", f"{k['agent_id']} {k['agent_name'] or ''}".strip() if k["agent_id"] else "-"),
        ("agent host", agent.get("hostname") or "-"),
        ("agent version", agent.get("version") or "-"),
        ("agent link", link),
        ("last seen", _when(k["agent_last_seen"])),
    ):
        print(f"{label + ':':15} {value}")
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
