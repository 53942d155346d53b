"""baseline: the same measurements against the bare python-socketio relay.

:mod:`pm_bench.relay` only forwards, so what it reaches is the ceiling that
python-socketio + aiohttp set on this machine. Each part runs on a fresh relay
process with exactly the load processes and sizes the hub got: start time and idle
memory, the round trip with bench agents, the fanout (an extra over issue 7's list:
it shows how much of the fanout cost is the framework's) and the connections. The
table prints every hub figure next to its bare-relay value and the ratio.
"""

from __future__ import annotations

from typing import Any

from pm_bench import connections, fanout, idle, roundtrip
from pm_bench.report import Figure, ScenarioResult
from pm_bench.runner import BenchContext


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    relay = await ctx.start_relay("baseline-idle")
    try:
        rest = await idle.measure_idle(relay, ctx.config.idle_seconds)
        relay.check_alive()
    finally:
        await relay.stop()
    result.details["idle"] = rest
    result.add(
        Figure("baseline.idle.start_s", "bare relay start to /healthz", rest["start_s"], "s")
    )
    result.add(Figure("baseline.idle.rss_mb", "bare relay idle RSS", rest["rss_mb"], "MB"))

    parts: list[tuple[str, Any]] = [
        ("roundtrip", roundtrip),
        ("fanout", fanout),
        ("connections", connections),
    ]
    for part, module in parts:
        ctx.progress(f"baseline: {part} against the bare relay")
        details: dict[str, Any] = {}
        result.details[part] = details
        relay = await ctx.start_relay(f"baseline-{part}")
        try:
            if module is roundtrip:
                figures = await roundtrip.measure(
                    ctx, relay, real_agents=False, name=f"baseline-{part}", into=details
                )
            else:
                figures = await module.measure(ctx, relay, name=f"baseline-{part}", into=details)
        finally:
            await relay.stop()
            await ctx.procs.close()
        prefix = f"baseline.{part}"
        if module is roundtrip:
            roundtrip.add_figures(result, prefix, figures, label="bench agents", targets=False)
        elif module is fanout:
            fanout.add_figures(result, prefix, figures, details["operators"], targets=False)
        else:
            connections.add_figures(result, prefix, figures, targets=False)
