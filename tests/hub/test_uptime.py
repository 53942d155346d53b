"""A printer's availability over 24 h and 7 days, its heartbeat (one cell per half
hour, the worst state in it) and its activity (tickets a minute, print time), from
the status history and the jobs the hub keeps (issue 16, "Uptime and activity")."""

from __future__ import annotations

import asyncio

from pm_core.protocol import AgentEvent, OpsEvent
from pm_hub.server import RunningHub
from pm_hub.store.uptime import HEARTBEAT_CELLS, availability, heartbeat, segments
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.raw_agent import RawAgent

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
