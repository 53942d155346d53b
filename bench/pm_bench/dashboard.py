"""dashboard: a status change at the hub to the row changing in the terminal dashboard,
with ``db_printers`` printers changing ``db_rate`` times a second.

It runs ``python -m pm_bench.dashboard_probe`` in its own process (that module starts its own hub
and a stand-in agent, and drives the real dashboard headless), so the hub package
never imports Textual; the figures come back as JSON.
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


async def measure(printers: int, rate: float, duration: float) -> dict[str, Any]:
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
            "--json",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=duration + 180)
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
    figures = await measure(cfg.db_printers, cfg.db_rate, cfg.duration)
    result.details.update(figures)
    label = f"{figures['printers']} printers, {figures['rate_per_s']:g} changes/s"
    updated = figures["latency_updated_ms"]
    painted = figures["latency_painted_ms"]
    rows: list[tuple[str, str, Any, str, Target | None]] = [
        ("updated_p50_ms", f"hub change -> dashboard row, median ({label})",
         updated["p50"], "ms", None),
        ("updated_p99_ms", "hub change -> dashboard row, p99", updated["p99"], "ms", None),
        ("painted_p50_ms", "hub change -> screen refreshed, median", painted["p50"], "ms", None),
        ("painted_p99_ms", "hub change -> screen refreshed, p99", painted["p99"], "ms",
         Target("<=", 1000.0)),
        ("lag_p99_ms", "dashboard event-loop lag p99 (key press wait)",
         figures["event_loop_lag_ms"]["p99"], "ms", None),
        ("cpu_pct", "dashboard CPU", figures["dashboard_cpu_percent"], "%", None),
        ("rows_wrong", "rows wrong at the end", figures["rows_wrong_at_end"], "",
         Target("<=", 0.0)),
    ]  # fmt: skip
    for key, text, value, unit, target in rows:
        result.add(Figure(f"dashboard.{key}", text, value, unit, target))
