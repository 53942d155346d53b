"""fanout: 1,000 operators in one branch room; agents report status changes.

Every change carries its sequence number (a ``bench_seq_<n>`` flag; the status stays
``online``), so it is a real change the hub must broadcast as ``printer:update``, and
no alert rides along (a paper-out change would add an alert broadcast). Each operator
notes when it first sees a printer with at least that number (so a hub that coalesced
bursts would still be measured fairly); the listener processes merge that per change
into how many operators have it, the first and the last arrival. The figure is the
time from the agent sending the change to the *last* operator having it.

Phases, on the same connections:

1. ``steady`` (``duration``): ``fo_rate`` changes/s in total, spread over the printers.
2. ``max`` (``duration / 2``): every printer sends its next change as soon as the
   previous one is acked; ingest = changes acked per second, each delivered to every
   operator.
3. ``no-listeners`` (``duration / 4``): the same after the operators left: what
   ingest costs without the broadcast.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from pm_bench.agents import seq_of
from pm_bench.procs import CpuMeter, ServerProcess, Worker, call_all
from pm_bench.report import Figure, ScenarioResult, Target
from pm_bench.runner import BenchContext
from pm_bench.stats import rate, summary
from pm_bench.wire import SioClient, close_all, connect_all, new_session

#: One printer of a ``printers:update`` batch as the hub writes it: ``id`` first, then
#: either the whole printer (``name``, ..., ``flags``) or its status fields (``status``,
#: ``flags``), ``flags`` holding the ``bench_seq_<n>`` flag: (id, n).
BATCH_ENTRY = re.compile(r'\{"id":(\d+),[^{]*?"flags":\{[^}]*?"bench_seq_(\d+)"')


class StatusListeners:
    """Operator connections that record when each status change reaches them."""

    def __init__(self, *, url: str, token: str, connections: int) -> None:
        self.session = new_session()
        self.clients: list[SioClient] = []
        #: Per operator: printer -> highest sequence number seen, and what it was at
        #: the last collect.
        self.last: list[dict[int, int]] = [{} for _ in range(connections)]
        self.base: list[dict[int, int]] = [{} for _ in range(connections)]
        #: Per operator: printer -> [(sequence number, when it arrived), ...] rising.
        self.timeline: list[dict[int, list[tuple[int, float]]]] = [{} for _ in range(connections)]
        self.received = 0
        for index in range(connections):
            handler = self._handler(index)
            # Like the dashboard, each operator asks for batched printer updates
            # (printers:update); the bare relay ignores that and sends printer:update.
            self.clients.append(
                SioClient(
                    self.session,
                    url,
                    "/ops",
                    {"token": token, "coalesce": True},
                    {"printer:update": self._single(handler)},
                    {"printers:update": self._batch(handler)},
                )
            )

    @staticmethod
    def _single(handler: Any) -> Any:
        def on_update(data: Any = None) -> None:
            if isinstance(data, dict) and isinstance(data.get("id"), int):
                seq = seq_of(data.get("flags"))
                if seq is not None:
                    handler(data["id"], seq)

        return on_update

    def _batch(self, handler: Any) -> Any:
        # A batch is up to 20 printers, 5 a second to every operator; the
        # listeners share the 2 cores with the hub, so they pick out (id, sequence)
        # without decoding the JSON (a quarter of the cost). A batch whose entries do
        # not match shows up as changes that missed an operator.
        def on_batch(text: str) -> None:
            for printer_id, seq in BATCH_ENTRY.findall(text):
                handler(int(printer_id), int(seq))

        return on_batch

    def _handler(self, index: int) -> Any:
        # Only what arrived when: a batch may move a printer on by dozens of changes at
        # once, and filling in each of them for each operator here cost the listeners
        # more than reading the websocket (it is done once per phase in cmd_collect).
        last, timeline = self.last[index], self.timeline[index]

        def on_update(printer_id: int, seq: int) -> None:
            self.received += 1
            if seq > last.get(printer_id, 0):
                last[printer_id] = seq
                timeline.setdefault(printer_id, []).append((seq, time.monotonic()))

        return on_update

    async def cmd_connect(self, concurrency: int = 32) -> dict[str, Any]:
        t0 = time.monotonic()
        connected, errors = await connect_all(self.clients, concurrency=concurrency)
        if errors:
            raise RuntimeError(f"{len(errors)} operators could not connect: {errors[:3]}")
        return {"connected": connected, "seconds": round(time.monotonic() - t0, 3)}

    async def cmd_progress(self) -> dict[str, Any]:
        deliveries = sum(
            seq - base.get(printer_id, 0)
            for last, base in zip(self.last, self.base, strict=True)
            for printer_id, seq in last.items()
        )
        return {"deliveries": deliveries, "received": self.received}

    async def cmd_collect(self) -> dict[str, Any]:
        """Arrivals since the last collect: [[printer_id, seq, count, first, last], ...]."""
        # Operators mostly got the same batches, so first the runs of changes that
        # arrived together: (printer, after, up to) -> [operators, first, last].
        runs: dict[tuple[int, int, int], list[float]] = {}
        for base, timeline in zip(self.base, self.timeline, strict=True):
            for printer_id, arrived in timeline.items():
                after = base.get(printer_id, 0)
                for seq, at in arrived:
                    run = runs.get((printer_id, after, seq))
                    if run is None:
                        runs[(printer_id, after, seq)] = [1, at, at]
                    else:
                        run[0] += 1
                        run[1] = min(run[1], at)
                        run[2] = max(run[2], at)
                    after = seq
        arrivals: dict[tuple[int, int], list[float]] = {}  # -> [count, first, last]
        for (printer_id, after, upto), (count, first, last) in runs.items():
            for seq in range(after + 1, upto + 1):
                record = arrivals.get((printer_id, seq))
                if record is None:
                    arrivals[(printer_id, seq)] = [count, first, last]
                else:
                    record[0] += count
                    record[1] = min(record[1], first)
                    record[2] = max(record[2], last)
        for base, seen, timeline in zip(self.base, self.last, self.timeline, strict=True):
            base.update(seen)  # in place: the handlers hold these dicts
            timeline.clear()
        rows = [[p, s, *record] for (p, s), record in arrivals.items()]
        return {"arrivals": rows, "connected": sum(c.connected for c in self.clients)}

    async def cmd_disconnect(self) -> dict[str, Any]:
        await close_all(self.clients)
        return {"connected": sum(c.connected for c in self.clients)}

    async def close(self) -> None:
        await close_all(self.clients)
        await self.session.close()


def merge(
    sends: list[list[Any]], collected: list[dict[str, Any]], operators: int
) -> dict[str, Any]:
    """Per change: latency to the first and the last operator, and what went missing."""
    arrivals: dict[tuple[int, int], list[float]] = {}
    for part in collected:
        for printer_id, seq, count, first, last in part["arrivals"]:
            key = (printer_id, seq)
            record = arrivals.get(key)
            if record is None:
                arrivals[key] = [count, first, last]
            else:
                record[0] += count
                record[1] = min(record[1], first)
                record[2] = max(record[2], last)
    last_ms: list[float] = []
    first_ms: list[float] = []
    incomplete = 0
    acked = [s for s in sends if s[4]]
    for printer_id, seq, t_send, _t_ack, _ok in acked:
        record = arrivals.get((printer_id, seq))
        if record is None or record[0] < operators:
            incomplete += 1
            continue
        first_ms.append((record[1] - t_send) * 1000)
        last_ms.append((record[2] - t_send) * 1000)
    ack_ms = [(s[3] - s[2]) * 1000 for s in acked]
    return {
        "changes_sent": len(sends),
        "changes_acked": len(acked),
        "changes_not_reaching_every_operator": incomplete,
        "deliveries": sum(min(r[0], operators) for r in arrivals.values()),
        "last_operator_ms": summary(last_ms),
        "first_operator_ms": summary(first_ms),
        "ack_ms": summary(ack_ms),
    }


async def _phase(
    agents: Worker,
    listeners: list[Worker],
    *,
    operators: int,
    duration: float,
    max_events: int,
    rate_: float | None,
    server: ServerProcess,
) -> dict[str, Any]:
    pids = {"server": server.pid, "agents": agents.pid}
    pids |= {f"operators-{i}": w.pid for i, w in enumerate(listeners)}
    meter = CpuMeter(pids).start()
    t_start = time.monotonic() + 0.2
    sent = await agents.call(
        "status_phase",
        t_start=t_start,
        duration=duration,
        max_events=max_events,
        rate=rate_,
        timeout=duration + 120,
    )
    send_s = max((s[3] or s[2] for s in sent["sends"]), default=t_start) - t_start
    cpu = meter.stop()
    acked = sum(1 for s in sent["sends"] if s[4])
    expected = acked * operators
    deadline = time.monotonic() + max(30.0, duration)
    while listeners and time.monotonic() < deadline:
        progress = await call_all(listeners, "progress")
        if sum(p["deliveries"] for p in progress) >= expected:
            break
        await asyncio.sleep(0.1)
    collected = await call_all(listeners, "collect") if listeners else []
    merged = merge(sent["sends"], collected, operators) if listeners else {}
    return {
        "rate_asked": rate_,
        "skipped_busy": sent["skipped"],
        "ingest_per_s": rate(acked, send_s),
        "deliveries_per_s": rate(acked * operators, send_s),
        "cpu_pct": cpu,
        **merged,
        "changes_acked": acked,
    }


async def measure(
    ctx: BenchContext, server: ServerProcess, *, name: str, into: dict[str, Any]
) -> dict[str, Any]:
    cfg = ctx.config
    licenses = await ctx.licenses(server, cfg.fo_agents)
    agents = await ctx.worker(
        "agents:BenchAgents",
        f"{name}-agents",
        url=server.url,
        licenses=licenses,
        printers_per_agent=cfg.fo_printers_per_agent,
        tag=name,
    )
    registered = await agents.call("connect", timeout=cfg.connect_timeout)
    token = ctx.token(server, role="viewer", branch_ids=[1])
    share = [cfg.fo_operators // cfg.fo_processes] * cfg.fo_processes
    share[0] += cfg.fo_operators - sum(share)
    listeners = [
        await ctx.worker(
            "fanout:StatusListeners",
            f"{name}-operators-{i}",
            url=server.url,
            token=token,
            connections=n,
        )
        for i, n in enumerate(share)
    ]
    rss_before = server.rss_kb()
    t0 = time.monotonic()
    connected = await call_all(listeners, "connect", timeout=cfg.connect_timeout)
    connect_s = time.monotonic() - t0
    operators = sum(c["connected"] for c in connected)
    into.update(
        printers=len(registered["printers"]),
        agents=cfg.fo_agents,
        operators=operators,
        listener_processes=cfg.fo_processes,
        connect_seconds=round(connect_s, 2),
        server_rss_mb_before_operators=round((rss_before or 0) / 1024, 1),
        server_rss_mb_with_operators=round((server.rss_kb() or 0) / 1024, 1),
    )
    ctx.progress(f"fanout: {operators} operators connected in {connect_s:.1f}s")
    half = max(1.0, cfg.duration / 2)
    steady = await _phase(
        agents,
        listeners,
        operators=operators,
        duration=cfg.duration,
        max_events=cfg.fo_max_events,
        rate_=cfg.fo_rate,
        server=server,
    )
    async with ctx.profiled(server, name, half, into):
        burst = await _phase(
            agents,
            listeners,
            operators=operators,
            duration=half,
            max_events=cfg.fo_max_events,
            rate_=None,
            server=server,
        )
    await call_all(listeners, "disconnect")
    await asyncio.sleep(0.5)
    alone = await _phase(
        agents,
        [],
        operators=0,
        duration=max(1.0, cfg.duration / 4),
        max_events=cfg.fo_max_events,
        rate_=None,
        server=server,
    )
    await agents.call("stop")
    await call_all(listeners, "stop")
    server.check_alive()
    figures = {"steady": steady, "max": burst, "no_listeners": alone}
    into.update(figures)
    return figures


def add_figures(
    result: ScenarioResult, prefix: str, f: dict[str, Any], operators: int, *, targets: bool = True
) -> None:
    bare = "baseline.fanout" if prefix == "fanout" else None
    steady, burst, alone = f["steady"], f["max"], f["no_listeners"]
    n = f"{operators:,} operators"
    rows: list[tuple[str, str, float | None, str, Target | None]] = [
        ("steady_last_median_ms",
         f"change -> last of {n}, median ({steady['rate_asked']:g} changes/s)",
         steady["last_operator_ms"]["median"], "ms", None),
        ("steady_last_p99_ms", f"change -> last of {n}, p99", steady["last_operator_ms"]["p99"],
         "ms", Target("<=", 250.0)),
        ("max_ingest_per_s", f"status changes ingested/s, {n} listening",
         burst["ingest_per_s"], "events/s", Target(">=", 5000.0)),
        ("max_deliveries_per_s", "  = deliveries to operators/s", burst["deliveries_per_s"],
         "msg/s", None),
        ("max_last_p99_ms", f"change -> last of {n}, p99 at max ingest",
         burst["last_operator_ms"]["p99"], "ms", None),
        ("no_listeners_ingest_per_s", "status changes ingested/s, nobody listening",
         alone["ingest_per_s"], "events/s", None),
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
    lost = (
        steady["changes_not_reaching_every_operator"] + burst["changes_not_reaching_every_operator"]
    )
    result.add(Figure(f"{prefix}.incomplete", "changes that missed an operator", lost, ""))


async def run(ctx: BenchContext, result: ScenarioResult) -> None:
    hub = await ctx.start_hub("fanout")
    try:
        figures = await measure(ctx, hub, name="fanout", into=result.details)
    finally:
        await hub.stop()
    add_figures(result, "fanout", figures, result.details["operators"])
