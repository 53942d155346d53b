"""``/ops``: operators (dashboard, scripts). JWT in the connect ``auth``.

The handlers are module-level functions of an :class:`OpsSide` (what they use), bound
to the Socket.IO server by :func:`setup_ops_namespace`. Per-connection state lives in
the live state (``operators``) and the broadcaster (batched operators), never here.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import socketio

from pm_core.protocol import ErrorCode, HubEvent, Namespace, OpsEvent, ProtocolError, ok_ack
from pm_core.protocol.validation import get_bool, get_int, get_str, invalid, require_object
from pm_hub.admission import Admission, remote_address
from pm_hub.auth import AuthError, Principal
from pm_hub.broadcast import Broadcaster
from pm_hub.config import HubSettings
from pm_hub.credentials import Credentials
from pm_hub.handlers import connect_handler, guarded, refuse, unknown_event
from pm_hub.live_state import LiveState
from pm_hub.log_ring import LEVELS, LogFilter, LogRing, filter_from
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import Ack, OperatorActions
from pm_hub.printer_addition import PrinterAddition
from pm_hub.printer_retirement import PrinterRetirement

log = logging.getLogger(__name__)

NS = Namespace.OPS


@dataclass(frozen=True)
class OpsSide:
    """What the ``/ops`` handlers use."""

    settings: HubSettings
    state: LiveState
    credentials: Credentials
    broadcaster: Broadcaster
    operations: OperatorActions
    admission: Admission
    #: Printer removal and agent retirement (``pm_hub.printer_retirement``).
    retirement: PrinterRetirement | None = None
    #: Printers added at run time (``printer:add``).
    addition: PrinterAddition | None = None
    #: The hub's recent log lines (``logs:list``, ``logs:follow``).
    logs: LogRing | None = None


def operation_table(ops: OperatorActions) -> dict[str, Any]:
    """``/ops`` event -> the operation that answers it (``printer:test`` aside: its
    result comes later, see :func:`printer_test`)."""
    return {
        OpsEvent.PRINTERS_LIST: ops.list_printers,
        OpsEvent.PRINTER_GET: ops.get_printer,
        OpsEvent.PRINTER_CONFIGURE: ops.configure_printer,
        OpsEvent.JOB_SUBMIT: ops.submit_job,
        OpsEvent.JOB_GET: ops.get_job,
        OpsEvent.JOBS_LIST: ops.list_jobs,
        OpsEvent.JOB_CANCEL: ops.cancel_job,
        OpsEvent.JOB_REPRINT: ops.reprint_job,
        OpsEvent.STATIONS_LIST: ops.list_stations,
        OpsEvent.STATION_CONFIGURE: ops.configure_station,
        OpsEvent.ALERTS_LIST: ops.list_alerts,
        OpsEvent.ALERT_ACK: ops.ack_alert,
        OpsEvent.AGENTS_LIST: ops.list_agents,
        OpsEvent.HEALTH_SUMMARY: ops.health_summary,
        OpsEvent.WHOAMI: ops.whoami,
        OpsEvent.BRANCHES_LIST: ops.list_branches,
    }


async def connect(side: OpsSide, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    address = f"operator:{remote_address(environ)}"  # counted apart per kind of client
    waiting = side.admission.login_wait(address)
    if waiting is not None:
        raise refuse(waiting, ErrorCode.RATE_LIMITED)
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        principal = side.credentials.verify(token)
    except AuthError as exc:
        side.admission.logins.failed(address)
        raise refuse(str(exc)) from None
    side.admission.logins.succeeded(address)
    if principal.role == "branch":
        raise refuse("branch tokens connect to /branch, not /ops")
    # A branch hub serves one company. A company hub serves every company whose
    # tokens it signed; each operator then sees only its own company's objects
    # (every list filters by company) and joins only its own company's rooms.
    if principal.company_id != side.state.company_id and not side.settings.company_mode:
        raise refuse("token is for another company")
    full = side.admission.operator_joined(principal.company_id)
    if full is not None:
        raise refuse(full, ErrorCode.RATE_LIMITED)
    try:
        await side.broadcaster.sio.save_session(sid, {"principal": principal}, namespace=NS)
        side.state.operators[sid] = principal
        batched = isinstance(auth, dict) and auth.get("coalesce") is True
        await side.broadcaster.operator_joined(sid, principal, batched=batched)
    except Exception:  # refused after all (its rooms could not be read): not counted
        side.state.operators.pop(sid, None)
        side.broadcaster.operator_left(sid)
        side.admission.operator_left(principal.company_id)
        raise
    log.info("operator %s (%s) connected", principal.sub, principal.role)


async def disconnect(side: OpsSide, sid: str, reason: Any = None) -> None:
    principal = side.state.operators.pop(sid, None)
    if principal is None:  # closed by the hub (revoked, expired): still in the session
        principal = await _session_principal(side, sid)
    if isinstance(principal, Principal):
        side.admission.operator_left(principal.company_id)
    side.broadcaster.operator_left(sid)
    if side.logs is not None:
        side.logs.unfollow(sid)


async def _session_principal(side: OpsSide, sid: str) -> Principal | None:
    try:
        session = await side.broadcaster.sio.get_session(sid, namespace=NS)
    except KeyError:
        return None
    principal = session.get("principal") if isinstance(session, dict) else None
    return principal if isinstance(principal, Principal) else None


def principal_of(side: OpsSide, sid: str) -> Principal:
    """The operator on ``sid``, if it is within its request rate."""
    principal = side.state.operators.get(sid)
    if principal is None:
        raise ProtocolError(ErrorCode.AUTH_FAILED, "not authenticated")
    if not side.admission.request_allowed(principal.session_id or principal.sub):
        raise ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"more than {side.settings.ops_rate_limit:g} requests/s; slow down",
        )
    return principal


async def run_operation(side: OpsSide, operation: Any, sid: str, payload: Any) -> Ack:
    result: Ack = await operation(principal_of(side, sid), payload)
    return result


async def printer_test(side: OpsSide, sid: str, payload: Any) -> Ack:
    """The ack carries the correlation id; ``printer:test:completed`` follows to this
    operator alone."""

    async def send_result(result: dict[str, Any]) -> None:
        await side.broadcaster.emit(HubEvent.PRINTER_TEST_COMPLETED, result, to=sid, namespace=NS)

    ack, _pending = await side.operations.test_printer(
        principal_of(side, sid), payload, on_result=send_result
    )
    return ack


async def token_refresh(side: OpsSide, sid: str, payload: Any) -> Ack:
    """``token:refresh``: a new token for this session (same person, role and
    branches), which this connection uses from now on; the caller keeps it for its
    next connect. Revoking the session's first token ends it too."""
    require_object(payload, allowed=())
    principal = principal_of(side, sid)
    issued = await side.credentials.refresh(principal)
    side.state.operators[sid] = side.credentials.verify(issued.token)
    log.info("operator %s refreshed its token (session %s)", principal.sub, principal.session_id)
    return ok_ack(token=issued.token, token_id=issued.token_id, expires_at=issued.claims["exp"])


