"""What operators can do on a company hub (the :class:`~pm_hub.operator_actions.
OperatorActions` of ``/ops`` and HTTP): lists come from the mirror; actions on a
branch's printer, job or alert are forwarded to that branch hub over ``/branch``
and answered with its result (``offline`` when it is not connected)."""

from __future__ import annotations

import logging
import time
from typing import Any

from pm_core.database import Database
from pm_core.logs import correlation_id
from pm_core.protocol import ErrorCode, OpsEvent, ProtocolError, ok_ack
from pm_core.protocol.validation import (
    alert_filters,
    get_int,
    invalid,
    job_filters,
    printer_filter,
    require_object,
)
from pm_hub.auth import Principal
from pm_hub.company.mirror import BranchMirror
from pm_hub.correlation import CorrelationRegistry, PendingRequest, printer_test_done
from pm_hub.global_ids import global_id, globalize, localize_payload, split_id, valid_local_id
from pm_hub.health import HealthMonitor
from pm_hub.operator_actions import (
    TestResultSink,
    hub_version,
    require_raw_role,
    require_role,
)
from pm_hub.store import mirror as mirror_store

log = logging.getLogger(__name__)

Record = dict[str, Any]


class CompanyOperations:
    def __init__(
        self,
        *,
        db: Database,
        mirror: BranchMirror,
        registry: CorrelationRegistry,
        health: HealthMonitor,
    ) -> None:
        self.db = db
        self.mirror = mirror
        self.registry = registry
        self.health = health

    # -- lookups ------------------------------------------------------------------------

    def _printer(self, principal: Principal, printer_id: Any) -> Record:
        if isinstance(printer_id, bool) or not isinstance(printer_id, int):
            raise invalid("printer_id must be an integer")
        record = self.mirror.printers.get(printer_id)
        if record is None or not principal.sees(record):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {printer_id} not found")
        return record

    async def _mirrored(self, principal: Principal, kind: str, key: str, value: Any) -> Record:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{key} must be an integer")
        record = await self.db.read(lambda d: mirror_store.get(d, kind, value))
        if record is None or not principal.sees(record):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"{kind} {value} not found")
        return record

    def _branch_of(self, principal: Principal, branch_id: int | None) -> int:
        """The branch a station request is for: given, or the token's only branch."""
        if branch_id is None:
            if principal.branch_ids is not None and len(principal.branch_ids) == 1:
                branch_id = principal.branch_ids[0]
            else:
                raise invalid("give branch_id: this company hub serves several branches")
        link = self.mirror.links.get(branch_id)
        if (
            link is None
            or link.company_id != principal.company_id
            or not principal.sees_branch(branch_id)
        ):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"branch {branch_id} not found")
        return branch_id

    async def _forward(
        self,
        principal: Principal,
        branch_id: int,
        event: str,
        payload: Record,
        *,
        ids: tuple[str, ...] = (),
    ) -> Record:
        try:
            local = localize_payload(branch_id, payload, ids)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        ack = await self.mirror.forward(branch_id, event, local, principal)
        if not ack.get("ok"):
            error: dict[str, Any] = ack["error"] if isinstance(ack.get("error"), dict) else {}
            code = error.get("code")
            raise ProtocolError(
                ErrorCode(code) if code in set(ErrorCode) else ErrorCode.INTERNAL,
                str(error.get("message") or f"{event} failed at the branch"),
            )
        return ack

    def _shown(self, kind: str, record: Any, branch_id: int) -> Record:
        if not isinstance(record, dict):
            raise ProtocolError(ErrorCode.INTERNAL, "the branch answered without the object")
        link = self.mirror.links[branch_id]
        return globalize(kind, record, branch_id=branch_id, company_id=link.company_id)

    # -- printers ----------------------------------------------------------------------

    async def list_printers(self, principal: Principal, payload: Any) -> dict[str, Any]:
        wanted = printer_filter(payload)
        printers = [
            self.mirror.printer_view(p)
            for p in self.mirror.printers.values()
            if principal.sees(p) and wanted(p)
        ]
        printers.sort(key=lambda p: p["id"])
        return ok_ack(printers=printers)

    async def get_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("printer_id",))
        record = self._printer(principal, data.get("printer_id"))
        branch_id = record["branch_id"]
        try:
            ack = await self._forward(
                principal,
                branch_id,
                OpsEvent.PRINTER_GET,
                {"printer_id": record["id"]},
                ids=("printer_id",),
            )
        except ProtocolError as exc:
            if exc.code not in (ErrorCode.OFFLINE, ErrorCode.TIMEOUT):
                raise
            # The branch cannot be asked: what the mirror knows, without history.
            return ok_ack(printer=self.mirror.printer_view(record), history=[], stale=True)
        printer = self._shown("printer", ack.get("printer"), branch_id)
        return ok_ack(printer=printer, history=ack.get("history") or [])

    async def configure_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        require_role(principal, "configure_printer")
        record = self._printer(principal, data.get("printer_id"))
        branch_id = record["branch_id"]
        ack = await self._forward(
            principal, branch_id, OpsEvent.PRINTER_CONFIGURE, data, ids=("printer_id",)
        )
        return ok_ack(printer=self._shown("printer", ack.get("printer"), branch_id))

    async def test_printer(
        self,
        principal: Principal,
        payload: Any,
        *,
        on_result: TestResultSink | None = None,
    ) -> tuple[dict[str, Any], PendingRequest]:
        """Forward a test print; its outcome comes back from the branch later."""
        data = require_object(payload, allowed=("printer_id",))
        require_role(principal, "test_printer")
        record = self._printer(principal, data.get("printer_id"))
        branch_id, printer_id = record["branch_id"], record["id"]
        ack = await self._forward(
            principal,
            branch_id,
            OpsEvent.PRINTER_TEST,
            {"printer_id": printer_id},
            ids=("printer_id",),
        )
        branch_cid = str(ack.get("correlation_id"))
        finish = printer_test_done(printer_id, on_result)

        def done(request: PendingRequest, result: dict[str, Any]) -> Any:
            self.mirror.tests.pop((branch_id, branch_cid), None)  # answered or timed out
            return finish(request, result)

        pending = self.registry.register(
            "test", printer_id=printer_id, branch_id=branch_id, on_done=done
        )
        correlation_id.set(pending.correlation_id)
        early = self.mirror.expect_result(branch_id, branch_cid, pending.correlation_id)
        if early is not None:
            self.registry.resolve(pending.correlation_id, early)
        log.info("test print forwarded to branch %s (%s)", branch_id, branch_cid)
        return ok_ack(correlation_id=pending.correlation_id, printer_id=printer_id), pending

    # -- jobs --------------------------------------------------------------------------

    async def submit_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        require_role(principal, "submit_job")
        require_raw_role(principal, data.get("document"))
        if data.get("printer_id") is not None:
            branch_id = self._printer(principal, data["printer_id"])["branch_id"]
        else:
            branch_id = self._branch_of(principal, get_int(data, "branch_id", minimum=1))
        ack = await self._forward(
            principal, branch_id, OpsEvent.JOB_SUBMIT, data, ids=("printer_id",)
        )
        return ok_ack(
            job=self._shown("job", ack.get("job"), branch_id), duplicate=bool(ack.get("duplicate"))
        )

    async def get_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("job_id", "document"))
        record = await self._mirrored(principal, "job", "job_id", data.get("job_id"))
        branch_id = record["branch_id"]
        try:
            ack = await self._forward(principal, branch_id, OpsEvent.JOB_GET, data, ids=("job_id",))
        except ProtocolError as exc:
            if exc.code not in (ErrorCode.OFFLINE, ErrorCode.TIMEOUT):
                raise
            return ok_ack(job={**record, "events": []}, stale=True)
        job = ack.get("job")
        shown = self._shown("job", job, branch_id)
        shown["events"] = job.get("events") if isinstance(job, dict) else []
        return ok_ack(job=shown)

    async def list_jobs(self, principal: Principal, payload: Any) -> dict[str, Any]:
        filters = job_filters(payload)
        jobs = await self.db.read(
            lambda d: mirror_store.list_jobs(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                **filters,
            )
        )
        return ok_ack(jobs=jobs)

    async def cancel_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("job_id", "reason"))
        require_role(principal, "cancel_job")
        record = await self._mirrored(principal, "job", "job_id", data.get("job_id"))
        branch_id = record["branch_id"]
        if "reason" not in data:
            data = {**data, "reason": f"cancelled by {principal.sub} at the company hub"}
        ack = await self._forward(principal, branch_id, OpsEvent.JOB_CANCEL, data, ids=("job_id",))
        return ok_ack(job=self._shown("job", ack.get("job"), branch_id))

    async def reprint_job(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("job_id", "idempotency_key", "printer_id"))
        require_role(principal, "reprint_job")
        record = await self._mirrored(principal, "job", "job_id", data.get("job_id"))
        branch_id = record["branch_id"]
        if data.get("printer_id") is not None:
            self._printer(principal, data["printer_id"])
        ack = await self._forward(
            principal, branch_id, OpsEvent.JOB_REPRINT, data, ids=("job_id", "printer_id")
        )
        return ok_ack(
            job=self._shown("job", ack.get("job"), branch_id), duplicate=bool(ack.get("duplicate"))
        )

    # -- stations ---------------------------------------------------------------------

    async def list_stations(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload, allowed=("branch_id",))
        groups: dict[tuple[int, str], list[Record]] = {}
        for printer in self.mirror.printers.values():
            if printer.get("station") and principal.sees(printer):
                groups.setdefault((printer["branch_id"], printer["station"]), []).append(printer)
        stations = []
        for (branch_id, name), members in sorted(groups.items()):
            members.sort(key=lambda p: (p.get("station_priority") or 100, p["id"]))
            stations.append(
                {
                    "branch_id": branch_id,
                    "name": name,
                    "default_expiry_s": None,
                    "printers": [
                        {"id": p["id"], "name": p["name"], "status": p["status"]} for p in members
                    ],
                }
            )
        return ok_ack(stations=stations)

    async def configure_station(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        require_role(principal, "configure_station")
        branch_id = self._branch_of(principal, get_int(data, "branch_id", minimum=1))
        printer_ids = data.get("printer_ids")
        if printer_ids is not None:
            if not isinstance(printer_ids, list) or len(printer_ids) > 100:
                raise invalid("printer_ids must be a list of printer ids")
            local = []
            for pid in printer_ids:
                record = self._printer(principal, pid)
                parts = split_id(record["id"])
                if record["branch_id"] != branch_id or parts is None:
                    raise invalid("a station's printers must be in one branch")
                local.append(parts[1])
            data = {**data, "printer_ids": local}
        ack = await self._forward(principal, branch_id, OpsEvent.STATION_CONFIGURE, data)
        station = ack.get("station")
        if isinstance(station, dict):
            station = {
                **station,
                "branch_id": branch_id,
                "printers": [
                    {**p, "id": global_id(branch_id, p["id"])}
                    for p in station.get("printers") or []
                    if isinstance(p, dict) and valid_local_id(p.get("id"))
                ],
            }
        return ok_ack(station=station)

    # -- alerts and agents --------------------------------------------------------------------

    async def list_alerts(self, principal: Principal, payload: Any) -> dict[str, Any]:
        filters = alert_filters(payload)
        alerts = await self.db.read(
            lambda d: mirror_store.list_alerts(
                d,
                company_id=principal.company_id,
                branch_ids=principal.branch_list,
                **filters,
            )
        )
        return ok_ack(alerts=alerts)

    async def ack_alert(self, principal: Principal, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("alert_id",))
        require_role(principal, "ack_alert")
        record = await self._mirrored(principal, "alert", "alert_id", data.get("alert_id"))
        if record["state"] == "cleared":
            raise ProtocolError(ErrorCode.CONFLICT, f"alert {record['id']} is already cleared")
        branch_id = record["branch_id"]
        ack = await self._forward(principal, branch_id, OpsEvent.ALERT_ACK, data, ids=("alert_id",))
        return ok_ack(alert=self._shown("alert", ack.get("alert"), branch_id))

    async def list_agents(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload)
        agents = [
            self.mirror.agent_view(a)
            for a in sorted(self.mirror.agents.values(), key=lambda a: a["id"])
            if principal.sees(a)
        ]
        for agent in agents:
            link = self.mirror.links.get(agent["branch_id"])
            agent["connected"] = bool(agent.get("connected") and link and link.connected)
        return ok_ack(agents=agents)

    async def health_summary(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload, allowed=())
        agents = (await self.list_agents(principal, {}))["agents"]
        open_alerts = [
            a
            for a in self.mirror.open_alerts.values()
            if principal.sees(a) and a["state"] != "cleared"
        ]
        return await self.health.summary(agents, open_alerts, held=self.mirror.held_jobs(agents))

    # -- who and where ------------------------------------------------------------------------

    async def whoami(self, principal: Principal, payload: Any) -> dict[str, Any]:
        branches = [
            {"id": link.branch_id, "name": link.name}
            for link in self.mirror.visible_links(principal)
        ]
        return ok_ack(
            sub=principal.sub,
            role=principal.role,
            company_id=principal.company_id,
            branches=branches,
            hub={
                "version": hub_version(),
                "company_mode": True,
                "branch_id": None,
                "branch_name": None,
                "server_time": time.time(),
            },
        )

    async def list_branches(self, principal: Principal, payload: Any) -> dict[str, Any]:
        require_object(payload, allowed=())
        rows = [self.mirror.branch_row(link) for link in self.mirror.visible_links(principal)]
        return ok_ack(branches=rows)
