"""Coalescing what the hub pushes: a burst of events becomes one batch.

The hub may send hundreds of ``printer:update`` a second. The dashboard only needs
the newest state of each object, so the buffer keeps one entry per printer, job
and agent (the last one wins) and hands them over in one :class:`Batch` whenever
the UI is ready to draw again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pm_core.protocol import HubEvent, is_status_entry

#: Log lines one batch keeps at most (a burst keeps its newest).
MAX_LOG_LINES = 1000


@dataclass
class Batch:
    """Everything that arrived since the last drain, newest state per object.

    The objects are as the hub sent them (JSON, scrubbed); ``FleetState.apply`` reads
    them as the typed records of ``pm_core.protocol.records``."""

    printers: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    agents: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Alerts in arrival order, with whether they just opened (toast-worthy).
    alerts: list[tuple[bool, dict[str, Any]]] = field(default_factory=list)
    test_results: list[dict[str, Any]] = field(default_factory=list)
    #: Company hub: branch id -> its newest ``branch:update`` row.
    branches: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: ``logs:update`` lines, oldest first (the newest ``MAX_LOG_LINES`` only).
    log_lines: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0

    def __bool__(self) -> bool:
        return self.events > 0


class EventBuffer:
    """Collects hub events between two UI updates (no Textual, no I/O)."""

    def __init__(self) -> None:
        self._batch = Batch()
        self.received = 0
        self.ignored = 0

    def add(self, event: str, data: Any) -> None:
        self.received += 1
        batch = self._batch
        if not isinstance(data, dict):
            self.ignored += 1
            return
        ident = data.get("id")
        if event in (HubEvent.PRINTERS_UPDATE, HubEvent.JOBS_UPDATE):
            printers = event == HubEvent.PRINTERS_UPDATE
            items = data.get("printers" if printers else "jobs")
            if not isinstance(items, list):
                self.ignored += 1
                return
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("id"), int):
                    if printers:
                        pending = batch.printers.get(item["id"])
                        if pending is not None and is_status_entry(item):
                            item = {**pending, **item}  # status on top of what is waiting
                        batch.printers[item["id"]] = item
                        batch.seen.pop(item["id"], None)
                    else:
                        batch.jobs[item["id"]] = item
        elif event == HubEvent.PRINTER_UPDATE and isinstance(ident, int):
            batch.printers[ident] = data
            batch.seen.pop(ident, None)
        elif event == HubEvent.PRINTERS_SEEN:
            at = data.get("at")
            when = float(at) if isinstance(at, int | float) else 0.0
            for printer_id in data.get("printer_ids") or ():
                if isinstance(printer_id, int):
                    batch.seen[printer_id] = max(when, batch.seen.get(printer_id, 0.0))
        elif event == HubEvent.JOB_UPDATE and isinstance(ident, int):
            batch.jobs[ident] = data
        elif event == HubEvent.AGENT_UPDATE and isinstance(ident, int):
            batch.agents[ident] = data
        elif event in (HubEvent.HEALTH_ALERT, HubEvent.ALERT_UPDATE) and isinstance(ident, int):
            batch.alerts.append((event == HubEvent.HEALTH_ALERT, data))
        elif event == HubEvent.PRINTER_TEST_COMPLETED:
            batch.test_results.append(data)
        elif event == HubEvent.BRANCH_UPDATE and isinstance(ident, int):
            batch.branches[ident] = data
        elif event == HubEvent.BRANCHES_UPDATE and isinstance(data.get("branches"), list):
            for row in data["branches"]:
                if isinstance(row, dict) and isinstance(row.get("id"), int):
                    batch.branches[row["id"]] = row
        elif event == HubEvent.LOGS_UPDATE and isinstance(data.get("lines"), list):
            lines = [line for line in data["lines"] if isinstance(line, dict)]
            batch.log_lines = (batch.log_lines + lines)[-MAX_LOG_LINES:]
        else:
            self.ignored += 1
            return
        batch.events += 1

    def drain(self) -> Batch:
        """Hand over what arrived and start a new batch."""
        batch, self._batch = self._batch, Batch()
        return batch

    def __len__(self) -> int:
        return self._batch.events
