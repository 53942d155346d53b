"""A canned branch the dashboard can show without a hub: snapshot tests and the
screenshots in ``docs/tui.md``. Same shapes as the hub's answers (docs/protocol.md),
fixed ids and times, nothing random."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from pm_core.protocol import ACTIVE_JOB_STATUSES, HubEvent, OpsEvent
from pm_tui.data.source import EventSink, StateSink
from pm_tui.hub_link import LinkState

#: 2026-11-25 10:42:07 UTC: the sample's "now".
SAMPLE_NOW = 1795603327.0
Record = dict[str, Any]


def _ticket(table: int, order: int, items: list[str]) -> Record:
    blocks: list[Record] = [
        {"type": "text", "text": f"TABLE {table}", "bold": True, "align": "center", "width": 2},
        {"type": "text", "text": f"order #{order}", "align": "center"},
        {"type": "line"},
    ]
    blocks += [{"type": "text", "text": item} for item in items]
    blocks += [{"type": "feed", "lines": 1}, {"type": "qr", "data": f"order:{order}"}]
    blocks.append({"type": "cut"})
    return {"blocks": blocks}


def _printer(
    pid: int,
    name: str,
    station: str | None,
    address: str,
    status: str,
    *,
    branch_id: int = 12,
    agent_id: int = 1,
    queue: int = 0,
    seen_ago: float = 1,
    changed_ago: float = 3600,
    flags: Record | None = None,
    model: str | None = "TM-T20III",
    kind: str = "network",
    paused: bool = False,
) -> Record:
    return {
        "id": pid,
        "name": name,
        "address": address,
        "kind": kind,
        "model": model,
        "status": status,
        "flags": flags or {},
        "status_supported": True,
        "paused": paused,
        "station": station,
        "station_priority": pid,
        "branch_id": branch_id,
        "company_id": 1,
        "agent_id": agent_id,
        "last_seen": SAMPLE_NOW - seen_ago,
        "status_changed_at": SAMPLE_NOW - changed_ago,
        "created_at": SAMPLE_NOW - 86400 * 30,
        "queue": queue,
        "agent_connected": status != "offline" or agent_id == 1,
        "default_expiry_s": None,
    }


def _job(
    jid: int,
    printer_id: int,
    station: str | None,
    status: str,
    ago: float,
    *,
    branch_id: int = 12,
    error: Record | None = None,
    reprint_of: int | None = None,
    failover_from: int | None = None,
    attempts: int = 1,
) -> Record:
    created = SAMPLE_NOW - ago
    finished = created + 1.4 if status not in ACTIVE_JOB_STATUSES else None
    return {
        "id": jid,
        "printer_id": printer_id,
        "station": station,
        "status": status,
        "branch_id": branch_id,
        "company_id": 1,
        "copies": 1,
        "idempotency_key": f"order-{700 + jid}",
        "submitted_by": "pos-1",
        "attempts": attempts if status != "queued" else 0,
        "error": error,
        "created_at": created,
        "updated_at": finished or created,
        "expires_at": created + 600,
        "finished_at": finished,
        "reprint_of": reprint_of,
        "failover_from": failover_from,
    }


def _series(seed: int, base: float) -> list[Record]:
    points = []
    for minute in range(60):
        wobble = ((minute * 7 + seed * 3) % 5) * 0.6
        spike = 9.0 if (minute + seed) % 17 == 0 else 0.0
        points.append(
            {
                "at": SAMPLE_NOW - (59 - minute) * 60,
                "latency_ms": round(base + wobble + spike, 1),
                "loss": 0.02 if (minute + seed) % 23 == 0 else 0.0,
            }
        )
    return points


class SampleData:
    """The sample branch (or two branches seen from a company token)."""

    def __init__(self, *, multi_branch: bool = False) -> None:
        self.multi_branch = multi_branch
        self.printers: dict[int, Record] = {
            p["id"]: p
            for p in [
                _printer(
                    1,
                    "Kitchen-1",
                    "kitchen",
                    "tcp://127.0.0.1:9101",
                    "paper_out",
                    queue=4,
                    seen_ago=2,
                    changed_ago=76,
                    flags={"paper_end": True, "paper_near_end": True},
                ),
                _printer(2, "Kitchen-2", "kitchen", "tcp://127.0.0.1:9102", "online"),
                _printer(
                    3,
                    "Bar",
                    "bar",
                    "usb://04b8:0202",
                    "paper_low",
                    kind="usb",
                    flags={"paper_near_end": True},
                    changed_ago=900,
                ),
                _printer(
                    4,
                    "Receipt-2",
                    "receipt",
                    "tcp://127.0.0.1:9103",
                    "offline",
                    queue=1,
                    seen_ago=180,
                    changed_ago=185,
                    flags={"unreachable": True},
                ),
                _printer(
                    5,
                    "Receipt-1",
                    "receipt",
                    "serial:///dev/ttyS0",
                    "online",
                    kind="serial",
                    model="TM-T88V",
                ),
            ]
        }
        self.branches = [{"id": 12, "name": "Downtown"}]
        if multi_branch:
            self.branches.append({"id": 14, "name": "Harbour"})
            for p in (
                _printer(
                    6,
                    "Grill",
                    "kitchen",
                    "tcp://10.14.0.21:9100",
                    "online",
                    branch_id=14,
                    agent_id=2,
                ),
                _printer(
                    7,
                    "Harbour-Bar",
                    "bar",
                    "tcp://10.14.0.22:9100",
                    "cover_open",
                    branch_id=14,
                    agent_id=2,
                    flags={"cover_open": True},
                    changed_ago=40,
                ),
            ):
                self.printers[p["id"]] = p
        fail = {"code": "paper_out", "message": "printer out of paper after 3 attempts"}
        self.jobs: dict[int, Record] = {
            j["id"]: j
            for j in [
                _job(120, 1, "kitchen", "queued", 8),
                _job(119, 1, "kitchen", "queued", 21),
                _job(118, 1, "kitchen", "queued", 35),
                _job(117, 1, "kitchen", "queued", 52),
                _job(116, 4, "receipt", "dispatched", 190),
                _job(115, 2, "kitchen", "printing", 3),
                _job(114, 2, "kitchen", "completed", 64, failover_from=1),
                _job(113, 3, "bar", "completed", 95),
                _job(112, 5, "receipt", "completed", 130),
                _job(111, 1, "kitchen", "failed", 160, error=fail, attempts=3),
                _job(110, 3, "bar", "cancelled", 300),
                _job(109, 5, "receipt", "completed", 420, reprint_of=104),
                _job(108, 2, "kitchen", "expired", 1200, error=None),
            ]
        }
        if multi_branch:
            self.jobs[121] = _job(121, 6, "kitchen", "completed", 12, branch_id=14)
        tables = {120: 12, 119: 7, 118: 3, 117: 21, 116: 9, 115: 4, 114: 12, 113: 5}
        self.documents = {
            jid: _ticket(tables.get(jid, 2), 800 + jid, ["2x Burger", "1x Fries", "1x Lemonade"])
            for jid in self.jobs
        }
        self.alerts: dict[int, Record] = {
            a["id"]: a
            for a in [
                self._alert(
                    31, "paper_out", "critical", "printer:1", "Kitchen-1 is out of paper", 76
                ),
                self._alert(
                    30, "printer_offline", "critical", "printer:4", "Receipt-2 is offline", 185
                ),
                self._alert(
                    29,
                    "failover",
                    "warning",
                    "station:12:kitchen",
                    "1 kitchen job moved from Kitchen-1 to Kitchen-2",
                    70,
                    state="acknowledged",
                ),
                self._alert(
                    28, "paper_low", "info", "printer:3", "Bar is running low on paper", 900
                ),
                self._alert(
                    27,
                    "job_failed",
                    "warning",
                    "printer:1",
                    "job 111 failed on Kitchen-1: out of paper",
                    160,
                    state="cleared",
                ),
            ]
        }
        if multi_branch:
            self.alerts[32] = self._alert(
                32, "cover_open", "warning", "printer:7", "Harbour-Bar cover is open", 40, branch=14
            )
        self.agents: dict[int, Record] = {
            1: self._agent(1, "local agent", "box-downtown", 12, [1, 2, 3, 4, 5]),
        }
        self.health: list[Record] = [
            self._health(1, "local agent", 2.4, 0.0, 86400 * 3 + 7200, 1, 5),
        ]
        if multi_branch:
            self.agents[2] = self._agent(2, "harbour box", "box-harbour", 14, [6, 7])
            self.health.append(self._health(2, "harbour box", 11.0, 0.01, 5400, 4, 0))

    @staticmethod
    def _alert(
        aid: int,
        kind: str,
        severity: str,
        subject: str,
        message: str,
        ago: float,
        *,
        state: str = "open",
        branch: int = 12,
    ) -> Record:
        opened = SAMPLE_NOW - ago
        return {
            "id": aid,
            "kind": kind,
            "severity": severity,
            "subject": subject,
            "message": message,
            "state": state,
            "details": {},
            "branch_id": branch,
            "company_id": 1,
            "opened_at": opened,
            "acknowledged_at": opened + 20 if state != "open" else None,
            "acknowledged_by": "it-admin" if state != "open" else None,
            "cleared_at": opened + 60 if state == "cleared" else None,
        }

    @staticmethod
    def _agent(aid: int, name: str, host: str, branch: int, printers: list[int]) -> Record:
        return {
            "id": aid,
            "device_id": f"dev-{host}",
            "name": name,
            "version": "0.1.0",
            "hostname": host,
            "branch_id": branch,
            "company_id": 1,
            "connected": True,
            "first_seen": SAMPLE_NOW - 86400 * 40,
            "last_seen": SAMPLE_NOW - 1,
            "last_disconnect": SAMPLE_NOW - 7200,
            "printers": printers,
        }

    @staticmethod
    def _health(
        aid: int, name: str, base: float, loss: float, uptime: float, reconnects: int, spool: int
    ) -> Record:
        series = _series(aid, base)
        values = sorted(p["latency_ms"] for p in series)
        return {
            "agent_id": aid,
            "name": name,
            "connected": True,
            "latency_ms": {
                "last": series[-1]["latency_ms"],
                "avg": round(sum(values) / len(values), 1),
                "p95": values[int(len(values) * 0.95) - 1],
            },
            "packet_loss": loss,
            "uptime_s": uptime,
            "reconnects": reconnects,
            "spool_depth": spool,
            "series": series,
        }


class SampleHub:
    """A :class:`~pm_tui.data.source.HubSource` that answers from :class:`SampleData`."""

    def __init__(
        self, *, multi_branch: bool = False, health: bool = True, latency_ms: float = 3.0
    ) -> None:
        self.url = "sample://downtown"
        self.data = SampleData(multi_branch=multi_branch)
        self.offers_health = health
        self.latency_ms = latency_ms
        self.state = LinkState("connecting")
        self.calls: list[tuple[str, Record]] = []
        self._on_event: EventSink = lambda _e, _d: None
        self._on_state: StateSink = lambda _s: None
        self._next_job = 200

    def bind(self, *, on_event: EventSink, on_state: StateSink) -> None:
        self._on_event = on_event
        self._on_state = on_state

    @property
    def connected(self) -> bool:
        return self.state.state == "connected"

    def push(self, event: str, data: Any) -> None:
        """Pretend the hub broadcast ``event``."""
        self._on_event(event, data)

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

    # -- answers --------------------------------------------------------------------

    def _whoami(self, data: Record) -> Record:
        first = self.data.branches[0]
        return {
            "ok": True,
            "sub": "it-admin",
            "role": "admin",
            "company_id": 1,
            "branches": self.data.branches,
            "hub": {
                "version": "0.1.0",
                "company_mode": self.data.multi_branch,
                "branch_id": None if self.data.multi_branch else first["id"],
                "branch_name": None if self.data.multi_branch else first["name"],
                "server_time": SAMPLE_NOW,
            },
        }

    def _printers_list(self, data: Record) -> Record:
        return {"ok": True, "printers": sorted(self.data.printers.values(), key=lambda p: p["id"])}

    def _printer_get(self, data: Record) -> Record:
        printer = self.data.printers.get(data.get("printer_id", 0))
        if printer is None:
            return _error("not_found", "printer not found")
        changed = printer["status_changed_at"]
        history = [
            {"at": changed, "status": printer["status"], "flags": printer["flags"]},
            {"at": changed - 1800, "status": "online", "flags": {}},
            {"at": changed - 1860, "status": "paper_low", "flags": {"paper_near_end": True}},
            {"at": changed - 7200, "status": "online", "flags": {}},
        ]
        return {"ok": True, "printer": printer, "history": history}

    def _jobs_list(self, data: Record) -> Record:
        statuses = data.get("status")
        if isinstance(statuses, str):
            statuses = statuses.split(",")
        jobs = [
            j
            for j in sorted(self.data.jobs.values(), key=lambda j: j["id"], reverse=True)
            if (not statuses or j["status"] in statuses)
            and data.get("printer_id") in (None, j["printer_id"])
            and data.get("station") in (None, j["station"])
            and (data.get("since") is None or j["created_at"] >= data["since"])
            and (data.get("until") is None or j["created_at"] <= data["until"])
        ]
        return {"ok": True, "jobs": jobs[: int(data.get("limit") or 100)]}

    def _job_get(self, data: Record) -> Record:
        job = self.data.jobs.get(data.get("job_id", 0))
        if job is None:
            return _error("not_found", "job not found")
        record = dict(job)
        created = job["created_at"]
        events = [{"at": created, "status": "queued", "actor": "pos-1", "reason": "submitted"}]
        if job["status"] != "queued":
            events.append(
                {
                    "at": created + 0.1,
                    "status": "dispatched",
                    "actor": "hub",
                    "reason": "in the agent's spool",
                }
            )
        if job["status"] in ("printing", "completed", "failed"):
            events.append(
                {"at": created + 0.4, "status": "printing", "actor": "agent", "reason": ""}
            )
        if job["status"] not in ACTIVE_JOB_STATUSES:
            error = job.get("error") or {}
            reason = error.get("message") or ("printed" if job["status"] == "completed" else "")
            events.append(
                {
                    "at": job["finished_at"] or created,
                    "status": job["status"],
                    "actor": "agent",
                    "reason": reason,
                }
            )
        record["events"] = events
        if data.get("document"):
            record["document"] = self.data.documents.get(job["id"], {"blocks": []})
        return {"ok": True, "job": record}

    def _alerts_list(self, data: Record) -> Record:
        alerts = sorted(self.data.alerts.values(), key=lambda a: a["id"], reverse=True)
        return {"ok": True, "alerts": alerts}

    def _agents_list(self, data: Record) -> Record:
        return {"ok": True, "agents": list(self.data.agents.values())}

    def _health_summary(self, data: Record) -> Record:
        counts = {"critical": 0, "warning": 0, "info": 0}
        for alert in self.data.alerts.values():
            if alert["state"] == "open":
                counts[alert["severity"]] += 1
        return {"ok": True, "agents": self.data.health, "alerts": counts}

    def _stations_list(self, data: Record) -> Record:
        names = sorted({(p["branch_id"], p["station"]) for p in self.data.printers.values()})
        return {
            "ok": True,
            "stations": [
                {
                    "branch_id": branch,
                    "name": name,
                    "default_expiry_s": None,
                    "printers": [
                        {"id": p["id"], "name": p["name"], "status": p["status"]}
                        for p in self.data.printers.values()
                        if (p["branch_id"], p["station"]) == (branch, name)
                    ],
                }
                for branch, name in names
                if name
            ],
        }

    def _printer_test(self, data: Record) -> Record:
        printer_id = data.get("printer_id")
        if printer_id not in self.data.printers:
            return _error("not_found", "printer not found")
        cid = f"test_{int(SAMPLE_NOW * 1000)}_1_00000000"
        result = {"correlation_id": cid, "printer_id": printer_id, "ok": True, "duration_ms": 412}
        asyncio.get_running_loop().call_soon(self.push, HubEvent.PRINTER_TEST_COMPLETED, result)
        return {"ok": True, "correlation_id": cid, "printer_id": printer_id}

    def _printer_configure(self, data: Record) -> Record:
        printer = self.data.printers.get(data.get("printer_id", 0))
        if printer is None:
            return _error("not_found", "printer not found")
        for key in ("name", "station", "paused", "station_priority", "default_expiry_s"):
            if key in data:
                printer[key] = data[key]
        self.push(HubEvent.PRINTER_UPDATE, copy.deepcopy(printer))
        return {"ok": True, "printer": printer}

    def _job_submit(self, data: Record) -> Record:
        printer_id = data.get("printer_id") or 1
        printer = self.data.printers.get(printer_id)
        if printer is None:
            return _error("not_found", "printer not found")
        self._next_job += 1
        job = _job(self._next_job, printer_id, data.get("station"), "queued", 0)
        self.data.jobs[job["id"]] = job
        self.data.documents[job["id"]] = data.get("document") or {"blocks": []}
        self.push(HubEvent.JOB_UPDATE, copy.deepcopy(job))
        return {"ok": True, "job": job, "duplicate": False}

    def _job_cancel(self, data: Record) -> Record:
        job = self.data.jobs.get(data.get("job_id", 0))
        if job is None:
            return _error("not_found", "job not found")
        if job["status"] not in ("queued", "dispatched"):
            return _error("conflict", f"job {job['id']} is {job['status']}")
        job["status"] = "cancelled"
        self.push(HubEvent.JOB_UPDATE, copy.deepcopy(job))
        return {"ok": True, "job": job}

    def _job_reprint(self, data: Record) -> Record:
        original = self.data.jobs.get(data.get("job_id", 0))
        if original is None:
            return _error("not_found", "job not found")
        self._next_job += 1
        job = _job(
            self._next_job,
            original["printer_id"],
            original["station"],
            "queued",
            0,
            reprint_of=original["id"],
        )
        self.data.jobs[job["id"]] = job
        self.data.documents[job["id"]] = self.data.documents.get(original["id"], {})
        self.push(HubEvent.JOB_UPDATE, copy.deepcopy(job))
        return {"ok": True, "job": job, "duplicate": False}

    def _alert_ack(self, data: Record) -> Record:
        alert = self.data.alerts.get(data.get("alert_id", 0))
        if alert is None:
            return _error("not_found", "alert not found")
        alert["state"] = "acknowledged"
        alert["acknowledged_by"] = "it-admin"
        alert["acknowledged_at"] = SAMPLE_NOW
        self.push(HubEvent.ALERT_UPDATE, copy.deepcopy(alert))
        return {"ok": True, "alert": alert}

    def _branches_list(self, data: Record) -> Record:
        """As a company hub answers: Downtown in sync, Harbour's box gone 25 minutes."""
        if not self.data.multi_branch:
            return _error("invalid_payload", "unknown event 'branches:list'")
        links: dict[Any, Record] = {
            12: {
                "state": "connected",
                "connected": True,
                "connected_at": SAMPLE_NOW - 86400,
                "disconnected_at": None,
                "last_sync_at": SAMPLE_NOW - 3,
                "lag_s": 0.0,
                "pending": 0,
            },
            14: {
                "state": "offline",
                "connected": False,
                "connected_at": SAMPLE_NOW - 7200,
                "disconnected_at": SAMPLE_NOW - 1500,
                "last_sync_at": SAMPLE_NOW - 1502,
                "lag_s": 0.0,
                "pending": None,
            },
        }
        return {
            "ok": True,
            "branches": [
                {"id": b["id"], "name": b["name"], "company_id": 1, "link": links[b["id"]]}
                for b in self.data.branches
            ],
        }


def _error(code: str, message: str) -> Record:
    return {"ok": False, "error": {"code": code, "message": message}}
