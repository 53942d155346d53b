"""Why a ticket waits, what an agent holds and when a printer was paused: the data
layer under the Jobs tab, the details and the Agents tab (no Textual)."""

from __future__ import annotations

import calendar
from typing import Any

from pm_tui.data.buffer import Batch
from pm_tui.data.clock import FixedClock
from pm_tui.data.state import FleetState
from pm_tui.data.waiting import held_by_agents, is_stuck, waiting_jobs, waiting_reason

NOW = float(calendar.timegm((2026, 12, 7, 20, 30, 0)))
CLOCK = FixedClock(NOW)


def printer(pid: int, name: str, **fields: Any) -> dict[str, Any]:
    record = {
        "id": pid, "name": name, "status": "online", "flags": {}, "paused": False,
        "agent_id": 1, "agent_connected": True, "branch_id": 1, "company_id": 1,
        "status_changed_at": NOW - 3600, "queue": 0,
    }  # fmt: skip
    return record | fields


def job(jid: int, pid: int | None, status: str = "dispatched") -> dict[str, Any]:
    return {"id": jid, "printer_id": pid, "status": status, "branch_id": 1, "company_id": 1}


def fleet(*printers: dict[str, Any], jobs: tuple[dict[str, Any], ...] = ()) -> FleetState:
    state = FleetState()
    state.load(printers=printers, jobs=jobs)
    return state


def test_a_ticket_on_a_printer_out_of_paper_says_so_and_since_when() -> None:
    out_at = float(calendar.timegm((2026, 12, 7, 20, 6, 0)))
    state = fleet(printer(1, "Bar", status="paper_out", status_changed_at=out_at))
    ticket = job(7, 1)
    state.jobs[7] = ticket
    assert waiting_reason(ticket, state, CLOCK) == "waiting: Bar paper out since 20:06"
    assert waiting_reason(ticket, state, CLOCK, named=False) == "waiting: paper out since 20:06"
    assert is_stuck(ticket, state)
    assert [j["id"] for j in waiting_jobs(state, 1)] == [7]


def test_agent_offline_paused_and_fine() -> None:
    state = fleet(printer(1, "Bar", agent_connected=False), printer(2, "Grill", paused=True))
    assert waiting_reason(job(1, 1), state, CLOCK) == "waiting: agent offline"
    assert waiting_reason(job(2, 2), state, CLOCK) == "waiting: Grill paused"
    # A CloudPRNT printer has no agent: polling, it is fine.
    cloud = fleet(printer(6, "Star", kind="cloudprnt", agent_id=None, agent_connected=False))
    assert waiting_reason(job(6, 6), cloud, CLOCK) is None
    fine = fleet(printer(3, "Pass"))
    assert waiting_reason(job(3, 3), fine, CLOCK) is None
    assert not is_stuck(job(3, 3), fine)
    # Printing or finished: not waiting, whatever the printer.
    assert waiting_reason(job(4, 1, "printing"), state, CLOCK) is None
    assert waiting_reason(job(5, 1, "completed"), state, CLOCK) is None


def test_a_pause_has_the_hubs_time() -> None:
    """``paused since`` is the hub's pause time, not when this dashboard saw the pause."""
    state = fleet(printer(1, "Bar"))
    state.apply(Batch(printers={1: printer(1, "Bar", paused=True, paused_at=NOW - 7200)}))
    assert waiting_reason(job(9, 1), state, CLOCK) == "waiting: Bar paused since 18:30"
    state.apply(Batch(printers={1: printer(1, "Bar", paused_at=None)}))
    assert waiting_reason(job(9, 1), state, CLOCK) is None
    # From a hub that keeps no pause time: no time is made up.
    state = fleet(printer(1, "Bar", paused=True))
    assert waiting_reason(job(9, 1), state, CLOCK) == "waiting: Bar paused"


def test_an_agent_holds_its_printers_dispatched_and_printing_jobs() -> None:
    state = fleet(
        printer(1, "Bar", agent_id=1),
        printer(2, "Grill", agent_id=2),
        jobs=(
            job(1, 1, "dispatched"),
            job(2, 1, "printing"),
            job(3, 1, "queued"),  # still at the hub
            job(4, 1, "completed"),
            job(5, 2, "dispatched"),
        ),
    )
    assert held_by_agents(state) == {1: 2, 2: 1}


def test_an_agents_uptime_counts_on_between_summaries() -> None:
    """UPTIME is not frozen at the last health:summary (it read 5s for five minutes)."""
    from pm_tui.views.agents import agent_uptime

    state = FleetState()
    state.load(agents=[{"id": 1, "name": "box", "connected": True, "branch_id": 1}])
    state.set_health({"agents": [{"agent_id": 1, "connected": True, "uptime_s": 5.0}]}, now=NOW)
    assert agent_uptime(1, state, FixedClock(NOW)) == 5.0
    assert agent_uptime(1, state, FixedClock(NOW + 300)) == 305.0
    state.set_health({"agents": [{"agent_id": 1, "connected": False, "uptime_s": 5.0}]}, now=NOW)
    assert agent_uptime(1, state, FixedClock(NOW + 300)) is None
