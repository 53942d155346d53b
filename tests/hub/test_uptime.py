"""A printer's availability over 24 h and 7 days, its heartbeat (one cell per half
hour, the worst state in it) and its activity (tickets a minute, print time), from
the status history and the jobs the hub keeps (issue 16, "Uptime and activity")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from pm_core.protocol import AgentEvent, OpsEvent
from pm_core.sql import Session
from pm_hub.server import RunningHub
from pm_hub.store import jobs as job_store
from pm_hub.store import prepare_hub_db, tenants
from pm_hub.store import printers as printer_store
from pm_hub.store.uptime import (
    HEARTBEAT_CELLS,
    availability,
    heartbeat,
    printer_activity,
    printer_changes,
    printer_uptime,
    prune_printer_events,
    segments,
)
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.raw_agent import RawAgent
from tests.support.services import close, open_session

NOW = 1_000_000.0
HOUR = 3600.0


def test_availability_counts_only_the_time_it_could_print() -> None:
    # Online for 18 h, paper out for 6 h of the last day.
    changes = [(NOW - 24 * HOUR, "online"), (NOW - 6 * HOUR, "paper_out")]
    assert availability(changes, NOW - 24 * HOUR, NOW) == 0.75
    # paper_low still prints.
    assert availability([(NOW - 24 * HOUR, "paper_low")], NOW - 24 * HOUR, NOW) == 1.0
    # Time before the first change is unknown, not counted either way.
    assert (
        availability([(NOW - 2 * HOUR, "online"), (NOW - HOUR, "offline")], NOW - 24 * HOUR, NOW)
        == 0.5
    )
    assert availability([], NOW - 24 * HOUR, NOW) is None
    # A change before the window gives the status the window begins in.
    assert segments([(NOW - 100 * HOUR, "offline")], NOW - HOUR, NOW) == [
        (NOW - HOUR, NOW, "offline")
    ]


def test_the_heartbeat_shows_the_worst_state_of_each_cell() -> None:
    changes = [
        (NOW - 24 * HOUR, "online"),
        (NOW - 90 * 60, "cover_open"),  # 10 minutes, inside the third cell from the end
        (NOW - 80 * 60, "online"),
        (NOW - 10 * 60, "paper_low"),
    ]
    cells = heartbeat(changes, NOW)
    assert len(cells) == HEARTBEAT_CELLS
    assert cells[-4:] == ["up", "down", "up", "degraded"]
    assert cells[:-4] == ["up"] * (HEARTBEAT_CELLS - 4)
    assert heartbeat([(NOW - HOUR, "online")], NOW)[:-2] == ["none"] * (HEARTBEAT_CELLS - 2)


async def test_printer_get_reports_uptime_heartbeat_and_activity(
    hub: RunningHub, ops: OpsClient
) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "uptime-box").connect()
    try:
        printer_id = (await agent.register("serial:UP-1"))["printer_id"]
        status = {"printer_id": printer_id, "status": "online"}
        await agent.call(AgentEvent.PRINTER_STATUS, status)
        job = await ops.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("U")}
        )
        job_id = job["job"]["id"]
        await eventually(lambda: agent.jobs, what="the job at the agent")
        await agent.call(AgentEvent.PRINT_JOB_STATUS, {"job_id": job_id, "status": "printing"})
        await asyncio.sleep(0.05)
        await agent.call(
            AgentEvent.PRINT_JOB_RESULT, {"job_id": job_id, "ok": True, "status": "completed"}
        )
        await agent.call(AgentEvent.PRINTER_STATUS, {**status, "status": "paper_out"})
        await asyncio.sleep(0.2)

        async def reported() -> dict[str, object] | None:
            got = await ops.call(OpsEvent.PRINTER_GET, {"printer_id": printer_id})
            return got if got["activity"]["tickets"][-1] == 1 else None

        got = await eventually(reported, what="the printed ticket counted")
        uptime = got["uptime"]
        share = uptime["availability"]["24h"]
        assert share is not None and 0 < share < 1  # online a while, then paper out
        assert uptime["availability"]["7d"] == share
        cells = uptime["heartbeat"]["cells"]
        assert len(cells) == HEARTBEAT_CELLS and cells[-1] == "down"
        activity = got["activity"]
        assert sum(activity["tickets"]) == 1 and len(activity["tickets"]) == activity["minutes"]
        assert activity["print_ms"][-1] >= 40  # from printing to completed
    finally:
        await agent.close()


@pytest.fixture
def session(store_target: str) -> Iterator[Session]:
    db = open_session(store_target)
    prepare_hub_db(db)
    yield db
    close(db)


def test_the_store_reads_uptime_and_activity_and_prunes_old_history(session: Session) -> None:
    """The same SQL on SQLite and PostgreSQL."""
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)
    printer = printer_store.upsert_printer(
        db,
        company_id=company_id,
        branch_id=branch_id,
        agent_id=None,
        identity="tcp://10.0.0.5:9100",
        name="Kitchen-1",
        address="tcp://10.0.0.5:9100",
        kind="network",
        model=None,
        station="kitchen",
        status_supported=True,
    )
    pid = printer["id"]
    now = time.time()
    printer_store.set_printer_status(db, pid, "online", {}, at=now - 2 * HOUR)
    printer_store.set_printer_status(db, pid, "paper_out", {"paper_end": True}, at=now - HOUR)
    uptime = printer_uptime(db, pid, now)
    assert uptime["availability"]["24h"] == pytest.approx(0.5, abs=0.01)
    assert uptime["heartbeat"]["cells"][-1] == "down"
    job, _created = job_store.insert_job(
        db,
        company_id=company_id,
        branch_id=branch_id,
        printer_id=pid,
        station=None,
        document={"blocks": [{"type": "text", "text": "x"}]},
        copies=1,
        idempotency_key=None,
        submitted_by="t",
        expires_at=now + 600,
    )
    job_store.transition(db, job["id"], "printing", actor="agent")
    job_store.transition(db, job["id"], "completed", actor="agent")
    activity = printer_activity(db, pid)
    assert activity["tickets"][-1] == 1 and activity["print_ms"][-1] is not None
    # Pruning keeps the newest change of each printer (the status it is in).
    assert prune_printer_events(db, now) == 1
    assert printer_changes(db, pid, 0) == [(pytest.approx(now - HOUR), "paper_out")]
