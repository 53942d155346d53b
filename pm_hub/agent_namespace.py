"""``/agent``: agents on branch boxes. License key + device id in the connect ``auth``.

The handlers are module-level functions of an :class:`AgentSide` (what they use),
bound to the Socket.IO server by :func:`setup_agent_namespace`. They check who is
asking and hand the payload to the service that owns it: printers
(``pm_hub.agent_printers``), jobs (``pm_hub.dispatch``), link health
(``pm_hub.health``), test prints (``pm_hub.correlation``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.protocol import AgentEvent, ErrorCode, Namespace, ProtocolError, ok_ack
from pm_core.protocol.errors import outcome_of
from pm_core.protocol.validation import (
    control_characters,
    get_float,
    get_str,
    require_object,
)
from pm_hub import auth
from pm_hub.admission import Admission, remote_address
from pm_hub.agent_printers import AgentPrinters
from pm_hub.agent_sessions import AgentSessions
from pm_hub.correlation import CorrelationRegistry
from pm_hub.dispatch import JobDispatcher
from pm_hub.handlers import connect_handler, guarded, refuse, unknown_event
from pm_hub.health import HealthMonitor
from pm_hub.live_state import AgentLink, LiveState
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import Ack
from pm_hub.printer_retirement import PrinterRetirement
from pm_hub.store import tenants

log = logging.getLogger(__name__)

NS = Namespace.AGENT


@dataclass(frozen=True)
class AgentSide:
    """What the ``/agent`` handlers use."""

    db: Database
    state: LiveState
    sessions: AgentSessions
    printers: AgentPrinters
    dispatcher: JobDispatcher
    health: HealthMonitor
    registry: CorrelationRegistry
    admission: Admission
    retirement: PrinterRetirement


async def connect(side: AgentSide, sid: str, environ: dict[str, Any], data: Any = None) -> None:
    address = f"agent:{remote_address(environ)}"  # counted apart per kind of client
    waiting = side.admission.login_wait(address)
    if waiting is not None:
        raise refuse(waiting, ErrorCode.RATE_LIMITED)
    try:
        lic, device_id = await _licensed(side, data)
    except socketio.exceptions.ConnectionRefusedError:
        side.admission.logins.failed(address)
        raise
    side.admission.logins.succeeded(address)
    assert isinstance(data, dict)
    db = side.db

    def text(name: str) -> str | None:
        value = data.get(name)
        return value[:100] if isinstance(value, str) else None

    agent = await db.write(
        lambda d: tenants.upsert_agent(
            d,
            device_id=device_id,
            license_id=lic["id"],
            company_id=lic["company_id"],
            branch_id=lic["branch_id"],
            name=text("name"),
            version=text("version"),
            hostname=text("hostname"),
        )
    )
    link = AgentLink(
        agent_id=agent["id"],
        sid=sid,
        device_id=device_id,
        company_id=lic["company_id"],
        branch_id=lic["branch_id"],
        license_id=lic["id"],
    )
    await side.sessions.attach(link, agent)


async def _licensed(side: AgentSide, data: Any) -> tuple[dict[str, Any], str]:
    """The license and device id an agent connects with, checked; refused otherwise."""
    if not isinstance(data, dict):
        raise refuse("license_key and device_id are required")
    key = data.get("license_key")
    device_id = data.get("device_id")
    if not isinstance(key, str) or not key or len(key) > 200:
        raise refuse("license_key is required")
    if not isinstance(device_id, str) or not 1 <= len(device_id) <= 128:
        raise refuse("device_id is required (1-128 characters)")
    for field in ("device_id", "name", "version", "hostname"):
        value = data.get(field)
        if isinstance(value, str) and control_characters(value):
            raise refuse(f"{field} must not hold control characters")
    db = side.db
    lic = await db.read(lambda d: tenants.find_license(d, auth.hash_license_key(key)))
    if lic is None or lic["revoked_at"] is not None:
        raise refuse("unknown or revoked license key")
    known = await db.read(lambda d: tenants.agent_of_device(d, device_id))
    if known is not None and not _may_take_device(known, lic):
        log.warning(
            "license %s tried device id %r of agent %s: refused", lic["id"], device_id, known["id"]
        )
        raise refuse("device_id belongs to another license")
    if lic["device_id"] != device_id:
        bound = await db.write(lambda d: tenants.bind_license(d, lic["id"], device_id))
        if not bound:
            raise refuse("license key is bound to another device")
    return lic, device_id


def _may_take_device(known: dict[str, Any], lic: dict[str, Any]) -> bool:
    """A device id belongs to its license: another license may take it over only to
    replace a revoked one of the same company (a machine licensed again), never across
    companies, and never while the first license is valid (that would disconnect its
    agent and move its record)."""
    if known["license_id"] in (None, lic["id"]):
        return True
    return (
        known["license_revoked_at"] is not None and known["license_company_id"] == lic["company_id"]
    )


async def disconnect(side: AgentSide, sid: str, reason: Any = None) -> None:
    await side.sessions.detach(sid)


def link_of(side: AgentSide, sid: str) -> AgentLink:
    link = side.state.agent_by_sid.get(sid)
    if link is None:
        raise ProtocolError(ErrorCode.AUTH_FAILED, "not an authenticated agent")
    return link


async def printer_discovered(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.printers.discovered(link_of(side, sid), payload)


async def printer_status(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.printers.status(link_of(side, sid), payload)


async def printer_test_result(side: AgentSide, sid: str, payload: Any) -> Ack:
    link_of(side, sid)
    data = require_object(payload)
    cid = get_str(data, "correlation_id", required=True, max_length=120)
    assert cid is not None
    result = outcome_of(data, failed="test print failed")
    duration = get_float(data, "duration_ms", minimum=0)
    if duration is not None:
        result["agent_duration_ms"] = duration
    if not side.registry.resolve(cid, result):
        return ok_ack(late=True)
    return ok_ack()


async def print_job_status(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.dispatcher.on_job_status(link_of(side, sid), payload)


async def print_job_result(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.dispatcher.on_job_result(link_of(side, sid), payload)


async def printers_registered(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.retirement.registered(link_of(side, sid), payload)


async def health_ping(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.health.on_ping(link_of(side, sid), payload)


async def health_report(side: AgentSide, sid: str, payload: Any) -> Ack:
    return await side.health.on_report(link_of(side, sid), payload)


#: Longest ``reason`` an agent may give for stopping.
STOP_REASON_MAX = 40


async def agent_stopping(side: AgentSide, sid: str, payload: Any) -> Ack:
    """The agent is about to disconnect on purpose: its disconnect is planned."""
    link = link_of(side, sid)
    data = require_object(payload)
    reason = get_str(data, "reason", max_length=STOP_REASON_MAX) or "shutdown"
    if control_characters(reason):
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "reason must not hold control characters")
    link.stopping = reason
    log.info("agent %s is stopping (planned: %s)", link.agent_id, reason)
    return ok_ack()


HANDLERS = {
    AgentEvent.PRINTER_DISCOVERED: printer_discovered,
    AgentEvent.PRINTER_STATUS: printer_status,
    AgentEvent.PRINTER_TEST_RESULT: printer_test_result,
    AgentEvent.PRINT_JOB_STATUS: print_job_status,
    AgentEvent.PRINT_JOB_RESULT: print_job_result,
    AgentEvent.HEALTH_PING: health_ping,
    AgentEvent.HEALTH_REPORT: health_report,
    AgentEvent.PRINTERS_REGISTERED: printers_registered,
    AgentEvent.STOPPING: agent_stopping,
}


def setup_agent_namespace(sio: socketio.AsyncServer, side: AgentSide, metrics: HubMetrics) -> None:
    sio.on("connect", connect_handler(functools.partial(connect, side)), namespace=NS)
    sio.on("disconnect", functools.partial(disconnect, side), namespace=NS)
    on_answer = metrics.count_answer(NS)
    for event, handler in HANDLERS.items():
        sio.on(
            event,
            guarded(
                event, functools.partial(handler, side), on_answer=on_answer, request_kind="agent"
            ),
            namespace=NS,
        )
    sio.on("*", unknown_event, namespace=NS)
