"""``/ops``: operators (dashboard, scripts). JWT in the connect ``auth``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import socketio

from pm_core.protocol import ErrorCode, HubEvent, Namespace, OpsEvent, ProtocolError, error_ack
from pm_hub.auth import AuthError, Principal
from pm_hub.coalesce import batched_rooms
from pm_hub.handlers import guarded
from pm_hub.operations import Operations
from pm_hub.rate_limit import RateLimiter

if TYPE_CHECKING:
    from pm_hub.hub import Hub

log = logging.getLogger(__name__)


def refuse(message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(
        ErrorCode.AUTH_FAILED.value, {"code": ErrorCode.AUTH_FAILED.value, "message": message}
    )


def setup_ops_namespace(hub: Hub, operations: Operations) -> None:
    sio = hub.sio
    ns = Namespace.OPS

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = hub.verify_token(token)
        except AuthError as exc:
            raise refuse(str(exc)) from None
        if principal.role == "branch":
            raise refuse("branch tokens connect to /branch, not /ops")
        # A branch hub serves one company. A company hub serves every company whose
        # tokens it signed; each operator then sees only its own company's objects
        # (every list filters by company) and joins only its own company's rooms.
        if principal.company_id != hub.company_id and not hub.settings.company_mode:
            raise refuse("token is for another company")
        await sio.save_session(sid, {"principal": principal}, namespace=ns)
        hub.operators[sid] = principal
        rooms = await hub.operator_rooms(principal)
        if isinstance(auth, dict) and auth.get("coalesce") is True:
            rooms = batched_rooms(rooms)  # printer updates arrive as printers:update
            hub.batched_operators.add(sid)
        for room in rooms:
            await sio.enter_room(sid, room, namespace=ns)
        log.info("operator %s (%s) connected", principal.sub, principal.role)

    async def disconnect(sid: str, reason: Any = None) -> None:
        hub.operators.pop(sid, None)
        hub.batched_operators.discard(sid)
        limiter.forget(sid)

    sio.on("connect", connect, namespace=ns)
    sio.on("disconnect", disconnect, namespace=ns)

    limiter = RateLimiter(hub.settings.ops_rate_limit)

    def principal_of(sid: str) -> Principal:
        principal = hub.operators.get(sid)
        if principal is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "not authenticated")
        if not limiter.allow(sid):
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {hub.settings.ops_rate_limit:g} requests/s; slow down",
            )
        return principal

    def register(event: str, operation: Any) -> None:
        async def handle(sid: str, payload: Any) -> dict[str, Any]:
            result: dict[str, Any] = await operation(principal_of(sid), payload)
            return result

        sio.on(
            event,
            guarded(
                event,
                handle,
                on_answer=hub.count_answer(ns),
                request_kind="ops",
            ),
            namespace=ns,
        )

    register(OpsEvent.PRINTERS_LIST, operations.list_printers)
    register(OpsEvent.PRINTER_GET, operations.get_printer)
    register(OpsEvent.PRINTER_CONFIGURE, operations.configure_printer)
    register(OpsEvent.JOB_SUBMIT, operations.submit_job)
    register(OpsEvent.JOB_GET, operations.get_job)
    register(OpsEvent.JOBS_LIST, operations.list_jobs)
    register(OpsEvent.JOB_CANCEL, operations.cancel_job)
    register(OpsEvent.JOB_REPRINT, operations.reprint_job)
    register(OpsEvent.STATIONS_LIST, operations.list_stations)
    register(OpsEvent.STATION_CONFIGURE, operations.configure_station)
    register(OpsEvent.ALERTS_LIST, operations.list_alerts)
    register(OpsEvent.ALERT_ACK, operations.ack_alert)
    register(OpsEvent.AGENTS_LIST, operations.list_agents)
    register(OpsEvent.HEALTH_SUMMARY, operations.health_summary)
    register(OpsEvent.WHOAMI, operations.whoami)
    register(OpsEvent.BRANCHES_LIST, operations.list_branches)

    async def printer_test(sid: str, payload: Any) -> dict[str, Any]:
        async def send_result(result: dict[str, Any]) -> None:
            await hub.emit(HubEvent.PRINTER_TEST_COMPLETED, result, to=sid, namespace=ns)

        ack, _pending = await operations.test_printer(
            principal_of(sid), payload, on_result=send_result
        )
        return ack

    sio.on(
        OpsEvent.PRINTER_TEST,
        guarded(
            OpsEvent.PRINTER_TEST,
            printer_test,
            on_answer=hub.count_answer(ns),
            request_kind="ops",
        ),
        namespace=ns,
    )

    async def unknown(event: str, sid: str, *args: Any) -> dict[str, Any]:
        return error_ack(ErrorCode.INVALID_PAYLOAD, f"unknown event {event!r}")

    sio.on("*", unknown, namespace=ns)


def refuse_branch_hubs(hub: Hub) -> None:
    """``/branch`` on a hub that is not a company hub: refuse, and say why."""

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        raise refuse("this hub is not a company hub (start it with pm hub --company-mode)")

    hub.sio.on("connect", connect, namespace=Namespace.BRANCH)
