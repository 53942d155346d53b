"""The agent side of the load: lightweight bench agents, or real agents with
simulated printers. Both run in load processes (:mod:`pm_bench.worker`).

A **bench agent** speaks the ``/agent`` contract and answers at once: a
``printer:test`` is acked and its ``printer:test:result`` sent straight after; a
``print:job`` is acked (``spooled``), then ``print:job:status printing`` and
``print:job:result completed`` follow. Nothing is printed or written to disk, so the
figure is the hub's own cost (and the same agent drives the bare relay).

A **real agent** is :class:`pm_agent.agent.Agent` with its SQLite spool
(``synchronous=FULL``) printing through python-escpos to
:class:`pm_agent.sim.printer.SimulatedPrinter` instances on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pm_bench.procs import bench_ssl
from pm_bench.wire import Reply, SioClient, close_all, connect_all, new_session

if TYPE_CHECKING:
    from pm_bench.procs import ServerProcess, Worker
    from pm_bench.runner import BenchContext

AGENT_NS = "/agent"


def seq_flag(seq: int) -> dict[str, bool]:
    """The flags of a benchmark status change: its sequence number, readable by operators."""
    return {f"bench_seq_{seq}": True}


def seq_of(flags: Any) -> int | None:
    if not isinstance(flags, dict):
        return None
    for name in flags:
        if isinstance(name, str) and name.startswith("bench_seq_"):
            try:
                return int(name[10:])
            except ValueError:
                return None
    return None


def _free(busy: set[int], printer_id: int, _task: object) -> None:
    busy.discard(printer_id)


class BenchAgents:
    """Several bench agents in one process, each with a few printers."""

    def __init__(self, *, url: str, licenses: list[str], printers_per_agent: int, tag: str) -> None:
        self.url = url
        self.licenses = licenses
        self.printers_per_agent = printers_per_agent
        self.tag = tag
        self.session = new_session()
        self.agents: list[SioClient] = []
        self.printers: list[tuple[SioClient, int]] = []
        self.seqs: dict[int, int] = {}  # printer id -> last status change number sent
        self.tests = 0
        self.jobs = 0
        self.job_ids: set[int] = set()

    def _on_test(self, data: Any = None) -> Reply:
        self.tests += 1
        cid = data.get("correlation_id") if isinstance(data, dict) else None
        result = {"correlation_id": cid, "ok": True, "duration_ms": 0.0}
        return Reply(ack={"ok": True}, then=[("printer:test:result", result)])

    def _on_job(self, data: Any = None) -> Reply:
        job = data.get("job") if isinstance(data, dict) else None
        if not isinstance(job, dict) or not isinstance(job.get("id"), int):
            return Reply(ack={"ok": False, "error": {"code": "invalid_payload", "message": "?"}})
        job_id = job["id"]
        if job_id in self.job_ids:  # redelivery: already done
            return Reply(ack={"ok": True, "status": "completed"})
        self.job_ids.add(job_id)
        self.jobs += 1
        return Reply(
            ack={"ok": True},
            then=[
                ("print:job:status", {"job_id": job_id, "status": "printing"}),
                ("print:job:result", {"job_id": job_id, "ok": True, "status": "completed"}),
            ],
        )

    async def cmd_connect(self, concurrency: int = 16) -> dict[str, Any]:
        handlers = {"printer:test": self._on_test, "print:job": self._on_job}
        for i, key in enumerate(self.licenses):
            auth = {"license_key": key, "device_id": f"{self.tag}-{i}", "name": f"bench-{i}"}
            self.agents.append(SioClient(self.session, self.url, AGENT_NS, auth, handlers))
        t0 = time.monotonic()
        connected, errors = await connect_all(self.agents, concurrency=concurrency)
        if errors:
            raise RuntimeError(f"{len(errors)} agents could not connect: {errors[:3]}")
        for i, agent in enumerate(self.agents):
            for p in range(self.printers_per_agent):
                address = f"tcp://bench-{self.tag}-{i}:{9100 + p}"
                ack = await agent.call(
                    "printer:discovered",
                    {"name": f"{self.tag}-{i}-{p}", "address": address, "status": "online"},
                )
                if not isinstance(ack, dict) or not ack.get("ok"):
                    raise RuntimeError(f"printer:discovered refused: {ack}")
                self.printers.append((agent, int(ack["printer_id"])))
        return {
            "agents": connected,
            "printers": [pid for _a, pid in self.printers],
            "seconds": round(time.monotonic() - t0, 3),
        }

    async def cmd_status_phase(
        self,
        *,
        t_start: float,
        duration: float,
        max_events: int,
        rate: float | None = None,
    ) -> dict[str, Any]:
        """Status reports of every printer of this process. Each keeps the status
        ``online`` and carries a new sequence number in its flags (counting on across
        phases), so each is a change the hub must broadcast as ``printer:update``,
        without the alert a paper or cover change would also raise.

        ``rate`` (events/s over all printers): open loop, a printer whose previous
        change is not acked yet skips its turn. ``rate`` None: as fast as the hub
        acks, one change in flight per printer. Returns every send with its times."""
        sends: list[list[Any]] = []  # [printer_id, seq, t_send, t_ack, ok]
        end = t_start + duration
        busy: set[int] = set()
        seqs = self.seqs
        skipped = 0

        async def change(agent: SioClient, pid: int) -> None:
            seqs[pid] = seqs.get(pid, 0) + 1
            seq = seqs[pid]
            record: list[Any] = [pid, seq, time.monotonic(), None, False]
            sends.append(record)
            payload = {"printer_id": pid, "status": "online", "flags": seq_flag(seq)}
            try:
                ack = await agent.call("printer:status", payload, timeout=30)
            except Exception:
                return
            record[3] = time.monotonic()
            record[4] = bool(isinstance(ack, dict) and ack.get("ok"))

        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        if rate is None:

            async def loop(agent: SioClient, pid: int) -> None:
                while time.monotonic() < end and len(sends) < max_events:
                    await change(agent, pid)

            await asyncio.gather(*(loop(a, p) for a, p in self.printers))
        else:
            tasks: set[asyncio.Task[None]] = set()
            i = 0
            while len(sends) + skipped < max_events:
                due = t_start + i / rate
                if due >= end:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                agent, pid = self.printers[i % len(self.printers)]
                i += 1
                if pid in busy:
                    skipped += 1
                    continue
                busy.add(pid)
                task = asyncio.create_task(change(agent, pid))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(functools.partial(_free, busy, pid))
            if tasks:
                await asyncio.wait(tasks, timeout=30)
        return {"sends": sends, "skipped": skipped}

    async def cmd_counts(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "jobs": self.jobs,
            "follow_up_acks": sum(a.follow_up_acks for a in self.agents),
            "follow_up_errors": sum(a.follow_up_errors for a in self.agents),
            "connected": sum(a.connected for a in self.agents),
        }

    async def cmd_stop(self) -> dict[str, Any]:
        return await self.cmd_counts()

    async def close(self) -> None:
        await close_all(self.agents)
        await self.session.close()


class SimPrinters:
    """Simulated ESC/POS printers in their own process (a printer is a separate device:
    its decoding must not eat the agent's CPU)."""

    def __init__(self, *, count: int) -> None:
        self.count = count
        self.fleet: Any = None

    async def cmd_start(self) -> dict[str, Any]:
        from pm_agent.sim.fleet import SimulatorFleet

        self.fleet = await SimulatorFleet.start(count=self.count, control_port=None)
        return {"printers": [[p.name, p.port] for p in self.fleet.printers]}

    async def cmd_counts(self) -> dict[str, Any]:
        receipts = [len(p.receipts) for p in self.fleet.printers] if self.fleet else []
        return {"receipts": sum(receipts), "per_printer": receipts}

    async def cmd_stop(self) -> dict[str, Any]:
        return await self.cmd_counts()

    async def close(self) -> None:
        if self.fleet is not None:
            await self.fleet.stop()


class RealAgents:
    """Real :class:`pm_agent.agent.Agent` instances, each driving its share of the
    simulated printers of a :class:`SimPrinters` process."""

    def __init__(
        self,
        *,
        url: str,
        licenses: list[str],
        printers: list[list[Any]],
        data_dir: str | None = None,
        spool_synchronous: str = "FULL",
        poll_interval: float = 2.0,
    ) -> None:
        self.url = url
        self.licenses = licenses
        self.printers = printers  # [name, port] of every printer, split among the agents
        self.spool_synchronous = spool_synchronous
        self.poll_interval = poll_interval
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pm-bench-agent-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.agents: list[Any] = []

    async def cmd_connect(self, timeout: float = 60.0) -> dict[str, Any]:
        from pm_agent.agent import Agent
        from pm_agent.printer_uri import parse_printer_spec

        t0 = time.monotonic()
        n = len(self.licenses)
        for i, key in enumerate(self.licenses):
            own = self.printers[i::n]
            agent = Agent(
                hub_url=self.url,
                license_key=key,
                data_dir=self.data_dir / f"agent-{i}",
                printers=[
                    parse_printer_spec(f"{name}=tcp://127.0.0.1:{port}") for name, port in own
                ],
                device_id=f"real-{i}-{secrets.token_hex(3)}",
                name=f"real-agent-{i}",
                poll_interval=self.poll_interval,
                spool_synchronous=self.spool_synchronous,
                tls=tls if isinstance(tls := bench_ssl(), ssl.SSLContext) else None,
            )
            self.agents.append(agent)
            await agent.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [w.printer_id for a in self.agents for w in a.workers]
            ready = all(w.status == "online" for a in self.agents for w in a.workers)
            if all(pid is not None for pid in ids) and ready:
                return {"printers": ids, "seconds": round(time.monotonic() - t0, 3)}
            await asyncio.sleep(0.05)
        raise RuntimeError("real agents did not register their printers in time")

    async def cmd_counts(self) -> dict[str, Any]:
        return {
            "jobs_printed": sum(w.jobs_printed for a in self.agents for w in a.workers),
            "connected": sum(a.connected for a in self.agents),
        }

    async def cmd_stop(self) -> dict[str, Any]:
        return await self.cmd_counts()

    async def close(self) -> None:
        await asyncio.gather(*(a.stop() for a in self.agents), return_exceptions=True)
        if self._tmp is not None:
            self._tmp.cleanup()


async def start_agents(
    ctx: BenchContext,
    server: ServerProcess,
    *,
    real: bool,
    agents: int,
    printers_per_agent: int,
    name: str,
) -> AgentSide:
    """The agent side of a scenario, connected with every printer registered."""
    licenses = await ctx.licenses(server, agents)
    sims = None
    if real:
        sims = await ctx.worker(
            "agents:SimPrinters", f"{name}-printers", count=agents * printers_per_agent
        )
        started = await sims.call("start")
        worker = await ctx.worker(
            "agents:RealAgents",
            f"{name}-agents",
            url=server.url,
            licenses=licenses,
            printers=started["printers"],
        )
    else:
        worker = await ctx.worker(
            "agents:BenchAgents",
            f"{name}-agents",
            url=server.url,
            licenses=licenses,
            printers_per_agent=printers_per_agent,
            tag=name,
        )
    registered = await worker.call("connect", timeout=ctx.config.connect_timeout)
    return AgentSide(worker, sims, registered["printers"], real)


@dataclass
class AgentSide:
    worker: Worker
    sims: Worker | None
    printers: list[int]
    real: bool

    @property
    def pids(self) -> dict[str, int]:
        pids = {"agents": self.worker.pid}
        if self.sims is not None:
            pids["sim_printers"] = self.sims.pid
        return pids

    @property
    def description(self) -> str:
        if self.real:
            return (
                "real pm_agent Agent (spool synchronous=FULL, python-escpos) printing to "
                "simulated ESC/POS printers in their own process"
            )
        return "bench agents (answer at once, nothing printed)"

    async def stop(self) -> dict[str, Any]:
        counts: dict[str, Any] = await self.worker.call("stop")
        if self.sims is not None:
            counts |= await self.sims.call("stop")
        return counts