#: The least role that reads the hub's log lines (they name every branch's printers,
#: jobs and operators).
LOGS_ROLE = "manager"
LOG_FILTER_KEYS = ("level", "printer_id", "job_id", "correlation_id")


def _log_reader(side: OpsSide, sid: str) -> LogRing:
    principal = principal_of(side, sid)
    if not principal.at_least(LOGS_ROLE):
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"role {principal.role} may not read the hub's logs; it takes {LOGS_ROLE} or above",
        )
    # The lines are the whole hub's: a token for another company, or for some branches
    # of a company hub only, would read about objects it may not see.
    if principal.company_id != side.state.company_id or (
        side.settings.company_mode and principal.branch_ids is not None
    ):
        raise ProtocolError(
            ErrorCode.FORBIDDEN, "the hub's logs are for its own company's managers and admins"
        )
    if side.logs is None:
        raise ProtocolError(ErrorCode.UNAVAILABLE, "this hub keeps no log lines")
    return side.logs


def _log_filter(data: dict[str, Any]) -> LogFilter:
    level = get_str(data, "level", max_length=10)
    if level is not None and level.lower() not in LEVELS:
        raise invalid(f"level must be one of {', '.join(LEVELS)}")
    return filter_from(
        level.lower() if level else None,
        get_int(data, "printer_id", minimum=1),
        get_int(data, "job_id", minimum=1),
        get_str(data, "correlation_id", max_length=120),
    )


