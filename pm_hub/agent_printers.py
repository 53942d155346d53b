"""What agents say about their printers: a registration (``printer:discovered``) and a
status report (``printer:status``), checked, stored and passed on as a printer change.

Status is written behind: the live row changes at once and operators are told, while
the file follows in bulk (the agent re-reports every status on reconnect, so a crash
loses nothing that matters, and a burst of reports does not wait for a commit each).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pm_core.database import Database
from pm_core.protocol import PRINTER_STATUSES, ErrorCode, ProtocolError, ok_ack
from pm_core.protocol.profiles import check_capabilities
from pm_core.protocol.validation import (
    control_characters,
    get_bool,
    get_flags,
    get_int,
    get_name,
    get_str,
    invalid,
    require_object,
)
from pm_hub.alerts import AlertBook
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import AgentLink, LiveState, PrinterRow
from pm_hub.printer_changes import PrinterChanges
from pm_hub.printer_views import PrinterViews
from pm_hub.store import printers as printer_store

log = logging.getLogger(__name__)

PRINTER_KINDS = ("network", "usb", "serial", "file", "simulated")


def _hardware_text(value: str | None) -> str | None:
    """What the printer itself said (its model, its serial): control characters in it
    are dropped rather than refused, the printer cannot be told to say it better."""
    if value is None or not control_characters(value):
        return value
    return "".join(ch for ch in value if ch.isprintable()) or None


class AgentPrinters:
    def __init__(
        self,
        *,
        db: Database,
        state: LiveState,
        changes: PrinterChanges,
        dispatcher: JobDispatcher,
        views: PrinterViews,
        alerts: AlertBook,
    ) -> None:
        self.db = db
        self.state = state
        self.changes = changes
        self.dispatcher = dispatcher
        self.views = views
        self.alerts = alerts

    def _own_printer(self, link: AgentLink, printer_id: int | None) -> PrinterRow:
        row = self.state.printers.get(printer_id) if printer_id is not None else None
        if row is None or row["branch_id"] != link.branch_id:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {printer_id} not found")
        if printer_id not in link.printer_ids:
            raise ProtocolError(
                ErrorCode.CONFLICT, f"printer {printer_id} is not registered by this agent"
            )
        return row

    async def discovered(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        """``printer:discovered``: register (or find again) a printer the agent drives,
        then send it the jobs that wait for it."""
        data = require_object(payload)
        if isinstance(data.get("printer"), dict):
            data = data["printer"]
        address = get_str(data, "address", required=True, max_length=300)
        assert address is not None
        if "://" not in address:
            raise invalid("address must be a URI like tcp://HOST:PORT")
        identity = get_str(data, "identity", max_length=300) or address
        if identity.startswith("cloudprnt:") or address.startswith("cloudprnt:"):
            # Those records are the CloudPRNT server's: no agent drives or takes them.
            raise invalid("cloudprnt: identities and addresses are not an agent's")
        name = get_name(data, "name", max_length=100) or address.split("://", 1)[1]
        kind = get_str(data, "kind", default="network", choices=PRINTER_KINDS)
        model = _hardware_text(get_str(data, "model", max_length=100))
        station = get_name(data, "station", max_length=64)
        status_supported = get_bool(data, "status_supported", default=True)
        status = get_str(data, "status", choices=PRINTER_STATUSES)
        flags = get_flags(data)
        serial = _hardware_text(get_str(data, "serial", max_length=64))
        mac = get_str(data, "mac", max_length=32)
        previous_identity = get_str(data, "previous_identity", max_length=300)
        capabilities = check_capabilities(data.get("capabilities"))
        assert kind is not None
        removed = await self.db.read(
            lambda d: printer_store.removed_by_operator(
                d, link.branch_id, [identity, previous_identity or ""]
            )
        )
        added_again = data.get("operator_added") is True and bool(
            self.state.adding_through.get(link.agent_id)
        )
        if removed is not None and not added_again:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"printer {removed['name']} was removed by an operator "
                f"({removed['retired_by']}); take it out of this agent's printers",
                removed_by=removed["retired_by"],
            )
        mover = self._claimed_from(link, identity, previous_identity)
        previous_id = None
        if previous_identity and previous_identity != identity:
            old_row = next(
                (
                    p
                    for p in self.state.printers.values()
                    if p["branch_id"] == link.branch_id and p["identity"] == previous_identity
                ),
                None,
            )
            previous_id = old_row["id"] if old_row else None
        row = await self.db.write(
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
            old_row = self.state.printers.get(previous_id)
            if old_row is not None:
                await self.changes.changed(old_row)
        if status is not None:
            printer_id = row["id"]
            updated = await self.db.write(
                lambda d: printer_store.set_printer_status(d, printer_id, status, flags)
            )
            row = updated or row
        link.printer_ids.add(row["id"])
        if mover is not None:
            await self._moved(row, mover, link)
        # No await between these two: from here a new job for this printer goes to this
        # agent, and printer_attached must have started buffering it behind the
        # unfinished ones it redelivers, or the new job could overtake them.
        await self.dispatcher.printer_attached(link, row["id"])
        await self.changes.changed(row)
        return ok_ack(printer_id=row["id"], printer=self.views.whole(row))

    def _claimed_from(
        self, link: AgentLink, identity: str, previous_identity: str | None
    ) -> PrinterRow | None:
        """The printer another agent had under this identity (None: new, or this agent's
        own). While that agent is connected and drives it, the claim is refused: a
        printer moves only when its agent is gone, or one agent could take another's
        printer and receive its tickets."""
        for row in self.state.printers.values():
            if row["branch_id"] != link.branch_id or row["identity"] not in (
                identity,
                previous_identity,
            ):
                continue
            holder = row["agent_id"]
            if holder is None or holder == link.agent_id:
                continue
            other = self.state.agents.get(holder)
            if other is not None and row["id"] in other.printer_ids:
                log.warning(
                    "agent %s claimed printer %s of connected agent %s: refused",
                    link.agent_id,
                    row["id"],
                    holder,
                )
                raise ProtocolError(
                    ErrorCode.CONFLICT,
                    f"printer {row['name']} is driven by agent {holder}; it moves to another "
                    "agent only when that agent is gone",
                )
            return row
        return None

    async def _moved(self, row: PrinterRow, before: PrinterRow, link: AgentLink) -> None:
        """A printer is now driven by another agent (its own was gone): say so."""
        log.warning(
            "printer %s moved from agent %s to agent %s",
            row["id"],
            before["agent_id"],
            link.agent_id,
        )
        await self.alerts.raise_alert(
            "printer_moved",
            f"printer:{row['id']}",
            f"{row['name']} is now driven by agent {link.agent_id} "
            f"(was agent {before['agent_id']})",
            company_id=row["company_id"],
            branch_id=row["branch_id"],
            details={
                "printer_id": row["id"],
                "from_agent_id": before["agent_id"],
                "to_agent_id": link.agent_id,
            },
        )

    async def status(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        """``printer:status``: the live row changes now, the file follows (write-behind)."""
        data = require_object(payload, allowed=("printer_id", "status", "flags", "detail"))
        printer_id = get_int(data, "printer_id", required=True)
        status = get_str(data, "status", required=True, choices=PRINTER_STATUSES)
        flags = get_flags(data)
        row = self._own_printer(link, printer_id)
        assert status is not None
        now = time.time()
        flags_json = json.dumps(flags, sort_keys=True)
        was = row["status"]
        await self.changes.status_reported(self.db, row, status, flags_json, now)
        if status != was:
            log.info("printer %s is %s", row["name"], status)
        return ok_ack()
