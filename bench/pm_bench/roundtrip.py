"""roundtrip: operators send ``printer:test`` at a fixed rate to printers behind agents.

The time is taken at the operator, from just before the ``printer:test`` goes out to
the arrival of its ``printer:test:completed`` (operator -> hub -> agent -> printer ->
hub -> operator); the ack (``{ok, correlation_id}``) time is kept too. The schedule is
open loop: request *i* leaves at ``t0 + i / rate`` whether or not earlier ones came
back, so a slow server shows up as latency instead of a lower rate.

Two variants against the hub: bench agents that answer at once (the hub's own cost;
the same agents drive the bare relay in ``baseline``), and real agents printing the
test page on simulated ESC/POS printers (what a user sees end to end).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from pm_bench.agents import start_agents
from pm_bench.procs import CpuMeter, ServerProcess
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext
from pm_bench.stats import rate, summary
from pm_bench.wire import SioClient, close_all, connect_all, new_session

OPS_NS = "/ops"


class RoundtripOperators:
    """Operator connections that send ``printer:test`` on a schedule (worker target)."""

    def __init__(self, *, url: str, token: str, connections: int) -> None:
        self.session = new_session()
        self.clients = [
            SioClient(
                self.session,
                url,
                OPS_NS,
                {"token": token},
                {"printer:test:completed": self._on_completed},
            )
            for _ in range(connections)
        ]
        self._waiting: dict[str, asyncio.Future[tuple[float, Any]]] = {}
        self._early: dict[str, tuple[float, Any]] = {}

    def _on_completed(self, data: Any = None) -> None:
        now = time.monotonic()
        cid = data.get("correlation_id") if isinstance(data, dict) else None
        if not isinstance(cid, str):
            return
        future = self._waiting.get(cid)
        if future is not None and not future.done():
            future.set_result((now, data))
        else:
            self._early[cid] = (now, data)

    async def cmd_connect(self) -> dict[str, Any]:
        connected, errors = await connect_all(self.clients)
        if errors:
            raise RuntimeError(f"operators could not connect: {errors[:3]}")
        return {"connected": connected}

    async def cmd_run(
        self,
        *,
        printers: list[int],
        rate: float,
        duration: float,
        t_start: float,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        rtt: list[float] = []
        ack: list[float] = []
        errors: Counter[str] = Counter()
        loop = asyncio.get_running_loop()

        async def one(i: int) -> None:
            client = self.clients[i % len(self.clients)]
            printer_id = printers[i % len(printers)]
            t0 = time.monotonic()
            try:
                answer = await client.call("printer:test", {"printer_id": printer_id}, timeout)
            except Exception as exc:
                errors[f"ack:{type(exc).__name__}"] += 1
                return
            t_ack = time.monotonic()
            if not isinstance(answer, dict) or not answer.get("ok"):
                code = (answer.get("error") or {}).get("code") if isinstance(answer, dict) else "?"
                errors[f"refused:{code}"] += 1
                return
            cid = answer["correlation_id"]
            done = self._early.pop(cid, None)
            if done is None:
                future: asyncio.Future[tuple[float, Any]] = loop.create_future()
                self._waiting[cid] = future
                try:
                    done = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    errors["result:timeout"] += 1
                    return
                finally:
                    self._waiting.pop(cid, None)
            t_done, data = done
            if not data.get("ok"):
                errors[f"result:{(data.get('error') or {}).get('code')}"] += 1
                return
            rtt.append((t_done - t0) * 1000)
            ack.append((t_ack - t0) * 1000)

        count = max(1, int(rate * duration))
        tasks = []
        lag = 0.0
        for i in range(count):
            due = t_start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag = max(lag, -delay)
            tasks.append(asyncio.create_task(one(i)))
        sent_s = time.monotonic() - t_start
        await asyncio.gather(*tasks)
        return {
            "sent": count,
            "send_seconds": round(sent_s, 3),
            "max_send_lag_ms": round(lag * 1000, 2),
            "rtt_ms": rtt,
            "ack_ms": ack,
            "errors": dict(errors),
        }

    async def close(self) -> None:
        await close_all(self.clients)
        await self.session.close()


async def measure(
    ctx: BenchContext,
    server: ServerProcess,
    *,
    real_agents: bool,
    name: str,
    into: dict[str, Any],
) -> dict[str, Any]:
    """Run the round trip against ``server`` (already started); return its figures."""
    cfg = ctx.config
    if real_agents:
        n_agents, per_agent = cfg.rt_real_agents, cfg.rt_real_printers_per_agent
    else:
        n_agents, per_agent = cfg.rt_agents, cfg.rt_printers_per_agent
    side = await start_agents(
        ctx, server, real=real_agents, agents=n_agents, printers_per_agent=per_agent, name=name
    )
    operators = await ctx.worker(
        "roundtrip:RoundtripOperators",
        f"{name}-operators",
        url=server.url,
        token=ctx.token(server),
        connections=cfg.rt_operators,
    )
    await operators.call("connect", timeout=cfg.connect_timeout)
    printers = side.printers
    # A short warm-up so first-call costs (imports, caches) are not in the figures.
    await operators.call(
        "run", printers=printers, rate=cfg.rt_rate, duration=0.5, t_start=time.monotonic()
    )
    meter = CpuMeter({"server": server.pid, "operators": operators.pid} | side.pids)
    async with ctx.profiled(server, name, cfg.duration, into):
        meter.start()
        run = await operators.call(
            "run",
            printers=printers,
            rate=cfg.rt_rate,
            duration=cfg.duration,
            t_start=time.monotonic() + 0.2,
            timeout=cfg.duration + 60,
        )
        cpu = meter.stop()
    counts = await side.stop()
    await operators.call("stop")
    server.check_alive()
    rtt = summary(run["rtt_ms"])
    figures = {
        "agents": side.description,
        "agent_count": n_agents,
        "printers": len(printers),
        "operators": cfg.rt_operators,
        "rate_asked": cfg.rt_rate,
        "rate_sent": rate(run["sent"], run["send_seconds"]),
        "sent": run["sent"],
        "completed": rtt["count"],
        "errors": run["errors"],
        "max_send_lag_ms": run["max_send_lag_ms"],
        "rtt_ms": rtt,
        "ack_ms": summary(run["ack_ms"]),
        "cpu_pct": cpu,
        "server_rss_mb": round((server.rss_kb() or 0) / 1024, 1),
        "agent_counts": counts,
    }
    into.update(figures)
    return figures


def add_figures(
    result: ScenarioResult, prefix: str, figures: dict[str, Any], *, label: str, targets: bool
) -> None:
    """The round-trip rows of the table for one variant."""
    bare = "baseline.roundtrip" if prefix == "roundtrip" else None
    rtt, ack = figures["rtt_ms"], figures["ack_ms"]
    rate_text = f"{figures['rate_asked']:g}/s"
    rows = [
        ("median_ms", f"round trip median ({label}, {rate_text})", rtt["median"], 3.0),
        ("p95_ms", f"round trip p95 ({label})", rtt["p95"], None),
        ("p99_ms", f"round trip p99 ({label})", rtt["p99"], 15.0),
        ("ack_median_ms", f"printer:test ack median ({label})", ack["median"], None),
    ]
    for key, text, value, limit in rows:
        target = None
        if targets and limit is not None:
            target = Target("<=", limit, ratio_max=3.0 if key == "median_ms" else None)
        result.add(
            Figure(
                f"{prefix}.{key}",
                text,
                value,
                "ms",
                target,
                bare_key=f"{bare}.{key}" if bare else None,
            )
        )
    failed = figures["sent"] - figures["completed"]
    result.add(Figure(f"{prefix}.failed", f"round trips failed ({label})", failed, ""))


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    for real, name, prefix, label in (
        (False, "roundtrip-bench", "roundtrip", "bench agents"),
        (True, "roundtrip-real", "roundtrip_real", "real agent + sim printers"),
    ):
        ctx.progress(f"roundtrip: {label}")
        details: dict[str, Any] = {}
        result.details[name] = details
        hub = await ctx.start_hub(name)
        try:
            figures = await measure(ctx, hub, real_agents=real, name=name, into=details)
        finally:
            await hub.stop()
            await ctx.procs.close()
        add_figures(result, prefix, figures, label=label, targets=not real)
