"""connections: 10,000 concurrent connections, agents and operators, from several
client processes; hub memory per connection, connect rate, and a ping on every
connection at the end.

Agents connect first (each with its own license key, as real agents do), then
operators (viewer tokens for branch 1). The order matters: the hub broadcasts an
``agent:update`` to the operators' rooms on every agent connect, so agents joining
under 8,000 watching operators would measure that broadcast instead of the connect.
Memory per connection is (hub RSS with everyone connected - RSS before) / connections.
At the end every connection sends one request and must get its answer: agents
``health:ping``, operators ``printers:list``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pm_bench.procs import CpuMeter, ServerProcess, call_all
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext
from pm_bench.stats import rate, summary
from pm_bench.wire import SioClient, close_all, connect_all, new_session


class ConnectionHolders:
    """Many idle connections in one process (worker target)."""

    def __init__(self, *, url: str, licenses: list[str], operators: int, token: str, tag: str):
        self.session = new_session()
        self.agents = [
            SioClient(
                self.session,
                url,
                "/agent",
                {"license_key": key, "device_id": f"{tag}-{i}", "name": f"held-{i}"},
            )
            for i, key in enumerate(licenses)
        ]
        self.operators = [
            SioClient(self.session, url, "/ops", {"token": token}) for _ in range(operators)
        ]

    async def _connect(self, clients: list[SioClient], concurrency: int) -> dict[str, Any]:
        t0 = time.monotonic()
        connected, errors = await connect_all(clients, concurrency=concurrency, timeout=60)
        return {
            "connected": connected,
            "failed": len(errors),
            "errors": sorted(set(errors))[:5],
            "seconds": round(time.monotonic() - t0, 3),
        }

    async def cmd_connect_agents(self, concurrency: int) -> dict[str, Any]:
        return await self._connect(self.agents, concurrency)

    async def cmd_connect_operators(self, concurrency: int) -> dict[str, Any]:
        return await self._connect(self.operators, concurrency)

    async def cmd_alive(self) -> dict[str, Any]:
        return {
            "agents": sum(c.connected for c in self.agents),
            "operators": sum(c.connected for c in self.operators),
        }

    async def cmd_ping(self, concurrency: int, ping_timeout: float) -> dict[str, Any]:
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []
        failed: dict[str, int] = {}

        async def one(client: SioClient, event: str, payload: dict[str, Any]) -> None:
            async with gate:
                t0 = time.monotonic()
                try:
                    ack = await client.call(event, payload, ping_timeout)
                except Exception as exc:
                    name = type(exc).__name__
                    failed[name] = failed.get(name, 0) + 1
                    return
                if isinstance(ack, dict) and ack.get("ok"):
                    latencies.append((time.monotonic() - t0) * 1000)
                else:
                    failed["refused"] = failed.get("refused", 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(
            *(one(c, "health:ping", {"t": time.time()}) for c in self.agents),
            *(one(c, "printers:list", {}) for c in self.operators),
        )
        return {
            "answered": len(latencies),
            "failed": failed,
            "latency_ms": latencies,
            "seconds": round(time.monotonic() - t0, 3),
        }

    async def cmd_close_operators(self) -> None:
        await close_all(self.operators)

    async def cmd_close_agents(self) -> None:
        await close_all(self.agents)

    async def close(self) -> None:
        await close_all(self.operators + self.agents)
        await self.session.close()


def _sum(parts: list[dict[str, Any]], key: str) -> int:
    return sum(int(p[key]) for p in parts)


async def measure(
    ctx: BenchContext, server: ServerProcess, *, name: str, into: dict[str, Any]
) -> dict[str, Any]:
    cfg = ctx.config
    total = cfg.cn_connections
    n_agents = round(total * cfg.cn_agent_share)
    n_ops = total - n_agents
    procs = cfg.cn_processes
    licenses = await ctx.licenses(server, n_agents)
    token = ctx.token(server, role="viewer", branch_ids=[1])
    workers = []
    for i in range(procs):
        workers.append(
            await ctx.worker(
                "connections:ConnectionHolders",
                f"{name}-clients-{i}",
                url=server.url,
                licenses=licenses[i::procs],
                operators=n_ops // procs + (1 if i < n_ops % procs else 0),
                token=token,
                tag=f"{name}-{i}",
            )
        )
    await asyncio.sleep(1.0)  # let the server settle after the provisioning writes
    rss_before = server.rss_kb() or 0
    pids = {"server": server.pid} | {f"clients-{i}": w.pid for i, w in enumerate(workers)}
    meter = CpuMeter(pids).start()
    async with ctx.profiled(server, name, cfg.connect_timeout, into):
        t0 = time.monotonic()
        agents = await call_all(
            workers, "connect_agents", concurrency=cfg.cn_concurrency, timeout=cfg.connect_timeout
        )
        t_agents = time.monotonic() - t0
        ctx.progress(f"{name}: {_sum(agents, 'connected')} agents connected in {t_agents:.1f}s")
        t1 = time.monotonic()
        ops = await call_all(
            workers,
            "connect_operators",
            concurrency=cfg.cn_concurrency,
            timeout=cfg.connect_timeout,
        )
        t_ops = time.monotonic() - t1
    connect_cpu = meter.stop()
    connected = _sum(agents, "connected") + _sum(ops, "connected")
    ctx.progress(f"{name}: {_sum(ops, 'connected')} operators connected in {t_ops:.1f}s")
    samples: list[int] = []
    meter = CpuMeter({"server": server.pid}).start()
    hold_end = time.monotonic() + cfg.duration
    while time.monotonic() < hold_end:
        await asyncio.sleep(min(1.0, max(0.0, hold_end - time.monotonic())))
        samples.append(server.rss_kb() or 0)
    hold_cpu = meter.stop()
    rss_held = samples[-1] if samples else (server.rss_kb() or 0)
    alive = await call_all(workers, "alive")
    pings = await call_all(
        workers, "ping", concurrency=cfg.cn_concurrency, ping_timeout=30.0, timeout=120
    )
    answered = _sum(pings, "answered")
    failed: dict[str, int] = {}
    for p in pings:
        for key, n in p["failed"].items():
            failed[key] = failed.get(key, 0) + n
    ping_ms = summary([x for p in pings for x in p["latency_ms"]])
    rss_after_ping = server.rss_kb() or 0
    await call_all(workers, "close_operators", timeout=120)
    await call_all(workers, "close_agents", timeout=120)
    await call_all(workers, "stop")
    server.check_alive()
    per_conn_kb = (rss_held - rss_before) / connected if connected else None
    figures = {
        "asked": total,
        "asked_agents": n_agents,
        "asked_operators": n_ops,
        "client_processes": procs,
        "connect_concurrency_per_process": cfg.cn_concurrency,
        "connected": connected,
        "connected_agents": _sum(agents, "connected"),
        "connected_operators": _sum(ops, "connected"),
        "connect_failures": _sum(agents, "failed") + _sum(ops, "failed"),
        "connect_errors": sorted({e for p in agents + ops for e in p["errors"]})[:5],
        "agents_connect_s": round(t_agents, 2),
        "operators_connect_s": round(t_ops, 2),
        "connect_rate": rate(connected, t_agents + t_ops),
        "agent_connect_rate": rate(_sum(agents, "connected"), t_agents),
        "operator_connect_rate": rate(_sum(ops, "connected"), t_ops),
        "connect_cpu_pct": connect_cpu,
        "hold_seconds": cfg.duration,
        "hold_cpu_pct": hold_cpu,
        "alive_before_ping": sum(a["agents"] + a["operators"] for a in alive),
        "answered_ping": answered,
        "ping_failed": failed,
        "ping_ms": ping_ms,
        "server_rss_mb_before": round(rss_before / 1024, 1),
        "server_rss_mb_held": round(rss_held / 1024, 1),
        "server_rss_mb_max": round(max(samples or [rss_held]) / 1024, 1),
        "server_rss_mb_after_ping": round(rss_after_ping / 1024, 1),
        "rss_kb_per_connection": round(per_conn_kb, 1) if per_conn_kb is not None else None,
    }
    into.update(figures)
    return figures


def add_figures(
    result: ScenarioResult, prefix: str, f: dict[str, Any], *, targets: bool = True
) -> None:
    bare = "baseline.connections" if prefix == "connections" else None
    mix = f"{f['asked_agents']:,} agents + {f['asked_operators']:,} operators"
    rows: list[tuple[str, str, float | None, str, Target | None]] = [
        ("answered", f"connections held, answering a ping ({mix})", f["answered_ping"], "",
         Target(">=", 10_000)),
        ("rss_kb_per_connection", "server RSS per connection", f["rss_kb_per_connection"], "KB",
         Target("<=", 40.0)),
        ("connect_rate", "connect rate (all)", f["connect_rate"], "conn/s", None),
        ("agent_connect_rate", "  agents (license check + 2 writes)", f["agent_connect_rate"],
         "conn/s", None),
        ("operator_connect_rate", "  operators (JWT)", f["operator_connect_rate"], "conn/s", None),
        ("rss_mb_held", "server RSS with every connection", f["server_rss_mb_held"], "MB", None),
        ("ping_p99_ms", "ping p99, all at once", f["ping_ms"]["p99"], "ms", None),
    ]  # fmt: skip
    for key, text, value, unit, target in rows:
        result.add(
            Figure(
                f"{prefix}.{key}",
                text,
                value,
                unit,
                target if targets else None,
                bare_key=f"{bare}.{key}" if bare else None,
            )
        )


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    hub = await ctx.start_hub("connections")
    try:
        figures = await measure(ctx, hub, name="connections", into=result.details)
    finally:
        await hub.stop()
    add_figures(result, "connections", figures)
