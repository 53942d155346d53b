"""What a printer change means beyond telling operators, one reaction each, subscribed
to ``pm_hub.printer_changes`` by the wiring in this order:

1. :func:`status_alerts`: its status changed, so the alert for the new status opens
   and the others clear;
2. :func:`station_failover`: it stopped (or started again) being able to print, so the
   station jobs waiting on it move to a healthy printer (or the failover alert clears);
3. :func:`redelivery_after_pause`: it was resumed, so its agent gets the jobs that
   waited.

The order matters: an operator sees the ``printer_offline`` alert before the
``failover`` alert that follows from it.
"""

from __future__ import annotations

from pm_hub.alerts import AlertBook
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.printer_changes import PrinterReaction
from pm_hub.stations import StationRouter


def status_alerts(alerts: AlertBook) -> PrinterReaction:
    async def on_status(old: PrinterRow | None, new: PrinterRow) -> None:
        if old is None or old["status"] != new["status"]:
            await alerts.printer_status(new)

    return on_status


def station_failover(router: StationRouter) -> PrinterReaction:
    return router.health_changed


def redelivery_after_pause(state: LiveState, dispatcher: JobDispatcher) -> PrinterReaction:
    async def on_resume(old: PrinterRow | None, new: PrinterRow) -> None:
        if old is not None and old["paused"] and not new["paused"]:
            link = state.agent_for_printer(new)
            if link is not None:
                await dispatcher.printer_attached(link, new["id"])

    return on_resume
