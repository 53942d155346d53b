"""What operators can do on a branch hub (the :class:`~pm_hub.operator_actions.
OperatorActions` of ``/ops``, the HTTP API and requests forwarded by a company hub):
done here, against the live state and the store."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from pm_core.database import Database
from pm_core.logs import correlation_id
from pm_core.protocol import (
    PROBLEM_PRINTER_STATUSES,
    ErrorCode,
    HubEvent,
    Namespace,
    ProtocolError,
    job_correlation_id,
    ok_ack,
)
from pm_core.protocol.documents import opens_files, validate_document
from pm_core.protocol.errors import error_of, known_code
from pm_core.protocol.languages import check_language_field, check_text_mode_field
from pm_core.protocol.profiles import check_capabilities, check_profile_field
from pm_core.protocol.validation import (
    alert_filters,
    get_float,
    get_int,
    get_name,
    get_str,
    invalid,
    job_filters,
    printer_filter,
    require_object,
)
from pm_core.sql import Session
from pm_hub.active_jobs import ActiveJobs
from pm_hub.alerts import AlertBook
from pm_hub.auth import Principal
from pm_hub.broadcast import Broadcaster
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry, PendingRequest, printer_test_done
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.operator_actions import (
    TestResultSink,
    hub_version,
    require_raw_role,
    require_role,
)
from pm_hub.printer_changes import PrinterChanges
from pm_hub.printer_views import PrinterViews
from pm_hub.stations import StationRouter
from pm_hub.store import alerts as alert_store
from pm_hub.store import jobs as job_store
from pm_hub.store import printers as printer_store
from pm_hub.store import stations as station_store
from pm_hub.store import tenants
from pm_hub.store import uptime as uptime_store
from pm_hub.store.records import agent_record, alert_record, job_record
from pm_hub.upstream import UpstreamStatus

log = logging.getLogger(__name__)


class BranchOperations:
    def __init__(
        self,
        settings: HubSettings,
        *,
        db: Database,
        state: LiveState,
        views: PrinterViews,
        changes: PrinterChanges,
        broadcaster: Broadcaster,
        registry: CorrelationRegistry,
        jobs: ActiveJobs,
        dispatcher: JobDispatcher,
        router: StationRouter,
        alerts: AlertBook,
        health: HealthMonitor,
        upstream: UpstreamStatus | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.state = state
        self.views = views
        self.changes = changes
        self.broadcaster = broadcaster
        self.registry = registry
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.router = router
        self.alerts = alerts
        self.health = health
        #: How the link to the company hub is doing (None without an upstream).
        self.upstream = upstream

    # -- printers ----------------------------------------------------------------------

    async def list_printers(self, principal: Principal, payload: Any) -> dict[str, Any]:
        wanted = printer_filter(payload)
        printers = [
            self.views.whole(row)
            for row in self.state.printers.values()
            if principal.sees(row) and wanted(row)
        ]
        printers.sort(key=lambda p: p["id"])
        return ok_ack(printers=printers)

    async def get_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("printer_id",))
        row = self.state.printer_for(principal, data.get("printer_id"))
        printer_id = row["id"]

        def read(d: Session) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
            return (
                printer_store.printer_history(d, printer_id),
                uptime_store.printer_uptime(d, printer_id),
                uptime_store.printer_activity(d, printer_id),
            )

        history, uptime, activity = await self.db.read(read)
        return ok_ack(
            printer=self.views.whole(row), history=history, uptime=uptime, activity=activity
        )

    async def configure_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(
            payload,
            allowed=(
                "printer_id",
                "name",
                "station",
                "station_priority",
                "paused",
                "default_expiry_s",
                "profile",
                "language",
                "text_mode",
            ),
        )
        require_role(principal, "configure_printer")
        row = self.state.printer_for(principal, data.get("printer_id"))
        changes: dict[str, Any] = {}
        if "name" in data:
            changes["name"] = get_name(data, "name", required=True, max_length=100)
        if "station" in data:
            station = get_name(data, "station", max_length=64)
            changes["station"] = station.strip().lower() if station else None
        if "station_priority" in data:
            changes["station_priority"] = get_int(
                data, "station_priority", required=True, minimum=0, maximum=10_000
            )
        if "default_expiry_s" in data:
            changes["default_expiry_s"] = get_float(
                data, "default_expiry_s", minimum=1, maximum=7 * 86400
            )
        if "paused" in data:
            if not isinstance(data["paused"], bool):
                raise invalid("paused must be true or false")
            changes["paused"] = int(data["paused"])
        if "profile" in data:
            changes["profile_override"] = check_profile_field(data["profile"])
        if "language" in data:
            changes["language_override"] = check_language_field(data["language"])
        if "text_mode" in data:
            changes["text_mode"] = check_text_mode_field(data["text_mode"])
        if not changes:
            raise invalid(
                "nothing to change: give name, station, station_priority, paused, "
                "default_expiry_s, profile, language or text_mode"
            )
        updated = await self.db.write(
            lambda d: printer_store.update_printer_settings(d, row["id"], changes)
        )
        if updated is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {row['id']} not found")
        extra: dict[str, Any] = {}
        if {"profile_override", "language_override", "text_mode"} & changes.keys():
            applied, updated = await self._apply_profile(updated)
            if "profile_override" in changes:
                extra["profile_applied"] = applied
            if "text_mode" in changes:
                extra["text_mode_applied"] = applied
            if "language_override" in changes:
                extra["language_applied"] = applied
        await self.changes.changed(updated)
        return ok_ack(printer=self.views.whole(updated), **extra)

    async def _apply_profile(self, row: PrinterRow) -> tuple[bool, PrinterRow]:
        """Tell the printer's agent to lay documents out for the chosen profile and
        text mode. Not connected (or not answering): False, and the agent gets them
        with the answer to its next registration of the printer."""
        link = self.state.agent_for_printer(row)
        if link is None:
            return False, row
        ack = await self.dispatcher.ask_agent(
            link,
            HubEvent.PRINTER_CONFIGURE,
            {
                "printer_id": row["id"],
                "profile": row["profile_override"],
                "language": row.get("language_override"),
                "text_mode": row.get("text_mode"),
            },
        )
        if not ack.get("ok"):
            log.warning(
                "agent %s did not take the profile of printer %s: %s",
                link.agent_id,
                row["id"],
                ack.get("error"),
            )
            return False, row
        try:
            capabilities = check_capabilities(ack.get("capabilities"))
        except ProtocolError as exc:
            log.warning("agent %s reported bad capabilities: %s", link.agent_id, exc)
            return True, row
        if capabilities is None:
            return True, row
        printer_id = row["id"]
        updated = await self.db.write(
            lambda d: printer_store.set_printer_capabilities(d, printer_id, capabilities)
        )
        return True, updated or row

    async def test_printer(
        self,
        principal: Principal,
        payload: Any,
        *,
        on_result: TestResultSink | None = None,
    ) -> tuple[dict[str, Any], PendingRequest]:
        """Send a test page; the ack carries the correlation id, the result comes later."""
        data = require_object(payload, allowed=("printer_id",))
        require_role(principal, "test_printer")
        row = self.state.printer_for(principal, data.get("printer_id"))
        link = self.state.agent_for_printer(row)
        if link is None and row.get("kind") == "cloudprnt":
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"printer {row['name']} polls the hub (CloudPRNT) and takes only jobs: "
                "submit a job to it to test it",
            )
        if link is None:
            raise ProtocolError(
                ErrorCode.OFFLINE, f"printer {row['name']} is not reachable: its agent is offline"
            )
        printer_id = row["id"]
        pending = self.registry.register(
            "test",
            printer_id=printer_id,
            agent_id=link.agent_id,
            on_done=printer_test_done(printer_id, on_result),
        )
        correlation_id.set(pending.correlation_id)  # log lines from here on carry it

        def delivered(ack: Any = None) -> None:
            if isinstance(ack, dict) and not ack.get("ok", False):
                error = error_of(ack)
                self.registry.fail(
                    pending.correlation_id,
                    known_code(error.get("code")),
                    str(error.get("message", "the agent refused the test print")),
                )

        await self.broadcaster.emit(
            HubEvent.PRINTER_TEST,
            {"correlation_id": pending.correlation_id, "printer_id": printer_id},
            to=link.sid,
            namespace=Namespace.AGENT,
            callback=delivered,
        )
        log.info("test print sent to printer %s", printer_id)
        return ok_ack(correlation_id=pending.correlation_id, printer_id=printer_id), pending

    # -- jobs --------------------------------------------------------------------------

    async def submit_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(
            payload,
            allowed=(
                "printer_id",
                "station",
                "branch_id",
                "document",
                "copies",
                "idempotency_key",
                "expires_in",
            ),
        )
        require_role(principal, "submit_job")
        require_raw_role(principal, data.get("document"))
        station = get_name(data, "station", max_length=64)
        if data.get("printer_id") is None and station is None:
            raise invalid("give printer_id or station")
        if data.get("printer_id") is not None and station is not None:
            raise invalid("give printer_id or station, not both")
        given = data.get("document")
        if opens_files(given):  # a PDF or a whole-ticket image is opened to be checked
            document = await asyncio.to_thread(validate_document, given)
        else:
            document = validate_document(given)
        copies = get_int(data, "copies", default=1, minimum=1, maximum=10)
        key = get_str(data, "idempotency_key", max_length=128)
        expires_in = get_float(data, "expires_in", minimum=1, maximum=7 * 86400)
        branch_id = get_int(data, "branch_id", minimum=1)
        assert copies is not None
        if station is not None:
            station = station.strip().lower()
            printer, primary = self.router.route(principal, station, branch_id)
        else:
            printer = primary = self.state.printer_for(principal, data.get("printer_id"))
        return await self._accept(
            principal,
            printer=printer,
            primary=primary,
            station=station,
            document=document,
            copies=copies,
            key=key,
            expires_in=expires_in,
        )

    async def _accept(
        self,
        principal: Principal,
        *,
        printer: dict[str, Any],
        primary: dict[str, Any],
        station: str | None,
        document: dict[str, Any],
        copies: int,
        key: str | None,
        expires_in: float | None,
        reprint_of: int | None = None,
    ) -> dict[str, Any]:
        """Write the job (on disk before the ack), then hand it to the dispatcher."""
        if expires_in is None:
            expires_in = self.router.default_expiry(printer) or self.settings.job_expiry_seconds
        failover_from = primary["id"] if primary["id"] != printer["id"] else None
        offered = self.dispatcher.will_offer(printer["id"])
        row, created = await self.db.write(
            lambda d: job_store.insert_job(
                d,
                company_id=printer["company_id"],
                branch_id=printer["branch_id"],
                printer_id=printer["id"],
                station=station,
                document=document,
                copies=copies,
                idempotency_key=key,
                submitted_by=principal.sub,
                expires_at=time.time() + expires_in,
                reprint_of=reprint_of,
                failover_from=failover_from,
                offered=offered,
            )
        )
        if created:
            self.dispatcher.submitted(row)  # before any await: keeps acceptance order
        # From here on the request's log lines carry the job's correlation id.
        correlation_id.set(job_correlation_id(row["id"], row["created_at"]))
        if created:
            log.debug(
                "job %s accepted for printer %s from %s", row["id"], printer["id"], principal.sub
            )
            await self.broadcaster.job_changed(row)
            if failover_from is not None:
                await self.router.routed_around(printer, primary)
        elif not principal.sees(row):
            raise ProtocolError(ErrorCode.CONFLICT, "idempotency_key already used")
        return ok_ack(job=job_record(row), duplicate=not created)

    async def cancel_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("job_id", "reason"))
        require_role(principal, "cancel_job")
        row = await self._visible_job(principal, data.get("job_id"))
        reason = get_str(data, "reason", max_length=300) or f"cancelled by {principal.sub}"
        cancelled = await self.dispatcher.cancel(row["id"], actor=principal.sub, reason=reason)
        return ok_ack(job=job_record(cancelled))

    async def reprint_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """A new job with the original's document, linked to it by ``reprint_of``."""
        data = require_object(payload, allowed=("job_id", "idempotency_key", "printer_id"))
        require_role(principal, "reprint_job")
        original = await self._visible_job(principal, data.get("job_id"))
        if original.get("document_pruned_at"):
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"job {original['id']} cannot be reprinted: its ticket was pruned "
                f"{self.settings.job_document_retention_s / 86400:g} days after it ended "
                "(job_document_retention_s)",
            )
        key = get_str(data, "idempotency_key", max_length=128)
        if data.get("printer_id") is not None:
            printer = primary = self.state.printer_for(principal, data.get("printer_id"))
            station = None
        elif original["station"]:
            station = original["station"]
            printer, primary = self.router.route(
                principal, original["station"], original["branch_id"]
            )
        else:
            station = None
            printer = primary = self.state.printer_for(principal, original["printer_id"])
        return await self._accept(
            principal,
            printer=printer,
            primary=primary,
            station=station,
            document=json.loads(original["document"]),
            copies=original["copies"],
            key=key,
            expires_in=None,
            reprint_of=original["id"],
        )

    async def _visible_job(self, principal: Principal, job_id: Any) -> dict[str, Any]:
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise invalid("job_id must be an integer")
        row = await self.db.read(lambda d: job_store.get_job(d, job_id))
        if row is None or not principal.sees(row):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"job {job_id} not found")
        return row

    async def get_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("job_id", "document"))
        row = await self._visible_job(principal, data.get("job_id"))
        events = await self.db.read(lambda d: job_store.job_events(d, row["id"]))
        record = job_record(row, with_document=bool(data.get("document")))
        record["events"] = events
        return ok_ack(job=record)

    async def list_jobs(self, principal: Principal, payload: Any) -> dict[str, Any]:
        filters = job_filters(payload)
        rows = await self.db.read(
            lambda d: job_store.list_jobs(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                **filters,
            )
        )
        return ok_ack(jobs=[job_record(r) for r in rows])

    # -- stations ---------------------------------------------------------------------

    async def list_stations(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload, allowed=("branch_id",))
        stations = []
        names = {
            (p["branch_id"], p["station"])
            for p in self.state.printers.values()
            if p["station"] and principal.sees(p)
        }
        names |= {
            key
            for key, row in self.router.stations.items()
            if row["company_id"] == principal.company_id and principal.sees_branch(key[0])
        }
        for branch_id, name in sorted(names):
            row = self.router.stations.get((branch_id, name), {})
            members = self.router.members(branch_id, name)
            stations.append(
                {
                    "branch_id": branch_id,
                    "name": name,
                    "default_expiry_s": row.get("default_expiry_s"),
                    "printers": [
                        {"id": p["id"], "name": p["name"], "status": p["status"]} for p in members
                    ],
                }
            )
        return ok_ack(stations=stations)

    async def configure_station(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """Set a station's printers in priority order and/or its default job expiry."""
        data = require_object(
            payload, allowed=("station", "branch_id", "printer_ids", "default_expiry_s")
        )
        require_role(principal, "configure_station")
        name = get_name(data, "station", required=True, max_length=64)
        assert name is not None
        name = name.strip().lower()
        branch_id = get_int(data, "branch_id", minimum=1)
        printer_ids = data.get("printer_ids")
        if printer_ids is not None:
            if not isinstance(printer_ids, list) or len(set(map(str, printer_ids))) != len(
                printer_ids
            ):
                raise invalid("printer_ids must be a list of distinct printer ids")
            rows = [self.state.printer_for(principal, pid) for pid in printer_ids]
            branches = {r["branch_id"] for r in rows}
            if len(branches) > 1:
                raise invalid("a station's printers must be in one branch")
            if branches:
                branch_id = branch_id or branches.pop()
        if branch_id is None:
            branch_id = principal.branch_ids[0] if principal.branch_ids else self.state.branch_id
        if not principal.sees_branch(branch_id):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"branch {branch_id} not found")
        set_expiry = "default_expiry_s" in data
        expiry = get_float(data, "default_expiry_s", minimum=1, maximum=7 * 86400)
        ids = None if printer_ids is None else [int(p) for p in printer_ids]
        branch = branch_id
        station, changed = await self.db.write(
            lambda d: station_store.configure_station(
                d,
                company_id=principal.company_id,
                branch_id=branch,
                name=name,
                printer_ids=ids,
                default_expiry_s=expiry,
                set_expiry=set_expiry,
            )
        )
        self.router.remember(station)
        for row in changed:
            await self.changes.changed(row)
        result = await self.list_stations(principal, {})
        match = [s for s in result["stations"] if (s["branch_id"], s["name"]) == (branch, name)]
        return ok_ack(station=match[0] if match else {"branch_id": branch, "name": name})

    # -- alerts --------------------------------------------------------------------------

    async def list_alerts(self, principal: Principal, payload: Any) -> dict[str, Any]:
        filters = alert_filters(payload)
        rows = await self.db.read(
            lambda d: alert_store.list_alerts(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                **filters,
            )
        )
        return ok_ack(alerts=[alert_record(r) for r in rows])

    async def ack_alert(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("alert_id",))
        require_role(principal, "ack_alert")
        alert_id = get_int(data, "alert_id", required=True, minimum=1)
        assert alert_id is not None
        row = await self.db.read(lambda d: alert_store.get_alert(d, alert_id))
        if row is None or not principal.sees(row):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"alert {alert_id} not found")
        if row["state"] == "cleared":
            raise ProtocolError(ErrorCode.CONFLICT, f"alert {alert_id} is already cleared")
        record = await self.alerts.acknowledge(alert_id, by=principal.sub)
        assert record is not None
        return ok_ack(alert=record)

    # -- agents ------------------------------------------------------------------------

    async def list_agents(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload)
        rows = await self.db.read(
            lambda d: tenants.list_agents(
                d, company_id=principal.company_id, branch_ids=principal.branch_list
            )
        )
        agents = []
        for row in rows:
            record = agent_record(row)
            record["connected"] = row["id"] in self.state.agents
            record["printers"] = sorted(
                p["id"] for p in self.state.printers.values() if p["agent_id"] == row["id"]
            )
            agents.append(record)
        return ok_ack(agents=agents)

    async def health_summary(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """Per agent: latency series (last hour, per minute), loss, uptime, reconnects,
        spool depth; open alerts by severity."""
        require_object(payload, allowed=())
        agents = (await self.list_agents(principal, {}))["agents"]
        open_alerts = await self.db.read(
            lambda d: alert_store.list_alerts(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                states=["open", "acknowledged"],
                limit=1000,
            )
        )
        held = {a["id"]: self.jobs.held_by(set(a["printers"])) for a in agents}
        return await self.health.summary(agents, open_alerts, held=held)

    async def whoami(self, principal: Principal, payload: Any) -> dict[str, Any]:
        branches = await self.db.read(lambda d: tenants.list_branches(d, principal.company_id))
        visible = [
            {"id": b["id"], "name": b["name"]} for b in branches if principal.sees_branch(b["id"])
        ]
        return ok_ack(
            sub=principal.sub,
            role=principal.role,
            company_id=principal.company_id,
            branches=visible,
            hub={
                "version": hub_version(),
                "company_mode": self.settings.company_mode,
                "branch_id": self.state.branch_id,
                "branch_name": self.state.branch_name,
                "server_time": time.time(),
                "upstream": self.upstream.describe() if self.upstream else None,
            },
        )

    async def list_branches(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """One row per branch this token sees. A branch hub serves its own branches:
        their link state is ``local`` (a company hub answers with its branch links)."""
        require_object(payload, allowed=())
        branches = await self.db.read(lambda d: tenants.list_branches(d, principal.company_id))
        open_alerts = await self.db.read(
            lambda d: alert_store.list_alerts(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                states=["open"],
                limit=1000,
            )
        )
        rows = []
        for branch in branches:
            if not principal.sees_branch(branch["id"]):
                continue
            printers = [p for p in self.state.printers.values() if p["branch_id"] == branch["id"]]
            alerts = {"critical": 0, "warning": 0, "info": 0}
            for alert in open_alerts:
                if alert["branch_id"] == branch["id"]:
                    alerts[alert["severity"]] = alerts.get(alert["severity"], 0) + 1
            agents = [a for a in self.state.agents.values() if a.branch_id == branch["id"]]
            rows.append(
                {
                    "id": branch["id"],
                    "name": branch["name"],
                    "company_id": branch["company_id"],
                    "printers": len(printers),
                    "problems": sum(1 for p in printers if p["status"] in PROBLEM_PRINTER_STATUSES),
                    "alerts": alerts,
                    "agents_connected": len(agents),
                    "active_jobs": sum(
                        1 for j in self.jobs.active.values() if j.branch_id == branch["id"]
                    ),
                    "link": {"state": "local", "connected": True, "last_sync_at": None},
                }
            )
        return ok_ack(branches=rows)
