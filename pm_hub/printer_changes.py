"""The one way a printer's new state enters the hub: it becomes the live row, operators
are told, then the reactions subscribed to printer changes run, in the order they were
subscribed (``pm_hub.wiring`` subscribes the status alerts, station failover and
redelivery after a pause; ``pm_hub.printer_reactions`` says what each does).

Keeping the reactions out of the fan-out means the broadcaster only sends, and what a
change means for the kitchen is in one readable list.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pm_core.database import Database
from pm_hub.broadcast import Broadcaster
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.store import printers as printer_store

log = logging.getLogger(__name__)

#: ``reaction(old, new)``: ``old`` is None for a printer the hub did not hold yet.
PrinterReaction = Callable[[PrinterRow | None, PrinterRow], Awaitable[None]]


class PrinterChanges:
    def __init__(self, state: LiveState, broadcaster: Broadcaster) -> None:
        self.state = state
        self.broadcaster = broadcaster
        self.reactions: list[PrinterReaction] = []

    def subscribe(self, reaction: PrinterReaction) -> None:
        """Run ``reaction`` after every change, after those subscribed before it."""
        self.reactions.append(reaction)

    async def changed(self, row: PrinterRow, *, status_only: bool = False) -> None:
        """Record a printer's new state, tell operators, then react.
        ``status_only``: only its status, flags and times changed (a status report)."""
        old = self.state.printers.get(row["id"])
        self.state.printers[row["id"]] = row
        await self.broadcaster.printer_update(row, status_only=status_only)
        for reaction in self.reactions:
            await reaction(old, row)

    def seen(self, row: PrinterRow) -> None:
        """A status report that changed nothing: the row's times only, no reactions."""
        self.state.printers[row["id"]] = row
        self.broadcaster.printer_seen(row)

    async def status_reported(
        self,
        db: Database,
        row: PrinterRow,
        status: str,
        flags_json: str,
        now: float,
        *,
        seen: bool = True,
    ) -> tuple[PrinterRow, bool]:
        """A printer's status report (from its agent, or a printer that polls): when
        nothing changed, only its times; else the new row, written to its history
        (with the next batch of writes) and told like any change. ``seen`` False: the
        report is the hub's own conclusion (a printer gone silent), not a sign of
        life. Returns the row and whether its status or flags changed."""
        if row["status"] == status and row["flags"] == flags_json:
            updated = {**row, "last_seen": now} if seen else row
            self.seen(updated)  # last_seen reaches the file in the broadcaster's batch
            return updated, False
        updated = {**row, "status": status, "flags": flags_json}
        updated.update(status_changed_at=now, updated_at=now)
        if seen:
            updated["last_seen"] = now
        db.append_soon(
            "printer status",
            printer_store.record_status_changes,
            (row["id"], status, flags_json, now),
        )
        await self.changed(updated, status_only=True)
        return updated, True
