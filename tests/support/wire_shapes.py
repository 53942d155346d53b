"""The shape of what a hub sends a dashboard: which events, and which fields each kind
of record carries. ``tests/tui/test_sample_hub.py`` compares a real hub's with the
sample hub's, so the sample cannot drift from the hub again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pm_core.protocol import HubEvent, OpsEvent, is_status_entry

Record = dict[str, Any]


def event_records(event: str, data: Any) -> Iterator[tuple[str, Record]]:
    """(kind, record) for every record a hub event carries."""
    if not isinstance(data, dict):
        yield (f"{event} (not an object)", {})
    elif event == HubEvent.PRINTERS_UPDATE:
        yield (event, data)
        for entry in data["printers"]:
            yield ("printer status entry" if is_status_entry(entry) else "printer", entry)
    elif event == HubEvent.JOBS_UPDATE:
        yield (event, data)
        for job in data["jobs"]:
            yield ("job", job)
    elif event in (HubEvent.HEALTH_ALERT, HubEvent.ALERT_UPDATE):
        yield ("alert", data)
    elif event == HubEvent.BRANCH_UPDATE:
        yield from _branch(data)
    elif event == HubEvent.BRANCHES_UPDATE:
        yield (event, data)
        for row in data["branches"]:
            yield from _branch(row)
    else:  # printer:update, job:update, agent:update, printers:seen, printer:test:completed
        yield (event, data)


def answer_records(event: str, ack: Record) -> Iterator[tuple[str, Record]]:
    """(kind, record) for an ack and every record in it."""
    yield (f"{event} ack", ack)
    if event == OpsEvent.WHOAMI:
        yield ("whoami hub", ack["hub"])
        for branch in ack["branches"]:
            yield ("whoami branch", branch)
    elif event in (OpsEvent.PRINTERS_LIST, OpsEvent.PRINTER_GET):
        for printer in ack["printers"] if event == OpsEvent.PRINTERS_LIST else [ack["printer"]]:
            yield ("printer", printer)
        for entry in ack.get("history") or ():
            yield ("printer history entry", entry)
    elif event == OpsEvent.PRINTER_CONFIGURE:
        yield ("printer (printer:configure answer)", ack["printer"])
    elif event == OpsEvent.JOBS_LIST:
        for job in ack["jobs"]:
            yield ("job", job)
    elif event in (OpsEvent.JOB_SUBMIT, OpsEvent.JOB_CANCEL, OpsEvent.JOB_REPRINT):
        yield ("job", ack["job"])
    elif event == OpsEvent.JOB_GET:
        job = ack["job"]
        kind = "job:get job with document" if "document" in job else "job:get job"
        yield (kind, job)
        for entry in job["events"]:
            yield ("job event", entry)
    elif event in (OpsEvent.ALERTS_LIST, OpsEvent.ALERT_ACK):
        for alert in ack["alerts"] if event == OpsEvent.ALERTS_LIST else [ack["alert"]]:
            yield ("alert", alert)
    elif event == OpsEvent.AGENTS_LIST:
        for agent in ack["agents"]:
            yield ("agents:list agent", agent)
    elif event == OpsEvent.STATIONS_LIST:
        for station in ack["stations"]:
            yield ("station", station)
            for printer in station["printers"]:
                yield ("station printer", printer)
    elif event == OpsEvent.HEALTH_SUMMARY:
        yield ("health alert counts", ack["alerts"])
        for agent in ack["agents"]:
            yield ("health agent", agent)
            yield ("health agent latency", agent["latency_ms"])
            for point in agent["series"]:
                yield ("health point", point)
    elif event == OpsEvent.BRANCHES_LIST:
        for row in ack["branches"]:
            yield from _branch(row)


def _branch(row: Record) -> Iterator[tuple[str, Record]]:
    yield ("branch row", row)
    yield ("branch link", row["link"])
    if isinstance(row.get("alerts"), dict):
        yield ("branch alert counts", row["alerts"])


#: Fields a record carries only when there is something to say (``NotRequired`` in
#: ``pm_core.protocol.records``), left out of the comparison: a job's ``sent_preview``
#: exists once its printer was sent something, so whether a recorded job has one
#: depends on which jobs the run printed, not on what the hub sends.
OPTIONAL_FIELDS = frozenset({"sent_preview"})


@dataclass
class WireShapes:
    """Event names and, for each kind of record, the field sets seen (records of one
    kind may differ: a job with or without an error has the same fields, but a
    status-only printer entry is its own kind)."""

    events: set[str] = field(default_factory=set)
    fields: dict[str, set[frozenset[str]]] = field(default_factory=dict)

    def event(self, event: str, data: Any) -> None:
        self.events.add(event)
        for kind, record in event_records(event, data):
            self.fields.setdefault(kind, set()).add(frozenset(record) - OPTIONAL_FIELDS)

    def answer(self, event: str, ack: Record) -> None:
        for kind, record in answer_records(event, ack):
            self.fields.setdefault(kind, set()).add(frozenset(record) - OPTIONAL_FIELDS)

    def differences(self, real: WireShapes) -> list[str]:
        """What this (the sample) sends that ``real`` (a hub) does not, in words."""
        found = [f"the hub never sent {event}" for event in sorted(self.events - real.events)]
        for kind, field_sets in sorted(self.fields.items()):
            if kind not in real.fields:
                found.append(f"the hub sent no {kind}")
                continue
            expected = sorted(real.fields[kind], key=sorted)
            for fields in sorted(field_sets - real.fields[kind], key=sorted):
                extra, missing = fields - expected[0], expected[0] - fields
                found.append(f"{kind}: extra {sorted(extra)}, missing {sorted(missing)}")
        return found
