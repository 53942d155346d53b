"""What the dashboard knows about the branch, and what changed in each batch."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pm_core.protocol import ACTIVE_JOB_STATUSES, PROBLEM_PRINTER_STATUSES, is_status_entry
from pm_core.protocol.records import (
    AgentRecord,
    AlertRecord,
    JobRecord,
    PrinterRecord,
    PrinterStatusEntry,
)
from pm_tui.data.buffer import Batch

#: A JSON object as it came from the hub (an ack's field, a pushed event), not yet
#: read as one of the records below.
Wire = Mapping[str, Any]
#: Any record that belongs to a branch (what the branch filter looks at).
BranchRecord = PrinterRecord | JobRecord | AlertRecord | AgentRecord

# -- from the wire to typed records -------------------------------------------------------
#
# The records the hub builds (pm_core.protocol.records) are the contract: the dashboard
# reads what arrives as those types, and this module is the one place that says so
# (mypy then checks every field the dashboard reads against the hub's definitions, with
# [] and, through tools/mypy_record_keys.py, with .get()). Nothing is checked or filled
# in here, so the dashboard stays as tolerant as it was: where it reads a field with
# .get() (an optional field, or one an older hub may leave out) a missing field still
# reads as None. The hub link has already scrubbed the text.


def printer_record(wire: Wire) -> PrinterRecord:
    return cast(PrinterRecord, wire)


def status_entry(wire: Wire) -> PrinterStatusEntry:
    """A status-only ``printers:update`` entry (see ``is_status_entry``)."""
    return cast(PrinterStatusEntry, wire)


def job_record(wire: Wire) -> JobRecord:
    return cast(JobRecord, wire)


def alert_record(wire: Wire) -> AlertRecord:
    return cast(AlertRecord, wire)


def agent_record(wire: Wire) -> AgentRecord:
    return cast(AgentRecord, wire)


#: How many finished jobs the dashboard keeps in memory (active ones are always kept).
MAX_FINISHED_JOBS = 2000
SEVERITIES = ("critical", "warning", "info")


@dataclass
class Changes:
    """What one batch (or a reload) changed; views update only these rows."""

    reloaded: bool = False
    #: printer id -> (old record or None, new record)
    printers: dict[int, tuple[PrinterRecord | None, PrinterRecord]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    jobs: dict[int, tuple[JobRecord | None, JobRecord]] = field(default_factory=dict)
    agents: set[int] = field(default_factory=set)
    alerts: dict[int, tuple[AlertRecord | None, AlertRecord]] = field(default_factory=dict)
    #: Alerts that just opened (the dashboard shows a toast for each).
    opened: list[AlertRecord] = field(default_factory=list)
    #: ``printer:test:completed`` payloads.
    test_results: list[dict[str, Any]] = field(default_factory=list)
    health: bool = False
    #: Company hub: branches whose link row changed.
    branches: set[int] = field(default_factory=set)
    #: Printers a status-only update named that the state does not hold (fetch them).
    unknown_printers: set[int] = field(default_factory=set)
    #: Printers the hub no longer serves (removed, dropped by their agent, retired).
    removed_printers: set[int] = field(default_factory=set)
    #: ``logs:update`` lines (the Logs view shows them; the state keeps none).
    log_lines: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.log_lines
            or self.branches
            or self.reloaded
            or self.printers
            or self.removed_printers
            or self.seen
            or self.jobs
            or self.agents
            or self.alerts
            or self.test_results
            or self.health
        )


@dataclass
class BranchSummary:
    id: int
    name: str
    printers: int
    problems: int
    alerts: int
    agents_connected: int
    agents: int
    active_jobs: int
    #: Company hub: the branch's link (``state``, ``disconnected_at``, ``last_sync_at``,
    #: ``lag_s``, ``pending``); None on a branch hub.
    link: dict[str, Any] | None = None


class FleetState:
    """Printers, jobs, alerts, agents and health as last told by the hub."""

    def __init__(self) -> None:
        #: The ``whoami`` answer.
        self.who: dict[str, Any] = {}
        self.printers: dict[int, PrinterRecord] = {}
        self.jobs: dict[int, JobRecord] = {}
        self.alerts: dict[int, AlertRecord] = {}
        self.agents: dict[int, AgentRecord] = {}
        #: agent id -> health:summary entry
        self.health: dict[int, dict[str, Any]] = {}
        #: None: not asked yet; False: this hub has no health:summary.
        self.health_supported: bool | None = None
        #: When the last ``health:summary`` came (the dashboard's clock).
        self.health_at: float | None = None
        #: ``stations:list`` rows.
        self.stations: list[dict[str, Any]] = []
        self.last_job_at: dict[int, float] = {}
        #: Company hub: ``branches:list`` rows (with link state), by branch id.
        self.branch_links: dict[int, dict[str, Any]] = {}

    # -- identity ----------------------------------------------------------------------

    @property
    def branches(self) -> list[dict[str, Any]]:
        value = self.who.get("branches")
        return list(value) if isinstance(value, list) else []

    @property
    def company_mode(self) -> bool:
        """Connected to a company hub (branches sync to it)."""
        return bool(self.hub_info.get("company_mode"))

    @property
    def multi_branch(self) -> bool:
        """Several branches to tell apart (and a Branches screen): a company hub, or a
        token that sees more than one branch."""
        return self.company_mode or len(self.branches) > 1

    def branch_name(self, branch_id: int | None) -> str:
        for branch in self.branches:
            if branch.get("id") == branch_id:
                return str(branch.get("name") or f"branch {branch_id}")
        return f"branch {branch_id}" if branch_id is not None else "-"

    @property
    def hub_info(self) -> dict[str, Any]:
        hub = self.who.get("hub")
        return hub if isinstance(hub, dict) else {}

    # -- lookups -------------------------------------------------------------------------

    def printer_name(self, printer_id: int | None) -> str:
        printer = self.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            return f"#{printer_id}" if printer_id is not None else "-"
        return str(printer.get("name") or f"#{printer_id}")

    def agent_name(self, agent_id: int | None) -> str:
        agent = self.agents.get(agent_id) if agent_id is not None else None
        if agent is None:
            health = self.health.get(agent_id) if agent_id is not None else None
            if health is not None and health.get("name"):
                return str(health["name"])
            return f"agent {agent_id}" if agent_id is not None else "-"
        return str(agent.get("name") or agent.get("hostname") or f"agent {agent_id}")

    def subject_name(self, subject: str | None) -> str:
        """``printer:3`` -> the printer's name; ``station:1:kitchen`` -> ``kitchen``."""
        if not subject:
            return "-"
        kind, _, rest = subject.partition(":")
        if kind == "printer" and rest.isdigit():
            return self.printer_name(int(rest))
        if kind == "agent" and rest.isdigit():
            return self.agent_name(int(rest))
        if kind == "station":
            return rest.rpartition(":")[2] or rest
        return subject

    def subject_printer(self, subject: str | None) -> int | None:
        kind, _, rest = (subject or "").partition(":")
        if kind == "printer" and rest.isdigit() and int(rest) in self.printers:
            return int(rest)
        return None

    # -- counts ----------------------------------------------------------------------------

    def in_branch(self, record: BranchRecord, branch_id: int | None) -> bool:
        return branch_id is None or record.get("branch_id") == branch_id

    def problems(self, branch_id: int | None = None) -> list[PrinterRecord]:
        return [
            p
            for p in self.printers.values()
            if p.get("status") in PROBLEM_PRINTER_STATUSES and self.in_branch(p, branch_id)
        ]

    def open_alerts(self, branch_id: int | None = None) -> list[AlertRecord]:
        return [
            a
            for a in self.alerts.values()
            if a.get("state") == "open" and self.in_branch(a, branch_id)
        ]

    def alert_counts(self, branch_id: int | None = None) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for alert in self.open_alerts(branch_id):
            severity = alert.get("severity")
            counts[severity if severity in counts else "warning"] += 1
        return counts

    def active_jobs(self, branch_id: int | None = None) -> int:
        return sum(
            1
            for j in self.jobs.values()
            if j.get("status") in ACTIVE_JOB_STATUSES and self.in_branch(j, branch_id)
        )

    def jobs_for_printer(self, printer_id: int, limit: int = 20) -> list[JobRecord]:
        jobs = [j for j in self.jobs.values() if j.get("printer_id") == printer_id]
        jobs.sort(key=lambda j: j["id"], reverse=True)
        return jobs[:limit]

    def branch_summaries(self) -> list[BranchSummary]:
        """One row per branch. Each collection is counted in one pass, by branch: a
        company hub's thousands of printers are not walked once per branch."""
        printers: Counter[Any] = Counter()
        problems: Counter[Any] = Counter()
        for p in self.printers.values():
            printers[p.get("branch_id")] += 1
            if p.get("status") in PROBLEM_PRINTER_STATUSES:
                problems[p.get("branch_id")] += 1
        alerts: Counter[Any] = Counter(
            a.get("branch_id") for a in self.alerts.values() if a.get("state") == "open"
        )
        active: Counter[Any] = Counter(
            j.get("branch_id") for j in self.jobs.values() if j.get("status") in ACTIVE_JOB_STATUSES
        )
        agents: dict[Any, list[AgentRecord]] = defaultdict(list)
        for agent in self.agents.values():
            agents[agent.get("branch_id")].append(agent)
        rows = []
        for branch in self.branches:
            branch_id = branch.get("id")
            link = self.branch_link(branch_id)
            # A company hub cannot see the agents of a branch it has lost.
            reachable = link is None or link.get("state") != "offline"
            mine = agents.get(branch_id, [])
            rows.append(
                BranchSummary(
                    id=int(branch_id) if isinstance(branch_id, int) else 0,
                    name=str(branch.get("name") or f"branch {branch_id}"),
                    printers=printers[branch_id],
                    problems=problems[branch_id],
                    alerts=alerts[branch_id],
                    agents_connected=sum(1 for a in mine if a.get("connected") and reachable),
                    agents=len(mine),
                    active_jobs=active[branch_id],
                    link=link,
                )
            )
        return rows

    def branch_link(self, branch_id: Any) -> dict[str, Any] | None:
        """Company hub: the branch hub's link (``state``, ``last_sync_at``, ...)."""
        row = self.branch_links.get(branch_id) if isinstance(branch_id, int) else None
        link = row.get("link") if row is not None else None
        return link if isinstance(link, dict) else None

    def put_branch_link(self, row: dict[str, Any]) -> None:
        """A ``branches:list`` row or ``branch:update``: its link, and the branch itself
        when it is new (a branch that just connected to the company hub)."""
        branch_id = row.get("id")
        if not isinstance(branch_id, int):
            return
        self.branch_links[branch_id] = row
        branches = self.branches
        known = next((b for b in branches if b.get("id") == branch_id), None)
        name = row.get("name") or f"branch {branch_id}"
        if known is None:
            branches.append({"id": branch_id, "name": name})
            self.who = {**self.who, "branches": sorted(branches, key=lambda b: b.get("id") or 0)}
        elif known.get("name") != name:
            known["name"] = name

    # -- loading -----------------------------------------------------------------------------

    def load(
        self,
        *,
        who: dict[str, Any] | None = None,
        printers: Iterable[Wire] | None = None,
        jobs: Iterable[Wire] | None = None,
        alerts: Iterable[Wire] | None = None,
        agents: Iterable[Wire] | None = None,
        stations: Iterable[dict[str, Any]] | None = None,
        branch_links: Iterable[dict[str, Any]] | None = None,
    ) -> Changes:
        """Replace what the hub sent in full (after connecting or a refresh)."""
        if who is not None:
            self.who = who
        if branch_links is not None:
            self.branch_links = {}
            for row in branch_links:
                self.put_branch_link(row)
        if printers is not None:
            self.printers = {p["id"]: p for p in map(printer_record, printers)}
        if jobs is not None:
            self.jobs = {j["id"]: j for j in map(job_record, jobs)}
            self.last_job_at = {}
            for job in self.jobs.values():
                self._note_job(job)
        if alerts is not None:
            self.alerts = {a["id"]: a for a in map(alert_record, alerts)}
        if agents is not None:
            self.agents = {a["id"]: a for a in map(agent_record, agents)}
        if stations is not None:
            self.stations = list(stations)
        return Changes(reloaded=True)

    def set_health(self, summary: dict[str, Any] | None, now: float | None = None) -> Changes:
        """Take a ``health:summary`` answer (``None``: the hub does not offer it);
        ``now``: when it came, on the dashboard's clock (live figures count on from it)."""
        if summary is None:
            self.health_supported = False
            self.health = {}
        else:
            self.health_supported = True
            self.health_at = time.time() if now is None else now
            self.health = {
                int(a["agent_id"]): a
                for a in summary.get("agents") or ()
                if isinstance(a, dict) and isinstance(a.get("agent_id"), int)
            }
        return Changes(health=True)

    def add_jobs(self, jobs: Iterable[Wire]) -> Changes:
        """Jobs fetched on demand (a filter, a printer's history)."""
        changes = Changes()
        for job in map(job_record, jobs):
            old = self.jobs.get(job["id"])
            if old != job:
                self.jobs[job["id"]] = job
                self._note_job(job)
                changes.jobs[job["id"]] = (old, job)
        return changes

    def put_printer(self, wire: Wire) -> Changes:
        printer = printer_record(wire)
        old = self.printers.get(printer["id"])
        self.printers[printer["id"]] = printer
        return Changes(printers={printer["id"]: (old, printer)})

    def put_alert(self, wire: Wire) -> Changes:
        alert = alert_record(wire)
        old = self.alerts.get(alert["id"])
        self.alerts[alert["id"]] = alert
        return Changes(alerts={alert["id"]: (old, alert)})

    # -- live updates -----------------------------------------------------------------------

    def apply(self, batch: Batch) -> Changes:
        """Fold a batch of hub events in; say what changed."""
        changes = Changes(test_results=list(batch.test_results), log_lines=batch.log_lines)
        for printer_id, entry in batch.printers.items():
            old = self.printers.get(printer_id)
            if is_status_entry(entry):
                if old is None:
                    changes.unknown_printers.add(printer_id)  # not fetched yet: the app asks
                    continue
                printer: PrinterRecord = {**old, **status_entry(entry)}
            else:
                printer = printer_record(entry)
            self.printers[printer_id] = printer
            changes.printers[printer_id] = (old, printer)
        for printer_id in batch.removed:
            if self.printers.pop(printer_id, None) is not None:
                changes.removed_printers.add(printer_id)
        for printer_id, at in batch.seen.items():
            seen_printer = self.printers.get(printer_id)
            if seen_printer is not None and at > (seen_printer.get("last_seen") or 0):
                seen_printer["last_seen"] = at
                changes.seen.add(printer_id)
        for job_id, wire_job in batch.jobs.items():
            old_job = self.jobs.get(job_id)
            job = job_record(wire_job)
            if old_job is not None and old_job.get("document") and "document" not in job:
                job = {**job, "document": old_job["document"]}
            self.jobs[job_id] = job
            self._note_job(job)
            changes.jobs[job_id] = (old_job, job)
        for agent_id, agent in batch.agents.items():
            # agent:update carries the agent without the printer ids agents:list adds.
            if agent.get("retired_at"):  # agent:retire: gone for good
                if self.agents.pop(agent_id, None) is not None:
                    changes.agents.add(agent_id)
                continue
            self.agents[agent_id] = agent_record({**self.agents.get(agent_id, {}), **agent})
            changes.agents.add(agent_id)
        for opened, wire_alert in batch.alerts:
            alert = alert_record(wire_alert)
            old_alert = self.alerts.get(alert["id"])
            self.alerts[alert["id"]] = alert
            first = changes.alerts.get(alert["id"], (old_alert, alert))[0]
            changes.alerts[alert["id"]] = (first, alert)
            if opened and alert.get("state") == "open":
                changes.opened.append(alert)
        for branch_id, row in batch.branches.items():
            self.put_branch_link(row)
            changes.branches.add(branch_id)
        self._trim_jobs()
        return changes

    def _note_job(self, job: JobRecord) -> None:
        printer_id = job.get("printer_id")
        created = job.get("created_at")
        if (
            isinstance(printer_id, int)
            and isinstance(created, int | float)
            and created > self.last_job_at.get(printer_id, 0)
        ):
            self.last_job_at[printer_id] = float(created)

    def _trim_jobs(self) -> None:
        if len(self.jobs) <= MAX_FINISHED_JOBS + 500:
            return
        finished = sorted(
            (j["id"] for j in self.jobs.values() if j.get("status") not in ACTIVE_JOB_STATUSES),
            reverse=True,
        )
        for job_id in finished[MAX_FINISHED_JOBS:]:
            del self.jobs[job_id]