async def logs_list(side: OpsSide, sid: str, payload: Any) -> Ack:
    """``logs:list``: the newest ``limit`` lines (after ``after``) that match, oldest first."""
    data = require_object(payload, allowed=(*LOG_FILTER_KEYS, "after", "limit"))
    ring = _log_reader(side, sid)
    where = _log_filter(data)
    limit = get_int(data, "limit", default=200, minimum=1, maximum=1000)
    after = get_int(data, "after", default=0, minimum=0)
    assert limit is not None and after is not None
    lines = ring.lines(where, after=after, limit=limit)
    return ok_ack(lines=lines, last_seq=ring.last_seq, capacity=ring.capacity)


async def logs_follow(side: OpsSide, sid: str, payload: Any) -> Ack:
    """``logs:follow``: push this connection the new lines that match (``logs:update``);
    ``follow: false`` stops. One filter per connection: a new one replaces it."""
    data = require_object(payload, allowed=(*LOG_FILTER_KEYS, "follow"))
    ring = _log_reader(side, sid)
    if get_bool(data, "follow", default=True):
        ring.follow(sid, _log_filter(data))
        return ok_ack(following=True, last_seq=ring.last_seq)
    ring.unfollow(sid)
    return ok_ack(following=False, last_seq=ring.last_seq)


def setup_ops_namespace(sio: socketio.AsyncServer, side: OpsSide, metrics: HubMetrics) -> None:
    sio.on("connect", connect_handler(functools.partial(connect, side)), namespace=NS)
    sio.on("disconnect", functools.partial(disconnect, side), namespace=NS)
    on_answer = metrics.count_answer(NS)
    handlers: dict[str, Any] = {
        event: functools.partial(run_operation, side, operation)
        for event, operation in operation_table(side.operations).items()
    }
    handlers[OpsEvent.PRINTER_TEST] = functools.partial(printer_test, side)
    handlers[OpsEvent.TOKEN_REFRESH] = functools.partial(token_refresh, side)
    if side.retirement is not None:
        retirement = side.retirement
        handlers[OpsEvent.PRINTER_REMOVE] = functools.partial(
            run_operation, side, retirement.remove_printer
        )
        handlers[OpsEvent.AGENT_RETIRE] = functools.partial(
            run_operation, side, retirement.retire_agent
        )
    if side.addition is not None:
        handlers[OpsEvent.PRINTER_ADD] = functools.partial(
            run_operation, side, side.addition.add_printer
        )
    handlers[OpsEvent.LOGS_LIST] = functools.partial(logs_list, side)
    handlers[OpsEvent.LOGS_FOLLOW] = functools.partial(logs_follow, side)
    for event, handler in handlers.items():
        sio.on(
            event,
            guarded(event, handler, on_answer=on_answer, request_kind="ops"),
            namespace=NS,
        )
    sio.on("*", unknown_event, namespace=NS)


def refuse_branch_hubs(sio: socketio.AsyncServer) -> None:
    """``/branch`` on a hub that is not a company hub: refuse, and say why."""
    sio.on("connect", _not_a_company_hub, namespace=Namespace.BRANCH)


async def _not_a_company_hub(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    raise refuse("this hub is not a company hub (start it with pm hub --company-mode)")
