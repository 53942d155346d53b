"""``/agent``: agents on branch boxes. License key + device id in the connect ``auth``."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pm_core.protocol import (
    PRINTER_STATUSES,
    AgentEvent,
    ErrorCode,
    Namespace,
    ProtocolError,
    ok_ack,
)
from pm_core.protocol.errors import outcome_of
from pm_core.protocol.profiles import check_capabilities
from pm_core.protocol.validation import (
    get_bool,
    get_flags,
    get_float,
    get_int,
    get_str,
    invalid,
    require_object,
)
from pm_hub import auth
from pm_hub.handlers import guarded
from pm_hub.hub import AgentLink
from pm_hub.ops_namespace import refuse
from pm_hub.store import printers as printer_store
from pm_hub.store import tenants

if TYPE_CHECKING:
    from pm_hub.hub import Hub

log = logging.getLogger(__name__)

PRINTER_KINDS = ("network", "usb", "serial", "file", "simulated")


#: Largest ``capabilities`` object a printer may carry (JSON bytes).


def setup_agent_namespace(hub: Hub) -> None:
    sio = hub.sio
    ns = Namespace.AGENT

    async def connect(sid: str, environ: dict[str, Any], data: Any = None) -> None:
        if not isinstance(data, dict):
            raise refuse("license_key and device_id are required")
        key = data.get("license_key")
        device_id = data.get("device_id")
        if not isinstance(key, str) or not key or len(key) > 200:
            raise refuse("license_key is required")
        if not isinstance(device_id, str) or not 1 <= len(device_id) <= 128:
            raise refuse("device_id is required (1-128 characters)")
        lic = await hub.db.read(lambda d: tenants.find_license(d, auth.hash_license_key(key)))
        if lic is None or lic["revoked_at"] is not None:
            raise refuse("unknown or revoked license key")
        if lic["device_id"] != device_id:
            bound = await hub.db.write(lambda d: tenants.bind_license(d, lic["id"], device_id))
            if not bound:
                raise refuse("license key is bound to another device")

        def text(name: str) -> str | None:
            value = data.get(name)
            return value[:100] if isinstance(value, str) else None

        agent = await hub.db.write(
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
        )
        await hub.attach_agent(link)
        await hub.health.agent_connected(link, agent["name"])
        log.info("agent %s (%s) connected", agent["id"], device_id)
        await hub.agent_changed(agent)

    async def disconnect(sid: str, reason: Any = None) -> None:
        link = hub.agent_by_sid.get(sid)
        if link is not None and hub.agents.get(link.agent_id) is link:
            hub.dispatcher.agent_detached(link)
            hub.health.agent_disconnected(link)
        await hub.detach_agent(sid)

    sio.on("connect", connect, namespace=ns)
    sio.on("disconnect", disconnect, namespace=ns)

    def link_of(sid: str) -> AgentLink:
        link = hub.agent_by_sid.get(sid)
        if link is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "not an authenticated agent")
        return link

    def own_printer(link: AgentLink, printer_id: int | None) -> dict[str, Any]:
        row = hub.printers.get(printer_id) if printer_id is not None else None
        if row is None or row["branch_id"] != link.branch_id:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {printer_id} not found")
        if printer_id not in link.printer_ids:
            raise ProtocolError(
                ErrorCode.CONFLICT, f"printer {printer_id} is not registered by this agent"
            )
        return row

    async def printer_discovered(sid: str, payload: Any) -> dict[str, Any]:
        link = link_of(sid)
        data = require_object(payload)
        if isinstance(data.get("printer"), dict):
            data = data["printer"]
        address = get_str(data, "address", required=True, max_length=300)
        assert address is not None
        if "://" not in address:
            raise invalid("address must be a URI like tcp://HOST:PORT")
        identity = get_str(data, "identity", max_length=300) or address
        name = get_str(data, "name", max_length=100) or address.split("://", 1)[1]
        kind = get_str(data, "kind", default="network", choices=PRINTER_KINDS)
        model = get_str(data, "model", max_length=100)
        station = get_str(data, "station", max_length=64)
        status_supported = get_bool(data, "status_supported", default=True)
        status = get_str(data, "status", choices=PRINTER_STATUSES)
        flags = get_flags(data)
        serial = get_str(data, "serial", max_length=64)
        mac = get_str(data, "mac", max_length=32)
        previous_identity = get_str(data, "previous_identity", max_length=300)
        capabilities = check_capabilities(data.get("capabilities"))
        assert kind is not None
        previous_id = None
        if previous_identity and previous_identity != identity:
            old_row = next(
                (
                    p
                    for p in hub.printers.values()
                    if p["branch_id"] == link.branch_id and p["identity"] == previous_identity
                ),
                None,
            )
            previous_id = old_row["id"] if old_row else None
        row = await hub.db.write(
            lambda d: printer_store.upsert_printer(
                d,
                company_id=link.company_id,
                branch_id=link.branch_id,
                agent_id=link.agent_id,
                identity=identity,
                name=name,
                address=address,
                kind=kind,
                model=model,
                station=station.strip().lower() if station else None,
                status_supported=status_supported,
                serial=serial,
                mac=mac,
                capabilities=capabilities,
                previous_identity=previous_identity,
            )
        )
        if previous_id is not None and previous_id != row["id"]:
            # The agent no longer drives the printer it registered under the old
            # identity (it was this one under its address, or another printer now
            # replaced at the same address): that record is no longer this agent's.
            link.printer_ids.discard(previous_id)
            old_row = hub.printers.get(previous_id)
            if old_row is not None:
                await hub.printer_changed(old_row)
        if status is not None:
            printer_id = row["id"]
            updated = await hub.db.write(
                lambda d: printer_store.set_printer_status(d, printer_id, status, flags)
            )
            row = updated or row
        link.printer_ids.add(row["id"])
        # No await between these two: from here a new job for this printer goes to this
        # agent, and printer_attached must have started buffering it behind the
        # unfinished ones it redelivers, or the new job could overtake them.
        await hub.dispatcher.printer_attached(link, row["id"])
        await hub.printer_changed(row)
        return ok_ack(printer_id=row["id"], printer=hub.printer_view(row))

    async def printer_status(sid: str, payload: Any) -> dict[str, Any]:
        link = link_of(sid)
        data = require_object(payload, allowed=("printer_id", "status", "flags", "detail"))
        printer_id = get_int(data, "printer_id", required=True)
        status = get_str(data, "status", required=True, choices=PRINTER_STATUSES)
        flags = get_flags(data)
        row = own_printer(link, printer_id)
        assert status is not None
        # The hub's printer rows are the live state; the file follows behind (write-behind:
        # status is re-reported by the agent on every reconnect, so a crash loses nothing
        # that matters, and a burst of reports does not wait for a commit each).
        now = time.time()
        flags_json = json.dumps(flags, sort_keys=True)
        if row["status"] == status and row["flags"] == flags_json:
            hub.printers[row["id"]] = {**row, "last_seen": now}
            hub.printer_seen(row)
            return ok_ack()
        updated = {
            **row,
            "status": status,
            "flags": flags_json,
            "last_seen": now,
            "status_changed_at": now,
            "updated_at": now,
        }
        hub.db.append_soon(
            "printer status",
            printer_store.record_status_changes,
            (row["id"], status, flags_json, now),
        )
        if status != row["status"]:
            log.info("printer %s is %s", updated["name"], status)
        await hub.printer_changed(updated, status_only=True)
        return ok_ack()

    async def printer_test_result(sid: str, payload: Any) -> dict[str, Any]:
        link_of(sid)
        data = require_object(payload)
        cid = get_str(data, "correlation_id", required=True, max_length=120)
        assert cid is not None
        result = outcome_of(data, failed="test print failed")
        duration = get_float(data, "duration_ms", minimum=0)
        if duration is not None:
            result["agent_duration_ms"] = duration
        if not hub.registry.resolve(cid, result):
            return ok_ack(late=True)
        return ok_ack()

    async def print_job_status(sid: str, payload: Any) -> dict[str, Any]:
        return await hub.dispatcher.on_job_status(link_of(sid), payload)

    async def print_job_result(sid: str, payload: Any) -> dict[str, Any]:
        return await hub.dispatcher.on_job_result(link_of(sid), payload)

    async def health_ping(sid: str, payload: Any) -> dict[str, Any]:
        return await hub.health.on_ping(link_of(sid), payload)

    async def health_report(sid: str, payload: Any) -> dict[str, Any]:
        return await hub.health.on_report(link_of(sid), payload)

    for event, fn in (
        (AgentEvent.PRINTER_DISCOVERED, printer_discovered),
        (AgentEvent.PRINTER_STATUS, printer_status),
        (AgentEvent.PRINTER_TEST_RESULT, printer_test_result),
        (AgentEvent.PRINT_JOB_STATUS, print_job_status),
        (AgentEvent.PRINT_JOB_RESULT, print_job_result),
        (AgentEvent.HEALTH_PING, health_ping),
        (AgentEvent.HEALTH_REPORT, health_report),
    ):
        sio.on(
            event,
            guarded(
                event,
                fn,
                on_answer=hub.count_answer(ns),
                request_kind="agent",
            ),
            namespace=ns,
        )

    async def unknown(event: str, sid: str, *args: Any) -> dict[str, Any]:
        return ProtocolError(ErrorCode.INVALID_PAYLOAD, f"unknown event {event!r}").to_ack()

    sio.on("*", unknown, namespace=ns)
