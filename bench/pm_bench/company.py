"""company: branch links syncing printer changes into a company hub while company
operators listen, on three setups side by side:

- ``sqlite``: one company-hub process on its embedded SQLite file;
- ``postgresql``: one process on PostgreSQL;
- ``postgresql+redis``: two processes on PostgreSQL and Redis, the branch links and
  the operators spread over both (as a load balancer would).

Each setup gets a fresh database (a new PostgreSQL database made for the run and
dropped after it). Light branch links (``pm_bench.branch_links``: no hub, agent or
printer behind them) connect, say hello and send a snapshot of their printers; 100
operators connect (``coalesce``, like the dashboard); then the links make
``co_rate`` printer changes a second in total for ``duration`` seconds. Figures:
changes the company acknowledged per second, the time from a change being made at
the branch to the last operator having it (every operator sees every branch), and
each process's memory with every link and operator connected.

PostgreSQL and Redis are found at ``PM_BENCH_POSTGRES_URL`` / ``PM_BENCH_REDIS_URL``
(default: the local ones); a setup whose service cannot be reached is reported as
not run, with the reason.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pm_bench.fanout import merge
from pm_bench.procs import BenchError, CpuMeter, ServerProcess, Worker, call_all, child_env
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext
from pm_bench.stats import rate

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql+redis", 2))


def postgres_url() -> str:
    return os.environ.get("PM_BENCH_POSTGRES_URL", POSTGRES_DEFAULT)


def redis_url() -> str:
    return os.environ.get("PM_BENCH_REDIS_URL", REDIS_DEFAULT)


async def _fresh_database(admin_url: str) -> tuple[str, str]:
    """A new, empty PostgreSQL database next to ``admin_url``'s: (its URL, its name)."""
    import psycopg

    name = f"pm_bench_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(
        admin_url, autocommit=True, connect_timeout=5
    ) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


async def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _reachable(setup: str) -> str | None:
    """Why ``setup`` cannot run here (None when it can)."""
    try:
        if setup.startswith("postgresql"):
            import psycopg

            conn = await psycopg.AsyncConnection.connect(postgres_url(), connect_timeout=3)
            await conn.close()
        if setup.endswith("redis"):
            from redis import asyncio as aioredis

            client = aioredis.Redis.from_url(redis_url(), socket_connect_timeout=3)
            await client.ping()
            await client.aclose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _start_hubs(
    ctx: BenchContext, setup: str, processes: int, database: str | None
) -> list[ServerProcess]:
    where = ctx.root / f"company-{setup.replace('+', '-')}"
    data_dir = where / "hub-data"  # shared: the processes sign and check tokens alike
    data_dir.mkdir(parents=True)
    hubs = []
    channel = f"pm-bench-{uuid.uuid4().hex[:8]}"
    for n in range(processes):
        args = [sys.executable, "-m", "pm", "hub", "--company-mode", "--data-dir", str(data_dir)]
        args += ["--port", "0", "--no-mdns", "--log-level", ctx.config.hub_log_level]
        env = child_env(
            PM_SQLITE_SYNCHRONOUS="FULL",
            PM_MAX_CONNECTIONS_PER_ADDRESS="0",
            PM_MAX_OPERATORS_PER_COMPANY="0",
            PM_OPS_RATE_LIMIT="0",
        )
        if database is not None:
            args += ["--database", database]
        if setup.endswith("redis"):
            args += ["--redis-url", redis_url()]
            env["PM_REDIS_CHANNEL"] = channel
        hub = await ServerProcess.start(
            ctx.procs, args, log_path=where / f"hub-{n}.log", name=f"company hub {n} ({setup})",
            env=env,
        )  # fmt: skip
        hub.data_dir = data_dir
        hubs.append(hub)
    return hubs


def _tokens(ctx: BenchContext, hub: ServerProcess, branches: int) -> dict[str, str]:
    assert hub.data_dir is not None
    from pm_hub.auth import TokenIssuer, load_or_create_secret

    issuer = TokenIssuer(load_or_create_secret(hub.data_dir))
    return {
        str(b): issuer.create(
            role="branch", branch_ids=[b], sub=f"bench-branch-{b}", ttl_seconds=7200
        )
        for b in range(1, branches + 1)
    }


