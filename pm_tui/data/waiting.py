"""Why a job waits, in a few words, from what the dashboard already knows of its printer
(``waiting: Bar paper out since 20:06``, ``waiting: agent offline``, ``waiting: Bar
paused``): the hub sends every printer's status, pause and agent link live, so the
reason follows the printer's state as fast as the row does, with no field on the wire.

Also what an agent's spool holds, counted the way the hub counts it in
``health:summary`` (jobs of its printers it took: ``dispatched`` or ``printing``).
"""

from __future__ import annotations

import time

from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_core.protocol.records import JobRecord, PrinterRecord
from pm_tui.data.clock import Clock
from pm_tui.data.state import FleetState

#: Job statuses that wait for the printer (a printing job is not waiting).
WAITING_STATUSES = frozenset({"queued", "dispatched"})
#: Job statuses an agent's spool holds.
HELD_STATUSES = frozenset({"dispatched", "printing"})

STATUS_WORDS = {
    "paper_out": "paper out",
    "cover_open": "cover open",
    "error": "in error",
    "offline": "offline",
}


def agent_missing(printer: PrinterRecord) -> bool:
    """The printer's agent is not connected (a CloudPRNT printer has none: it polls the
    hub, and its status says when it stops)."""
    return printer.get("agent_connected") is False and printer.get("kind") != "cloudprnt"


def hm(clock: Clock, timestamp: float | None) -> str:
    """``20:06`` (the time of day a problem started)."""
    return time.strftime("%H:%M", clock.struct(timestamp)) if timestamp else "?"


def printer_problem(
    printer: PrinterRecord, state: FleetState, clock: Clock, *, named: bool = True
) -> str | None:
    """What keeps ``printer`` from printing now (None: nothing); ``named``: starting
    with the printer's name (a table with a printer column leaves it out)."""
    name = (printer.get("name") or f"#{printer['id']}") if named else ""
    if printer.get("paused"):
        since = printer.get("paused_at")
        return f"{name} paused".lstrip() + (f" since {hm(clock, since)}" if since else "")
    if agent_missing(printer):
        return "agent offline"
    status = str(printer.get("status"))
    if status in PROBLEM_PRINTER_STATUSES:
        word = STATUS_WORDS.get(status, status.replace("_", " "))
        return f"{name} {word} since {hm(clock, printer.get('status_changed_at'))}".lstrip()
    return None


def waiting_reason(
    job: JobRecord, state: FleetState, clock: Clock, *, named: bool = True
) -> str | None:
    """``waiting: …`` for a job that waits on something; None for one that does not
    (finished, printing, or next in line on a printer that is fine). ``named``: the
    printer's name in it (not where a column beside it says the printer)."""
    if job.get("status") not in WAITING_STATUSES:
        return None
    printer_id = job.get("printer_id")
    if printer_id is None:
        return "waiting: no printer at its station"
    printer = state.printers.get(printer_id)
    if printer is None:
        return None
    problem = printer_problem(printer, state, clock, named=named)
    return f"waiting: {problem}" if problem is not None else None


def is_stuck(job: JobRecord, state: FleetState) -> bool:
    """A ticket that cannot print until something is fixed (its printer's problem, its
    pause, its agent), as opposed to one next in line."""
    if job.get("status") not in WAITING_STATUSES:
        return False
    printer_id = job.get("printer_id")
    if printer_id is None:
        return True
    printer = state.printers.get(printer_id)
    return printer is not None and (
        bool(printer.get("paused"))
        or agent_missing(printer)
        or printer.get("status") in PROBLEM_PRINTER_STATUSES
    )


def waiting_jobs(state: FleetState, printer_id: int) -> list[JobRecord]:
    """The unfinished jobs of a printer that have not started printing, oldest first."""
    return sorted(
        (
            j
            for j in state.jobs.values()
            if j.get("printer_id") == printer_id and j.get("status") in WAITING_STATUSES
        ),
        key=lambda j: j["id"],
    )


def held_by_agents(state: FleetState) -> dict[int, int]:
    """Per agent, the jobs its spool holds, as the dashboard knows them (one pass)."""
    held: dict[int, int] = {}
    printers = state.printers
    for job in state.jobs.values():
        if job.get("status") not in HELD_STATUSES:
            continue
        printer_id = job.get("printer_id")
        printer = printers.get(printer_id) if printer_id is not None else None
        agent_id = printer.get("agent_id") if printer is not None else None
        if agent_id is not None:
            held[agent_id] = held.get(agent_id, 0) + 1
    return held
