"""``pm bench``: the options, as the ``pm`` command finds them through the
``printermaster.commands`` entry point this package declares (``bench/pyproject.toml``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pm_bench.runner import BenchConfig

HELP = "load benchmark (prints a table; --json for machines)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenarios",
        nargs="*",
        help="idle, roundtrip, throughput, fanout, connections, dashboard, baseline, company "
        "(default: all; company runs on SQLite, PostgreSQL and PostgreSQL + Redis, found at "
        "PM_BENCH_POSTGRES_URL and PM_BENCH_REDIS_URL, default the local ones)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each load phase")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="sample the hub with py-spy into DIR"
    )
    parser.add_argument(
        "--company-setups",
        metavar="LIST",
        help="company scenario: which of sqlite, postgresql, postgresql+redis to run "
        "(comma-separated; default all three)",
    )
    parser.add_argument(
        "--printers",
        type=int,
        metavar="N",
        help="dashboard scenario: printers (default 500). From 1,000 on they sit behind a "
        "company hub with 100 branches changing 200 times a second (issue 16's scale); "
        "below, behind a branch hub at 100 changes/s",
    )
    parser.add_argument(
        "--branches",
        type=int,
        metavar="B",
        help="dashboard scenario: 0 = a branch hub; B = a company hub with B branch links "
        "sharing the printers (default: see --printers)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="dashboard scenario: status changes a second, spread over the printers "
        "(default: see --printers)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the hub over TLS (https/wss, a CA made for the run); compare with a "
        "run without it for the cost of TLS",
    )


def _config(args: argparse.Namespace) -> BenchConfig:
    from pm_bench.company import SETUPS
    from pm_bench.procs import BenchError
    from pm_bench.runner import BenchConfig

    config = BenchConfig(tls=args.tls)
    if args.company_setups:
        chosen = tuple(s.strip() for s in args.company_setups.split(",") if s.strip())
        known = [name for name, _ in SETUPS]
        unknown = [s for s in chosen if s not in known]
        if unknown or not chosen:
            raise BenchError(
                f"unknown company setup {', '.join(unknown) or '(none)'}; "
                f"choose from {', '.join(known)}"
            )
        config = replace(config, co_setups=chosen)
    return _dashboard_config(config, args)


def _dashboard_config(config: BenchConfig, args: argparse.Namespace) -> BenchConfig:
    from pm_bench.dashboard import setup
    from pm_bench.procs import BenchError

    printers = config.db_printers if args.printers is None else args.printers
    if printers < 1:
        raise BenchError("--printers must be 1 or more")
    if args.branches is not None and not 0 <= args.branches <= printers:
        raise BenchError("--branches must be between 0 and the number of printers")
    if args.rate is not None and args.rate <= 0:
        raise BenchError("--rate must be positive")
    branches, rate = setup(printers, args.branches, args.rate, config.db_rate)
    return replace(config, db_printers=printers, db_branches=branches, db_rate=rate)


def run(args: argparse.Namespace) -> int:
    from pm_bench.procs import BenchError
    from pm_bench.runner import run_bench

    try:
        config = _config(args)
        return run_bench(
            args.scenarios,
            duration=args.duration,
            json_path=args.json,
            profile_dir=args.profile,
            config=config,
        )
    except BenchError as exc:
        print(f"pm bench: {exc}", file=sys.stderr)
        return 2
