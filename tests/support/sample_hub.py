"""A canned branch the dashboard can show without a hub: the snapshot tests and the
screenshots in ``docs/tui.md``.

It replays a real hub: ``tests/support/record_sample.py`` ran a hub, agents and
simulated printers through an hour in a kitchen and recorded what a dashboard
(connected with ``coalesce: true``) was answered when it connected, every event it
received afterwards, and the hub's answers at the end. ``SampleHub`` answers the
dashboard's requests from the state at connect time and, on :meth:`SampleHub.replay`,
sends the recorded events (``printers:update`` with whole printers and status-only
entries, ``jobs:update``, ``printers:seen``, ``agent:update``, alerts, a test
print's result) in order, moving its own state along. What an operator does to it
(configure, submit, cancel, reprint, acknowledge, test print) it answers and
broadcasts in the same shapes. ``tests/tui/test_sample_hub.py`` holds it to what a
real hub sends.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
from pathlib import Path
from typing import Any

from pm_core.protocol import CANCELLABLE_JOB_STATUSES, HubEvent, OpsEvent, is_status_entry
from pm_tui.data.source import EventSink, StateSink
from pm_tui.hub_link import LinkState

#: 2026-11-25 10:42:07 UTC: the sample's "now" (the recordings end here).
SAMPLE_NOW = 1795603327.0
#: The sample branch, recorded from a real hub by ``tests/support/record_sample.py``.
BRANCH_RECORDING = Path(__file__).with_name("sample_branch.json")
#: A company hub with two branches (one offline), recorded the same way.
COMPANY_RECORDING = Path(__file__).with_name("sample_company.json")
Record = dict[str, Any]


@functools.cache
def _recording(path: Path) -> str:
    return path.read_text()


def load_recording(path: Path = BRANCH_RECORDING) -> dict[str, Any]:
    """A fresh copy of a recording: ``connect`` (the answers to what the dashboard
    asks when it connects), ``events`` (``[name, data]`` it received afterwards) and
    ``end`` (the answers at the end, with ``printer:get`` and ``job:get`` by id)."""
    recording: dict[str, Any] = json.loads(_recording(path))
    return recording


def _by_id(records: list[Record]) -> dict[int, Record]:
    return {record["id"]: record for record in records}


def _error(code: str, message: str) -> Record:
    return {"ok": False, "error": {"code": code, "message": message}}


class SampleHub:
    """A :class:`~pm_tui.data.source.HubSource` that answers from a recording."""

    def __init__(
        self,
        *,
        recording: Path = BRANCH_RECORDING,
        health: bool = True,
        latency_ms: float = 3.0,
    ) -> None:
        self.url = "sample://downtown"
        self.recording = load_recording(recording)
        connect, end = self.recording["connect"], self.recording["end"]
        self.offers_health = health
        self.latency_ms = latency_ms
        self.state = LinkState("connecting")
        self.calls: list[tuple[str, Record]] = []
        #: Everything this hub sent, in order.
        self.sent: list[tuple[str, Any]] = []
        # The hub's state as a dashboard finds it when it connects; replay() moves it on.
        self.whoami: Record = connect[OpsEvent.WHOAMI]
        self.printers = _by_id(connect[OpsEvent.PRINTERS_LIST]["printers"])
        self.jobs = _by_id(connect[OpsEvent.JOBS_LIST]["jobs"])
        self.alerts = _by_id(connect[OpsEvent.ALERTS_LIST]["alerts"])
        self.agents = _by_id(connect[OpsEvent.AGENTS_LIST]["agents"])
        self.stations: list[Record] = connect[OpsEvent.STATIONS_LIST]["stations"]
        self.branches = _by_id(connect.get(OpsEvent.BRANCHES_LIST, {}).get("branches", []))
        #: ``health:summary`` is polled, not pushed: the hub's last answer.
        self.health: Record = end[OpsEvent.HEALTH_SUMMARY]
        self.history = {int(pid): ack["history"] for pid, ack in end[OpsEvent.PRINTER_GET].items()}
        #: ``printer:get``'s uptime and activity at the end, per printer.
        self.figures = {
            int(pid): {key: ack[key] for key in ("uptime", "activity") if key in ack}
            for pid, ack in end[OpsEvent.PRINTER_GET].items()
        }
        #: The hub's log lines at the end (``logs:list``), oldest first.
        self.log_lines: list[Record] = end.get(OpsEvent.LOGS_LIST, {}).get("lines", [])
        self.details = {int(jid): ack["job"] for jid, ack in end[OpsEvent.JOB_GET].items()}
        self.replayed = 0
        self._on_event: EventSink = lambda _e, _d: None
        self._on_state: StateSink = lambda _s: None

    # -- HubSource ---------------------------------------------------------------------

    def bind(self, *, on_event: EventSink, on_state: StateSink) -> None:
        self._on_event = on_event
        self._on_state = on_state

    @property
    def connected(self) -> bool:
        return self.state.state == "connected"

    async def run(self) -> None:
        self.state = LinkState("connected", "connected to the sample branch")
        self._on_state(self.state)
        await asyncio.Event().wait()

    async def ping(self) -> float | None:
        return self.latency_ms

    async def close(self) -> None:
        self.state = LinkState("connecting")

    async def call(
        self, event: str, payload: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        data = dict(payload or {})
        self.calls.append((event, data))
        handler = getattr(self, "_" + event.replace(":", "_"), None)
        if handler is None or (event == OpsEvent.HEALTH_SUMMARY and not self.offers_health):
            return _error("invalid_payload", f"unknown event {event!r}")
        result: dict[str, Any] = handler(data)
        return copy.deepcopy(result)

    # -- what the hub sends --------------------------------------------------------------

    def replay(self) -> int:
        """Send every recorded event, in order (as the hub sent them after the dashboard
        connected). Returns how many."""
        events = self.recording["events"][self.replayed :]
        for event, data in events:
            self.push(event, data)
        self.replayed += len(events)
        return len(events)

    def push(self, event: str, data: Any) -> None:
        """Send ``event`` as the hub would broadcast it (and keep the state in step)."""
        data = copy.deepcopy(data)
        self._follow(event, data)
        self.sent.append((event, data))
        self._on_event(event, copy.deepcopy(data))

    def _follow(self, event: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if event == HubEvent.PRINTERS_UPDATE:
            for entry in data.get("printers") or ():
                old = self.printers.get(entry["id"], {})
                self.printers[entry["id"]] = {**old, **entry} if is_status_entry(entry) else entry
        elif event == HubEvent.JOBS_UPDATE:
            self.jobs.update(_by_id(data.get("jobs") or []))
        elif event == HubEvent.PRINTERS_SEEN:
            for printer_id in data.get("printer_ids") or ():
                printer = self.printers.get(printer_id)
                if printer is not None:
                    printer["last_seen"] = max(printer.get("last_seen") or 0, data["at"])
        elif event == HubEvent.AGENT_UPDATE:
            self.agents[data["id"]] = {**self.agents.get(data["id"], {}), **data}
        elif event in (HubEvent.HEALTH_ALERT, HubEvent.ALERT_UPDATE):
            self.alerts[data["id"]] = data
        elif event == HubEvent.BRANCH_UPDATE:
            self.branches[data["id"]] = data
        elif event == HubEvent.BRANCHES_UPDATE:
            self.branches.update(_by_id(data.get("branches") or []))

    def _send_printer(self, printer: Record) -> None:
        self.push(HubEvent.PRINTERS_UPDATE, {"printers": [printer]})

    def _send_job(self, job: Record) -> None:
        self.push(HubEvent.JOBS_UPDATE, {"jobs": [job]})

    # -- answers: reading ----------------------------------------------------------------

    def _whoami(self, data: Record) -> Record:
        return self.whoami

    def _printers_list(self, data: Record) -> Record:
        return {"ok": True, "printers": [self.printers[pid] for pid in sorted(self.printers)]}

    def _printer_get(self, data: Record) -> Record:
        printer = self.printers.get(data.get("printer_id", 0))
        if printer is None:
            return _error("not_found", "printer not found")
        return {
            "ok": True,
            "printer": printer,
            "history": self.history.get(printer["id"], []),
            **self.figures.get(printer["id"], {}),
        }

    def _logs_list(self, data: Record) -> Record:
        ranks = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
        least = ranks.get(str(data.get("level") or "debug"), 10)
        lines = [
            line
            for line in self.log_lines
            if ranks.get(line["level"], 0) >= least
            and data.get("printer_id") in (None, line["printer_id"])
            and data.get("job_id") in (None, line["job_id"])
        ][-int(data.get("limit") or 200) :]
        last = self.log_lines[-1]["seq"] if self.log_lines else 0
        return {"ok": True, "lines": lines, "last_seq": last, "capacity": 2000}

    def _logs_follow(self, data: Record) -> Record:
        last = self.log_lines[-1]["seq"] if self.log_lines else 0
        return {"ok": True, "following": data.get("follow", True), "last_seq": last}

    def _jobs_list(self, data: Record) -> Record:
        statuses = data.get("status")
        if isinstance(statuses, str):
            statuses = statuses.split(",")
        jobs = [
            j
            for j in sorted(self.jobs.values(), key=lambda j: j["id"], reverse=True)
            if (not statuses or j["status"] in statuses)
            and data.get("printer_id") in (None, j["printer_id"])
            and data.get("station") in (None, j["station"])
            and (data.get("since") is None or j["created_at"] >= data["since"])
            and (data.get("until") is None or j["created_at"] <= data["until"])
            and (data.get("before_id") is None or j["id"] < data["before_id"])
        ]
        return {"ok": True, "jobs": jobs[: int(data.get("limit") or 100)]}

    def _job_get(self, data: Record) -> Record:
        job = self.jobs.get(data.get("job_id", 0))
        if job is None:
            return _error("not_found", "job not found")
        detail = self.details.get(job["id"], {})
        record = {**job, "events": detail.get("events") or self._trail(job)}
        if data.get("document"):
            record["document"] = detail.get("document") or {"blocks": []}
            if detail.get("sent_preview"):
                record["sent_preview"] = detail["sent_preview"]
        return {"ok": True, "job": record}

    @staticmethod
    def _trail(job: Record) -> list[Record]:
        who = job.get("submitted_by")
        trail = [{"at": job["created_at"], "status": "queued", "actor": who, "reason": "accepted"}]
        if job["status"] != "queued":
            reason = (job.get("error") or {}).get("message") or job["status"]
            trail.append(
                {"at": job["updated_at"], "status": job["status"], "actor": who, "reason": reason}
            )
        return trail

    def _alerts_list(self, data: Record) -> Record:
        states = data.get("state")
        if isinstance(states, str):
            states = states.split(",")
        alerts = [
            a
            for a in sorted(self.alerts.values(), key=lambda a: a["id"], reverse=True)
            if not states or a["state"] in states
        ]
        return {"ok": True, "alerts": alerts[: int(data.get("limit") or 200)]}

    def _agents_list(self, data: Record) -> Record:
        return {"ok": True, "agents": [self.agents[aid] for aid in sorted(self.agents)]}

    def _health_summary(self, data: Record) -> Record:
        return self.health

    def _stations_list(self, data: Record) -> Record:
        stations = copy.deepcopy(self.stations)
        for station in stations:
            for entry in station["printers"]:
                printer = self.printers.get(entry["id"], entry)
                entry.update(name=printer["name"], status=printer["status"])
        return {"ok": True, "stations": stations}

    def _branches_list(self, data: Record) -> Record:
        if not self.branches:
            return _error("invalid_payload", "unknown event 'branches:list'")
        return {"ok": True, "branches": [self.branches[bid] for bid in sorted(self.branches)]}

    # -- answers: acting -------------------------------------------------------------------

    def _printer_test(self, data: Record) -> Record:
        printer_id = data.get("printer_id")
        if printer_id not in self.printers:
            return _error("not_found", "printer not found")
        cid = f"test_{int(SAMPLE_NOW * 1000)}_{len(self.calls)}_5a3c0e21"
        result = {"correlation_id": cid, "printer_id": printer_id, "ok": True, "duration_ms": 41.2}
        asyncio.get_running_loop().call_soon(self.push, HubEvent.PRINTER_TEST_COMPLETED, result)
        return {"ok": True, "correlation_id": cid, "printer_id": printer_id}

    def _printer_configure(self, data: Record) -> Record:
        printer = self.printers.get(data.get("printer_id", 0))
        if printer is None:
            return _error("not_found", "printer not found")
        for key in ("name", "station", "paused", "station_priority", "default_expiry_s"):
            if key in data:
                printer[key] = data[key]
        self._send_printer(printer)
        return {"ok": True, "printer": printer}

    def _new_job(self, **fields: Any) -> Record:
        template = self.jobs[max(self.jobs)]
        job_id = max(self.jobs) + 1
        job = {
            **template,
            "id": job_id,
            "status": "queued",
            "copies": 1,
            "idempotency_key": None,
            "submitted_by": self.whoami.get("sub"),
            "attempts": 0,
            "error": None,
            "created_at": SAMPLE_NOW,
            "updated_at": SAMPLE_NOW,
            "expires_at": SAMPLE_NOW + 600,
            "finished_at": None,
            "reprint_of": None,
            "failover_from": None,
            "correlation_id": f"job_{int(SAMPLE_NOW * 1000)}_{job_id}_0c0ffee0",
            **fields,
        }
        self.jobs[job_id] = job
        self._send_job(job)
        return job

    def _job_submit(self, data: Record) -> Record:
        printer = self.printers.get(data.get("printer_id") or 0)
        if printer is None:
            return _error("not_found", "printer not found")
        job = self._new_job(
            printer_id=printer["id"],
            station=data.get("station"),
            branch_id=printer["branch_id"],
            idempotency_key=data.get("idempotency_key"),
        )
        self.details[job["id"]] = {"document": data.get("document") or {"blocks": []}}
        return {"ok": True, "job": job, "duplicate": False}

    def _job_cancel(self, data: Record) -> Record:
        job = self.jobs.get(data.get("job_id", 0))
        if job is None:
            return _error("not_found", "job not found")
        if job["status"] not in CANCELLABLE_JOB_STATUSES:
            return _error("conflict", f"job {job['id']} is {job['status']}")
        reason = data.get("reason") or "cancelled by an operator"
        job.update(
            status="cancelled",
            error={"code": "cancelled", "message": reason},
            updated_at=SAMPLE_NOW,
            finished_at=SAMPLE_NOW,
        )
        self._send_job(job)
        return {"ok": True, "job": job}

    def _job_reprint(self, data: Record) -> Record:
        original = self.jobs.get(data.get("job_id", 0))
        if original is None:
            return _error("not_found", "job not found")
        job = self._new_job(
            printer_id=original["printer_id"],
            station=original["station"],
            branch_id=original["branch_id"],
            reprint_of=original["id"],
        )
        self.details[job["id"]] = {"document": self.details.get(original["id"], {}).get("document")}
        return {"ok": True, "job": job, "duplicate": False}

    def _alert_ack(self, data: Record) -> Record:
        alert = self.alerts.get(data.get("alert_id", 0))
        if alert is None:
            return _error("not_found", "alert not found")
        if alert["state"] == "cleared":
            return _error("conflict", f"alert {alert['id']} is cleared")
        if alert["state"] == "open":
            alert.update(
                state="acknowledged",
                acknowledged_by=self.whoami.get("sub"),
                acknowledged_at=SAMPLE_NOW,
            )
            self.push(HubEvent.ALERT_UPDATE, alert)
        return {"ok": True, "alert": alert}