async def measure(ctx: BenchContext, setup: str, processes: int, into: dict[str, Any]) -> None:
    cfg = ctx.config
    database = None
    dropped: str | None = None
    if setup.startswith("postgresql"):
        database, dropped = await _fresh_database(postgres_url())
    try:
        hubs = await _start_hubs(ctx, setup, processes, database)
        urls = [h.url for h in hubs]
        tokens = _tokens(ctx, hubs[0], cfg.co_branches)
        shares = _split(sorted(tokens, key=int), cfg.co_link_processes)
        links = [
            await ctx.worker(
                "branch_links:BranchLinks",
                f"company-{setup}-links-{i}",
                urls=urls,
                tokens={b: tokens[b] for b in share},
                printers=cfg.co_printers,
                tag=f"{setup}-{i}",
            )
            for i, share in enumerate(shares)
            if share
        ]
        t0 = time.monotonic()
        linked = await call_all(links, "connect", timeout=cfg.connect_timeout)
        link_s = time.monotonic() - t0
        ctx.progress(
            f"company ({setup}): {sum(x['links'] for x in linked)} branch links, "
            f"{sum(x['printers'] for x in linked)} printers in {link_s:.1f}s"
        )
        operator_token = ctx.token(hubs[0], role="admin")
        per_process = _split(list(range(cfg.co_operators)), cfg.co_listener_processes)
        listeners = [
            await ctx.worker(
                "fanout:StatusListeners",
                f"company-{setup}-operators-{i}",
                url=urls[i % len(urls)],
                token=operator_token,
                connections=len(share),
            )
            for i, share in enumerate(per_process)
            if share
        ]
        connected = await call_all(listeners, "connect", timeout=cfg.connect_timeout)
        operators = sum(c["connected"] for c in connected)
        await asyncio.sleep(1.0)  # the snapshot's broadcasts are over
        await call_all(listeners, "collect")
        rss = [round((h.rss_kb() or 0) / 1024, 1) for h in hubs]
        async with ctx.profiled(hubs[0], f"company-{setup}", cfg.duration, into):
            phase = await _phase(
                ctx,
                hubs,
                links,
                listeners,
                operators,
                rate_asked=cfg.co_rate,
                duration=cfg.duration,
            )
        rss_steady = [round((h.rss_kb() or 0) / 1024, 1) for h in hubs]
        # As fast as the links are acknowledged (each sends its next batch on the ack of
        # the one before, as a branch hub does): how far above the asked rate it goes.
        burst = await _phase(
            ctx, hubs, links, listeners, operators,
            rate_asked=cfg.co_rate * 10, duration=max(1.0, cfg.duration / 2),
        )  # fmt: skip
        rss_after = [round((h.rss_kb() or 0) / 1024, 1) for h in hubs]
        for hub in hubs:
            hub.check_alive()
        into.update(
            processes=processes,
            branches=sum(x["links"] for x in linked),
            printers=sum(x["printers"] for x in linked),
            operators=operators,
            link_seconds=round(link_s, 1),
            rss_mb_linked=rss,
            rss_mb_steady=rss_steady,
            rss_mb_after=rss_after,
            **phase,
            max=burst,
        )
        await call_all(links, "stop")
        await call_all(listeners, "stop")
        for hub in hubs:
            await hub.stop()
    finally:
        if dropped is not None:
            await _drop_database(postgres_url(), dropped)


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    parts = max(1, parts)
    return [items[i::parts] for i in range(parts)]


