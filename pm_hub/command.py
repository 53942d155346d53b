"""``pm hub`` (also ``python -m pm_hub``): the hub's command-line options, how they
become :class:`~pm_hub.config.HubSettings`, and running the hub alone.

The ``pm`` command adds these options to ``pm hub`` and ``pm up`` (and the settings
options to ``pm agent``, whose settings share the same file and ``PM_*`` names).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from pm_core.event_loop import run_until_signalled
from pm_core.logs import setup_logging
from pm_core.sql import DatabaseUnavailable
from pm_core.startup_checks import StartupError, check_clock, check_data_dir, check_port_free
from pm_hub.config import HubSettings, default_data_dir, load_settings

#: ``pm hub`` and ``pm up`` announce themselves on mDNS unless told otherwise.
SERVER_DEFAULTS = {"mdns": True}


def add_settings_arguments(parser: argparse.ArgumentParser, *, server: bool = True) -> None:
    """``--data-dir``, ``--config``, ``--log-level`` (and ``--host``, ``--port`` for a
    command that listens)."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=f"where state lives (default: $PM_DATA_DIR or {default_data_dir()})",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("PM_CONFIG"),
        help="TOML config file: settings, printers, ... (or PM_CONFIG; docs/operations.md)",
    )
    parser.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING, ERROR (default: log_level in --config, PM_LOG_LEVEL, INFO)",
    )
    if server:
        parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, help="port to listen on (default 3001)")


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        metavar="URL",
        help="where the hub keeps its state: postgresql://user@host:5432/db for a company "
        "hub on PostgreSQL (or PM_DATABASE_URL, database_url in the TOML file; default: "
        "hub.sqlite in the data dir)",
    )


def add_redis_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trusted-proxies",
        metavar="LIST",
        help="load balancers in front of this hub (addresses or networks, comma-separated; "
        "or PM_TRUSTED_PROXIES): their connections count as the client in X-Forwarded-For",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        help="company hub in several processes: the Redis they share rooms and changes "
        "through, redis://host:6379/0 (or PM_REDIS_URL, redis_url in the TOML file); each "
        "process needs the same --database postgresql://... and --redis-url",
    )


def log_level_of(args: argparse.Namespace, default: str = "INFO") -> str:
    """``--log-level``, else the config file's (filled in by the caller), else
    ``PM_LOG_LEVEL``, else ``default``."""
    return str(getattr(args, "log_level", None) or os.environ.get("PM_LOG_LEVEL") or default)


def settings_from(
    args: argparse.Namespace, *, defaults: dict[str, Any] | None = None, **extra: Any
) -> HubSettings:
    """Settings from the parsed options: defaults < TOML < ``PM_*`` < command line."""
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "database_url": getattr(args, "database", None),
        "redis_url": getattr(args, "redis_url", None),
        "trusted_proxies": getattr(args, "trusted_proxies", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        **extra,
    }
    return load_settings(
        config_file=getattr(args, "config", None), overrides=overrides, defaults=defaults
    )


def add_upstream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="company hub to sync this branch to, e.g. http://company:3001 (or PM_UPSTREAM_URL)",
    )
    parser.add_argument(
        "--upstream-token",
        metavar="T",
        help="branch token made on the company hub with "
        "`pm token create --role branch --branch B` (or PM_UPSTREAM_TOKEN; prefer "
        "--upstream-token-file: ps shows arguments)",
    )
    parser.add_argument(
        "--upstream-ca-file",
        type=Path,
        metavar="PEM",
        help="trust the company hub's certificate from this CA for https:// "
        "(or PM_UPSTREAM_CA_FILE)",
    )
    parser.add_argument(
        "--upstream-token-file",
        type=Path,
        metavar="FILE",
        help="read the branch token from FILE (or PM_UPSTREAM_TOKEN_FILE)",
    )


def upstream_from(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "upstream_url": args.upstream,
        "upstream_token": args.upstream_token,
        "upstream_token_file": args.upstream_token_file,
        "upstream_ca_file": args.upstream_ca_file,
    }


def check_upstream(command: str, settings: HubSettings) -> bool:
    """An upstream needs its token; says so on stderr and returns False when missing."""
    if settings.upstream_url and not settings.upstream_token:
        print(
            f"pm {command}: --upstream needs --upstream-token-file (or --upstream-token; make "
            "the token on the company hub with: pm token create --role branch --branch B)",
            file=sys.stderr,
        )
        return False
    return True


def add_mdns_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mdns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="announce the hub on mDNS as _printermaster._tcp (default: on; only on "
        "127.0.0.1 while the hub listens there; --no-mdns or PM_MDNS=0 to switch it off)",
    )


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls-cert",
        type=Path,
        metavar="PEM",
        help="serve https:// and wss:// with this certificate chain (or PM_TLS_CERT)",
    )
    parser.add_argument(
        "--tls-key", type=Path, metavar="PEM", help="the certificate's private key (or PM_TLS_KEY)"
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        metavar="URL",
        help="a web page whose scripts may use the hub from a browser, e.g. "
        "https://pos.example (repeatable; or PM_ALLOWED_ORIGINS; none by default)",
    )


def tls_from(args: argparse.Namespace) -> dict[str, Any]:
    origins = ",".join(args.allowed_origin) if args.allowed_origin else None
    return {"tls_cert": args.tls_cert, "tls_key": args.tls_key, "allowed_origins": origins}


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``pm hub``."""
    add_settings_arguments(parser)
    parser.add_argument(
        "--company-mode",
        action="store_true",
        default=None,
        help="run as a company hub: branch hubs sync to it on /branch",
    )
    parser.add_argument("--branch-name", help="name of this branch (shown in the dashboard)")
    add_database_argument(parser)
    add_redis_argument(parser)
    add_upstream_arguments(parser)
    add_mdns_argument(parser)
    add_tls_arguments(parser)


async def serve_hub(settings: HubSettings) -> int:
    """Listen until cancelled (the signal handler cancels), then stop cleanly."""
    from pm_hub.server import start_hub  # aiohttp and socketio load here, not at --help

    running = await start_hub(settings)
    where = settings.data_dir if not settings.on_postgresql else running.hub.db.where
    print(
        f"hub listening on {running.url} (data in {where})",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()
    return 0


def run_hub(args: argparse.Namespace) -> int:
    """``pm hub`` with parsed options: check them, then serve until a signal."""
    setup_logging(log_level_of(args))
    settings = settings_from(
        args,
        defaults=SERVER_DEFAULTS,
        company_mode=args.company_mode,
        branch_name=args.branch_name,
        mdns=args.mdns,
        **upstream_from(args),
        **tls_from(args),
    )
    if settings.company_mode and settings.upstream_url:
        print("pm hub: a company hub has no upstream (drop --upstream)", file=sys.stderr)
        return 2
    if not check_upstream("hub", settings):
        return 2
    check_before_serving(settings)
    return run_until_signalled(serve_hub(settings), name="pm hub")


def check_before_serving(settings: HubSettings) -> None:
    """The start-up checks of a hub (StartupError: one line that says what to do)."""
    check_clock()
    check_data_dir(settings.data_dir)
    check_port_free(settings.host, settings.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pm_hub", description="the hub alone")
    add_hub_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_hub(args)
    except KeyboardInterrupt:
        return 130
    except (StartupError, ValueError, OSError, DatabaseUnavailable, sqlite3.Error) as exc:
        print(f"pm hub: {exc}", file=sys.stderr)
        return 2
