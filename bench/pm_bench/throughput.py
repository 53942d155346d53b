"""throughput: jobs submitted as fast as the hub accepts them, persistence on.

Operator connections submit ``job:submit`` (a small kitchen ticket) round robin over
every printer, each with at most ``tp_ack_window`` submits waiting for their ack and
at most ``tp_backlog`` of its jobs not yet completed (so the backlog, and with it the
latency, stays bounded: latency ~ backlog / throughput). A job counts as completed
when an operator receives its ``job:update`` with status ``completed``; its latency
runs from the submit to that moment. Jobs/s is what completed inside the load
window, divided by the window. Afterwards the hub's SQLite file is read to check
that every accepted job is there, in its final state.

Variants: bench agents that finish every job at once (the hub's own capacity), and
real agents (``pm_agent.agent.Agent``, spool ``synchronous=FULL``) printing through
python-escpos to simulated printers (end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pm_bench.agents import start_agents
from pm_bench.procs import CpuMeter, ServerProcess
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext
from pm_bench.stats import rate, summary
from pm_bench.wire import SioClient, close_all, connect_all, new_session

FINAL = frozenset({"completed", "failed", "cancelled", "expired"})

TICKET = {
    "blocks": [
        {"type": "text", "text": "TABLE 12", "bold": True, "align": "center"},
        {"type": "text", "text": "2x Burger medium"},
        {"type": "text", "text": "1x Fries, no salt"},
        {"type": "line"},
        {"type": "text", "text": "server: Ana   12:41"},
        {"type": "cut"},
    ]
}


class JobSubmitters:
    """Operator connections submitting jobs and watching them complete (worker target)."""

    def __init__(self, *, url: str, token: str, connections: int) -> None:
        self.session = new_session()
        self.clients = [
            # Like the dashboard, submitters ask for batched updates (jobs:update).
            SioClient(
                self.session,
                url,
                "/ops",
                {"token": token, "coalesce": True},
                {"job:update": self._on_update, "jobs:update": self._on_batch},
            )
            for _ in range(connections)
        ]
        self._reset()

    def _reset(self) -> None:
        self.t_submit: dict[int, float] = {}
        self.owner: dict[int, asyncio.Semaphore] = {}
        self.finished: set[int] = set()
        self.early: dict[int, tuple[float, str]] = {}
        self.latency_ms: list[float] = []
        self.completed_at: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.progress = asyncio.Event()

    def _on_batch(self, data: Any = None) -> None:
        jobs = data.get("jobs") if isinstance(data, dict) else None
        for job in jobs if isinstance(jobs, list) else ():
            self._on_update(job)

    def _on_update(self, data: Any = None) -> None:
        if not isinstance(data, dict) or data.get("status") not in FINAL:
            return
        job_id = data.get("id")
        if not isinstance(job_id, int) or job_id in self.finished:
            return
        now = time.monotonic()
        if job_id in self.t_submit:
            self._finish(job_id, now, data["status"])
        else:
            self.early[job_id] = (now, data["status"])

    def _finish(self, job_id: int, now: float, status: str) -> None:
        self.finished.add(job_id)
        self.progress.set()
        self.outcomes[status] += 1
        if status == "completed":
            self.latency_ms.append((now - self.t_submit[job_id]) * 1000)
            self.completed_at.append(now)
        backlog = self.owner.pop(job_id, None)
        if backlog is not None:
            backlog.release()

    async def cmd_connect(self) -> dict[str, Any]:
        connected, errors = await connect_all(self.clients)
        if errors:
            raise RuntimeError(f"operators could not connect: {errors[:3]}")
        return {"connected": connected}

    async def cmd_run(
        self,
        *,
        printers: list[int],
        duration: float,
        t_start: float,
        ack_window: int,
        backlog: int,
        drain_s: float,
        max_jobs: int,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._reset()
        end = t_start + duration
        ack_ms: list[float] = []
        errors: Counter[str] = Counter()
        submitted = 0
        tasks: set[asyncio.Task[None]] = set()

        async def submit(client: SioClient, gate: asyncio.Semaphore, bl: asyncio.Semaphore) -> None:
            nonlocal submitted
            submitted += 1
            payload = {"printer_id": printers[submitted % len(printers)], "document": TICKET}
            t0 = time.monotonic()
            try:
                ack = await client.call("job:submit", payload, timeout)
            except Exception as exc:
                errors[f"ack:{type(exc).__name__}"] += 1
                bl.release()
                return
            finally:
                gate.release()
            if not isinstance(ack, dict) or not ack.get("ok"):
                code = (ack.get("error") or {}).get("code") if isinstance(ack, dict) else "?"
                errors[f"refused:{code}"] += 1
                bl.release()
                return
            ack_ms.append((time.monotonic() - t0) * 1000)
            job_id = ack["job"]["id"]
            self.t_submit[job_id] = t0
            self.owner[job_id] = bl
            early = self.early.pop(job_id, None)
            if early is not None:
                self._finish(job_id, *early)

        async def feed(client: SioClient) -> None:
            gate = asyncio.Semaphore(ack_window)
            bl = asyncio.Semaphore(backlog)
            while submitted < max_jobs:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(bl.acquire(), remaining)
                except TimeoutError:
                    return
                await gate.acquire()
                if time.monotonic() >= end:
                    gate.release()
                    bl.release()
                    return
                task = asyncio.create_task(submit(client, gate, bl))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        await asyncio.gather(*(feed(c) for c in self.clients))
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout)
        accepted = len(self.t_submit)
        drain_end = time.monotonic() + drain_s
        while len(self.finished) < accepted and time.monotonic() < drain_end:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), drain_end - time.monotonic())
        drained_s = time.monotonic() - end
        in_window = sum(1 for t in self.completed_at if t <= end)
        per_second = Counter(int(t - t_start) for t in self.completed_at if t <= end)
        return {
            "submitted": submitted,
            "accepted": accepted,
            "completed": self.outcomes["completed"],
            "completed_in_window": in_window,
            "outcomes": dict(self.outcomes),
            "unfinished_after_drain": accepted - len(self.finished),
            "drain_seconds": round(drained_s, 2),
            "errors": dict(errors),
            "latency_ms": summary(self.latency_ms),
            "ack_ms": summary(ack_ms),
            "completed_per_second": [per_second.get(s, 0) for s in range(int(duration))],
            "duration": duration,
        }

    async def close(self) -> None:
        await close_all(self.clients)
        await self.session.close()


def job_counts(data_dir: Path) -> dict[str, Any]:
    """What the hub's SQLite file says about jobs (read-only, while the hub runs)."""
    conn = sqlite3.connect(f"file:{data_dir / 'hub.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
        events = conn.execute("SELECT COUNT(*) FROM job_events").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        conn.close()
    return {"jobs_by_status": statuses, "job_events": events, "reader_synchronous": sync}


async def measure(
    ctx: BenchContext, server: ServerProcess, *, real_agents: bool, name: str, into: dict[str, Any]
) -> dict[str, Any]:
    cfg = ctx.config
    if real_agents:
        n_agents, per_agent = cfg.tp_real_agents, cfg.tp_real_printers_per_agent
    else:
        n_agents, per_agent = cfg.tp_agents, cfg.tp_printers_per_agent
    side = await start_agents(
        ctx, server, real=real_agents, agents=n_agents, printers_per_agent=per_agent, name=name
    )
    submitters = await ctx.worker(
        "throughput:JobSubmitters",
        f"{name}-operators",
        url=server.url,
        token=ctx.token(server),
        connections=cfg.tp_submitters,
    )
    await submitters.call("connect", timeout=cfg.connect_timeout)
    printers = side.printers
    run_args: dict[str, Any] = {
        "printers": printers,
        "ack_window": cfg.tp_ack_window,
        "backlog": cfg.tp_backlog,
        "max_jobs": cfg.tp_max_jobs,
    }
    warm = await submitters.call(
        "run", duration=0.5, t_start=time.monotonic(), drain_s=10.0, **run_args
    )
    meter = CpuMeter({"server": server.pid, "operators": submitters.pid} | side.pids)
    drain_s = max(10.0, cfg.duration)
    async with ctx.profiled(server, name, cfg.duration, into):
        meter.start()
        run = await submitters.call(
            "run",
            duration=cfg.duration,
            t_start=time.monotonic() + 0.2,
            drain_s=drain_s,
            timeout=cfg.duration + drain_s + 120,
            **run_args,
        )
        cpu = meter.stop()
    await asyncio.sleep(0.5)  # the last transitions reach the file
    assert server.data_dir is not None
    db = await asyncio.to_thread(job_counts, server.data_dir)
    counts = await side.stop()
    await submitters.call("stop")
    server.check_alive()
    accepted_total = warm["accepted"] + run["accepted"]
    figures = {
        "agents": side.description,
        "agent_count": n_agents,
        "printers": len(printers),
        "operators": cfg.tp_submitters,
        "ack_window_per_operator": cfg.tp_ack_window,
        "backlog_per_operator": cfg.tp_backlog,
        "completed_per_s": rate(run["completed_in_window"], run["duration"]),
        "accepted_per_s": rate(run["accepted"], run["duration"]),
        "run": run,
        "warmup_accepted": warm["accepted"],
        "hub_db": db,
        "persisted_all": sum(db["jobs_by_status"].values()) == accepted_total,
        "completed_in_db": db["jobs_by_status"].get("completed", 0),
        "accepted_total": accepted_total,
        "cpu_pct": cpu,
        "server_rss_mb": round((server.rss_kb() or 0) / 1024, 1),
        "agent_counts": counts,
    }
    into.update(figures)
    return figures


def add_figures(result: ScenarioResult, prefix: str, f: dict[str, Any], *, label: str) -> None:
    run = f["run"]
    note = (
        f"{f['agent_count']} agents x {f['printers'] // max(f['agent_count'], 1)} printers, "
        f"{f['operators']} operators, backlog {f['backlog_per_operator']} each"
    )
    rows: list[tuple[str, str, float | None, str, Target | None]] = [
        ("completed_per_s", f"jobs completed/s ({label})", f["completed_per_s"], "jobs/s",
         Target(">=", 1000.0)),
        ("accepted_per_s", f"jobs accepted/s ({label})", f["accepted_per_s"], "jobs/s", None),
        ("latency_median_ms", f"submit -> completed median ({label})",
         run["latency_ms"]["median"], "ms", None),
        ("latency_p99_ms", f"submit -> completed p99 ({label})", run["latency_ms"]["p99"], "ms",
         None),
        ("ack_median_ms", f"submit -> ack (persisted) median ({label})", run["ack_ms"]["median"],
         "ms", None),
    ]  # fmt: skip
    for key, text, value, unit, target in rows:
        result.add(Figure(f"{prefix}.{key}", text, value, unit, target, note=note))
    refused = sum(run["errors"].values())
    result.add(
        Figure(
            f"{prefix}.submits_refused",
            f"submits refused or unanswered ({label})",
            refused,
            "",
            note=f"by reason: {run['errors']}" if refused else "",
        )
    )
    lost = f["accepted_total"] - f["completed_in_db"]
    result.add(
        Figure(
            f"{prefix}.not_completed",
            f"accepted jobs not completed in the hub DB ({label})",
            lost,
            "",
            Target("<=", 0),
            note="read from hub.sqlite after the drain",
        )
    )


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    for real, name, prefix, label in (
        (False, "throughput-bench", "throughput", "bench agents"),
        (True, "throughput-real", "throughput_real", "real agents + sim printers"),
    ):
        ctx.progress(f"throughput: {label}")
        details: dict[str, Any] = {}
        result.details[name] = details
        hub = await ctx.start_hub(name)
        try:
            figures = await measure(ctx, hub, real_agents=real, name=name, into=details)
        finally:
            await hub.stop()
            await ctx.procs.close()
        add_figures(result, prefix, figures, label=label)
