"""dashboard: a status change to the row changing in the terminal dashboard, and how
long a key press waits, with ``db_printers`` printers changing ``db_rate`` times a
second.

With ``db_branches`` 0 the printers sit behind a branch hub and one stand-in agent;
with B > 0 behind a company hub fed by B branch links (issue 16's scale: 100
branches, 5,000 printers, 200 changes/s). :func:`setup` picks the defaults from the
printer count (``pm bench dashboard --printers 5000``).

It runs ``python -m pm_bench.dashboard_probe`` in its own process (that module starts
the hub and what feeds it, and drives the real dashboard headless), so the hub
package never imports Textual; the figures come back as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pm_bench.procs import BenchError
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext

#: From this many printers on, the dashboard is measured against a company hub.
COMPANY_SCALE = 1000
COMPANY_BRANCHES = 100
COMPANY_RATE = 200.0
#: Issue 16's targets: a row changes within 500 ms, a key press waits 50 ms at most.
ROW_P99_MS = 500.0
KEY_P99_MS = 50.0


def setup(
    printers: int, branches: int | None, rate: float | None, branch_rate: float
) -> tuple[int, float]:
    """(branches, changes/s) for a run with ``printers``: ``COMPANY_SCALE`` printers
    or more go behind a company hub with 100 branches and change 200 times a second;
    fewer sit behind a branch hub and change ``branch_rate`` times a second.
    ``branches`` / ``rate``, when given, override either."""
    company = printers >= COMPANY_SCALE
    if branches is None:
        branches = COMPANY_BRANCHES if company else 0
    if rate is None:
        rate = COMPANY_RATE if company else branch_rate
    return branches, rate


async def measure(printers: int, rate: float, duration: float, branches: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pm-bench-dashboard-") as tmp:
        out = Path(tmp) / "figures.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pm_bench.dashboard_probe",
            "--printers",
            str(printers),
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--branches",
            str(branches),
            "--json",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=duration + 300)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError("the dashboard benchmark did not finish") from None
        if proc.returncode != 0 or not out.exists():
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            raise BenchError(f"the dashboard benchmark failed: {' | '.join(tail)}")
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    cfg = ctx.config
    figures = await measure(cfg.db_printers, cfg.db_rate, cfg.duration, cfg.db_branches)
    result.details.update(figures)
    where = (
        f"company hub, {figures['branches']} branches"
        if figures["branches"]
        else "branch hub, 1 agent"
    )
    label = f"{where}, {figures['printers']:,} printers, {figures['rate_per_s']:g} changes/s"
    updated = figures["latency_updated_ms"]
    painted = figures["latency_painted_ms"]
    key = figures["key_painted_ms"]
    rows: list[tuple[str, str, Any, str, Target | None]] = [
        ("updated_p50_ms", f"change -> dashboard row, median ({label})",
         updated["p50"], "ms", None),
        ("updated_p99_ms", "change -> dashboard row, p99", updated["p99"], "ms", None),
        ("painted_p50_ms", "change -> row on screen, median", painted["p50"], "ms", None),
        ("painted_p99_ms", "change -> row on screen, p99", painted["p99"], "ms",
         Target("<=", ROW_P99_MS)),
        ("key_p50_ms", f"key press -> handled and on screen, median ({figures['keys_pressed']} "
         "arrow keys)", key["p50"], "ms", None),
        ("key_p99_ms", "key press -> handled and on screen, p99", key["p99"], "ms",
         Target("<=", KEY_P99_MS)),
        ("lag_p99_ms", "dashboard event-loop lag p99", figures["event_loop_lag_ms"]["p99"], "ms",
         None),
        ("cpu_pct", "dashboard CPU", figures["dashboard_cpu_percent"], "%", None),
        ("rows_wrong", "rows wrong at the end", figures["rows_wrong_at_end"], "",
         Target("<=", 0.0)),
    ]  # fmt: skip
    for name, text, value, unit, target in rows:
        result.add(Figure(f"dashboard.{name}", text, value, unit, target))
