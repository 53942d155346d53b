"""Raising and clearing alerts, and telling operators.

One open alert per condition and subject (no floods): raising an alert that is
already open only refreshes its message. Every change is written before it is
broadcast: ``desktop:health:alert`` when an alert opens, ``alert:update`` when it
changes, is acknowledged or clears.
"""

from __future__ import annotations

import logging
from typing import Any

from pm_core.database import Database
from pm_core.protocol import HubEvent
from pm_core.protocol.records import AlertRecord
from pm_hub.broadcast import Broadcaster
from pm_hub.live_state import PrinterRow
from pm_hub.store import alerts as alert_store
from pm_hub.store.records import alert_record
from pm_hub.webhooks import WebhookNotifier

log = logging.getLogger(__name__)

#: Alert kinds and their severity.
SEVERITY = {
    "printer_offline": "critical",
    "printer_moved": "warning",
    "paper_out": "critical",
    "cover_open": "warning",
    "paper_low": "info",
    "printer_error": "critical",
    "job_failed": "warning",
    "job_expired": "warning",
    "failover": "warning",
    "agent_disconnected": "critical",
    "latency_high": "warning",
    "packet_loss_high": "warning",
}

#: Printer status -> the alert kind it opens.
PRINTER_STATUS_ALERTS = {
    "offline": "printer_offline",
    "paper_out": "paper_out",
    "cover_open": "cover_open",
    "paper_low": "paper_low",
    "error": "printer_error",
}


class AlertBook:
    def __init__(
        self, *, db: Database, broadcaster: Broadcaster, webhooks: WebhookNotifier
    ) -> None:
        self.db = db
        self.broadcaster = broadcaster
        self.webhooks = webhooks
        #: (kind, subject) of every alert not yet cleared, to skip needless writes.
        self._open: set[tuple[str, str]] = set()

    async def load(self) -> None:
        rows = await self.db.read(alert_store.open_alerts)
        self._open = {(r["kind"], r["subject"]) for r in rows}

    def is_open(self, kind: str, subject: str) -> bool:
        return (kind, subject) in self._open

    async def raise_alert(
        self,
        kind: str,
        subject: str,
        message: str,
        *,
        company_id: int,
        branch_id: int | None,
        details: dict[str, Any] | None = None,
    ) -> AlertRecord:
        severity = SEVERITY.get(kind, "warning")
        row, what = await self.db.write(
            lambda d: alert_store.open_alert(
                d,
                company_id=company_id,
                branch_id=branch_id,
                kind=kind,
                severity=severity,
                subject=subject,
                message=message,
                details=details or {},
            )
        )
        self._open.add((kind, subject))
        record = alert_record(row)
        if what == "opened":
            log.warning("alert %s: %s", kind, message)
            await self._tell(HubEvent.HEALTH_ALERT, record)
        elif what == "updated":
            await self._tell(HubEvent.ALERT_UPDATE, record)
        return record

    async def _tell(self, event: str, record: AlertRecord) -> None:
        await self.broadcaster.broadcast(event, record)
        self.webhooks.notify(event, record)

    async def clear(self, kind: str, subject: str, *, by: str = "hub") -> AlertRecord | None:
        if (kind, subject) not in self._open:
            return None
        row = await self.db.write(lambda d: alert_store.clear_alert(d, kind, subject, by=by))
        self._open.discard((kind, subject))
        if row is None:
            return None
        record = alert_record(row)
        log.info("alert %s cleared: %s", kind, subject)
        await self._tell(HubEvent.ALERT_UPDATE, record)
        return record

    async def clear_subject(self, subject: str, *, by: str = "hub") -> int:
        """Clear every alert not yet cleared about ``subject`` (a printer or an agent
        that is gone on purpose); returns how many."""
        kinds = sorted(kind for kind, about in self._open if about == subject)
        for kind in kinds:
            await self.clear(kind, subject, by=by)
        return len(kinds)

    async def acknowledge(self, alert_id: int, *, by: str) -> AlertRecord | None:
        """Acknowledge an open alert and tell everyone; acknowledging it again only
        returns it (no second broadcast or webhook)."""
        outcome = await self.db.write(lambda d: alert_store.acknowledge_alert(d, alert_id, by=by))
        if outcome is None:
            return None
        row, changed = outcome
        record = alert_record(row)
        if changed:
            log.info("alert %s acknowledged by %s", alert_id, by)
            await self._tell(HubEvent.ALERT_UPDATE, record)
        return record

    async def printer_status(self, printer: PrinterRow, *, overdue: bool = False) -> None:
        """Open the alert that matches the printer's status and clear the others.
        ``overdue``: its agent has been gone too long, planned stop or not."""
        subject = f"printer:{printer['id']}"
        planned = '"agent_stopped"' in str(printer["flags"])
        if printer["status"] == "offline" and planned and not overdue:
            # A planned stop (its agent or the hub stopping on purpose): an info line,
            # no alert, and the alerts it had stay as they are until it is back.
            log.info("%s is offline: its agent stopped on purpose (no alert)", printer["name"])
            return
        wanted = PRINTER_STATUS_ALERTS.get(printer["status"])
        for kind in PRINTER_STATUS_ALERTS.values():
            if kind != wanted:
                await self.clear(kind, subject)
        if wanted is not None:
            words = printer["status"].replace("_", " ")
            reason = ""
            if printer["status"] == "offline" and '"agent_disconnected"' in str(printer["flags"]):
                reason = " (its agent is not connected)"
            elif printer["status"] == "offline" and '"not_polling"' in str(printer["flags"]):
                reason = " (it stopped polling the hub: CloudPRNT)"
            await self.raise_alert(
                wanted,
                subject,
                f"{printer['name']} is {words}{reason}",
                company_id=printer["company_id"],
                branch_id=printer["branch_id"],
                details={"printer_id": printer["id"], "printer": printer["name"]},
            )
