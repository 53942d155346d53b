"""``pm bench``: the options, as the ``pm`` command finds them through the
``printermaster.commands`` entry point this package declares (``bench/pyproject.toml``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "load benchmark (prints a table; --json for machines)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenarios",
        nargs="*",
        help="idle, roundtrip, throughput, fanout, connections, dashboard, baseline (default: all)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each load phase")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="sample the hub with py-spy into DIR"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the hub over TLS (https/wss, a CA made for the run); compare with a "
        "run without it for the cost of TLS",
    )


def run(args: argparse.Namespace) -> int:
    from pm_bench.procs import BenchError
    from pm_bench.runner import BenchConfig, run_bench

    try:
        return run_bench(
            args.scenarios,
            duration=args.duration,
            json_path=args.json,
            profile_dir=args.profile,
            config=BenchConfig(tls=args.tls),
        )
    except BenchError as exc:
        print(f"pm bench: {exc}", file=sys.stderr)
        return 2
