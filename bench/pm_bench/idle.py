"""idle: how long a fresh hub takes to answer ``/healthz``, and its memory at rest."""

from __future__ import annotations

import asyncio

from pm_bench.procs import CpuMeter, ServerProcess
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext


async def measure_idle(server: ServerProcess, seconds: float) -> dict[str, float | None]:
    """Start time (spawn to first good ``/healthz``), then RSS and CPU while idle."""
    await asyncio.sleep(seconds)
    meter = CpuMeter({"server": server.pid}).start()
    await asyncio.sleep(seconds)
    rss = server.rss_kb()
    return {
        "start_s": round(server.start_s, 3) if server.start_s is not None else None,
        "rss_mb": round(rss / 1024, 1) if rss is not None else None,
        "idle_cpu_pct": meter.stop().get("server"),
    }


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    hub = await ctx.start_hub("idle")
    try:
        figures = await measure_idle(hub, ctx.config.idle_seconds)
        hub.check_alive()
    finally:
        await hub.stop()
    result.details.update(figures, persistence="sqlite synchronous=FULL", fresh_data_dir=True)
    result.add(
        Figure(
            "idle.start_s",
            "hub start to /healthz (fresh data dir)",
            figures["start_s"],
            "s",
            Target("<", 1.0),
            bare_key="baseline.idle.start_s",
            note="process spawn, imports, migrations, listen, first HTTP answer",
        )
    )
    result.add(
        Figure(
            "idle.rss_mb",
            "hub idle RSS",
            figures["rss_mb"],
            "MB",
            Target("<", 100.0),
            bare_key="baseline.idle.rss_mb",
        )
    )
