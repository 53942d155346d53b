"""A printer as operators see it: its stored record plus two live figures (jobs waiting
on it, whether its agent is connected), whole or as a status-only batch entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pm_core.protocol.records import PrinterRecord, PrinterStatusEntry
from pm_hub.active_jobs import ActiveJobs
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.store.records import printer_record


class PrinterViews:
    def __init__(self, state: LiveState, jobs: ActiveJobs) -> None:
        self.state = state
        self.jobs = jobs

    def whole(self, row: PrinterRow) -> PrinterRecord:
        record = printer_record(row)
        record["queue"] = self.jobs.depth(row["id"])
        record["agent_connected"] = self.state.agent_for_printer(row) is not None
        return record

    def status_entry(self, row: PrinterRow) -> PrinterStatusEntry:
        return status_entry(self.whole(row))


def status_entry(view: Mapping[str, Any]) -> PrinterStatusEntry:
    """Only what a status report changes (``PRINTER_STATUS_FIELDS``, in that order)."""
    return {
        "id": view["id"],
        "status": view["status"],
        "flags": view.get("flags") or {},
        "last_seen": view.get("last_seen"),
        "status_changed_at": view.get("status_changed_at"),
        "queue": view.get("queue") or 0,
        "agent_connected": bool(view.get("agent_connected")),
    }
