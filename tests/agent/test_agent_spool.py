"""The agent's spool does not grow forever: finished jobs are forgotten after the
retention window, never while the hub may still send them again."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from pm_agent.sim.fleet import SimulatorFleet
from pm_agent.spool import JobSpool
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually, receipt_doc


def job(job_id: int) -> dict[str, Any]:
    return {"id": job_id, "printer_id": 1, "document": receipt_doc(str(job_id))}


def spool_job_ids(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT job_id FROM spool_jobs ORDER BY job_id")]


async def test_spool_keeps_finished_jobs_for_the_window_and_until_the_hub_has_the_result(
    tmp_path: Path,
) -> None:
    spool = JobSpool(tmp_path / "agent-spool.sqlite", synchronous="NORMAL", retention=60)
    await asyncio.to_thread(spool.open)
    try:
        await spool.accept(job(1))
        await spool.start_printing(1)
        await spool.finish(1, "completed")
        await spool.accept(job(2))
        await spool.finish(2, "cancelled", only_from=("pending",))
        await spool.accept(job(3))  # still waiting for its printer
        now = time.time()

        # Inside the window a redelivery is answered with the outcome, not printed again.
        assert await spool.prune(now=now + 30) == 0
        again, new = await spool.accept(job(1))
        assert not new and again.state == "completed"

        # Past the window, but the hub has not acknowledged the results yet: it may
        # still send these jobs again, so they stay.
        assert await spool.prune(now=now + 120) == 0
        assert spool_job_ids(tmp_path / "agent-spool.sqlite") == [1, 2, 3]

        await spool.outbox_done([item.id for item in await spool.outbox()])
        assert await spool.prune(now=now + 120) == 2
        # The waiting job is never forgotten, however old.
        assert await spool.prune(now=now + 10 * 365 * 86400) == 0
        assert spool_job_ids(tmp_path / "agent-spool.sqlite") == [3]
    finally:
        await asyncio.to_thread(spool.close)


async def test_running_agent_prunes_its_spool(
    ops: OpsClient, fleet: SimulatorFleet, make_agent: AgentFactory
) -> None:
    """A printed job is remembered for the retention window, then the agent forgets it
    by itself (here a 1 s window checked every 0.2 s; 7 days and hourly by default)."""
    printer = fleet.printers[0]
    agent = await make_agent(
        [f"{printer.name}=tcp://127.0.0.1:{printer.port}"], spool_retention=1.0, prune_interval=0.2
    )
    await eventually(lambda: agent.by_printer_id, what="printer registered")
    printer_id = next(iter(agent.by_printer_id))
    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc("p")})
    job_id = ack["job"]["id"]
    await ops.wait_for("job:update", lambda j: j["id"] == job_id and j["status"] == "completed")
    finished_at = time.monotonic()
    path = agent.data_dir / "agent-spool.sqlite"
    assert spool_job_ids(path) == [job_id]  # inside the window: still known
    await eventually(lambda: spool_job_ids(path) == [], timeout=10, what="job pruned")
    assert time.monotonic() - finished_at >= 0.5