async def _phase(
    ctx: BenchContext,
    hubs: list[ServerProcess],
    links: list[Worker],
    listeners: list[Worker],
    operators: int,
    *,
    rate_asked: float,
    duration: float,
) -> dict[str, Any]:
    cfg = ctx.config
    pids = {f"hub-{i}": h.pid for i, h in enumerate(hubs)}
    pids |= {f"links-{i}": w.pid for i, w in enumerate(links)}
    pids |= {f"operators-{i}": w.pid for i, w in enumerate(listeners)}
    meter = CpuMeter(pids).start()
    t_start = time.monotonic() + 0.3
    results = await call_all(
        links,
        "sync_phase",
        t_start=t_start,
        duration=duration,
        rate=rate_asked / len(links),
        max_changes=cfg.co_max_changes // len(links),
        timeout=duration + 180,
    )
    cpu = meter.stop()
    sends = [s for r in results for s in r["sends"]]
    errors = sum(r["error_count"] for r in results)
    if errors and not any(s[4] for s in sends):
        raise BenchError(f"every change was refused: {results[0]['errors']}")
    acked = [s for s in sends if s[4]]
    # Applied per second: the changes acknowledged while the load ran, after its first
    # fifth (the links' first batches), over that time. Below the asked rate when the
    # company hub cannot keep up; the changes acknowledged after the load ended are
    # its lag (``drain_ms``).
    warm = t_start + duration / 5
    window = max(t_start + duration - warm, 1e-6)
    in_window = sum(1 for s in acked if warm <= s[3] <= t_start + duration)
    last_ack = max((s[3] for s in acked), default=t_start + duration)
    expected = len(acked) * operators
    deadline = time.monotonic() + max(30.0, cfg.duration)
    while time.monotonic() < deadline:
        progress = await call_all(listeners, "progress")
        if sum(p["deliveries"] for p in progress) >= expected:
            break
        await asyncio.sleep(0.2)
    collected = await call_all(listeners, "collect")
    merged = merge(sends, collected, operators)
    return {
        "rate_asked": rate_asked,
        "seconds": duration,
        "changes_made": len(sends),
        "changes_refused": errors,
        "applied_per_s": rate(in_window, window),
        "drain_ms": round(max(0.0, last_ack - t_start - duration) * 1000, 1),
        "cpu_pct": cpu,
        **merged,
    }


def add_figures(result: ScenarioResult, setup: str, f: dict[str, Any]) -> None:
    key = f"company.{setup}"
    who = f"{f['processes']} process{'es' if f['processes'] > 1 else ''}, {setup}"
    asked = f"{f['rate_asked']:,.0f} changes/s asked"
    rows: list[tuple[str, str, float | None, str, Target | None]] = [
        ("max_applied_per_s",
         f"[{who}] synced changes applied/s at most ({f['branches']} branches, "
         f"{f['operators']} operators listening)",
         f["max"]["applied_per_s"], "changes/s", Target(">=", 2000.0)),
        ("applied_per_s", f"[{who}] synced changes applied/s, {asked}",
         f["applied_per_s"], "changes/s", None),
        ("last_p99_ms", f"[{who}] branch change -> last operator, p99, {asked}",
         f["last_operator_ms"]["p99"], "ms", Target("<=", 1000.0)),
        ("last_median_ms", f"[{who}] branch change -> last operator, median",
         f["last_operator_ms"]["median"], "ms", None),
        ("rss_mb", f"[{who}] memory per process, links and operators connected, {asked}",
         max(f["rss_mb_steady"]), "MB", Target("<=", 200.0)),
        ("rss_after_max_mb", f"[{who}] memory per process after the unthrottled phase",
         max(f["rss_mb_after"]), "MB", None),
        ("incomplete", f"[{who}] changes that missed an operator",
         f["changes_not_reaching_every_operator"] + f["max"]["changes_not_reaching_every_operator"],
         "", None),
    ]  # fmt: skip
    for name, text, value, unit, target in rows:
        result.add(Figure(f"{key}.{name}", text, value, unit, target))


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    for setup, processes in SETUPS:
        if setup not in ctx.config.co_setups:
            continue
        why = await _reachable(setup)
        if why is not None:
            result.details[setup] = {"not_run": why}
            ctx.progress(f"company ({setup}): not run ({why})")
            continue
        details: dict[str, Any] = {}
        result.details[setup] = details
        await measure(ctx, setup, processes, details)
        add_figures(result, setup, details)
        await ctx.procs.close()
