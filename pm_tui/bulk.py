"""Actions on several rows at once: acknowledge the marked alerts (or every open one),
cancel the marked jobs. Each asks once, asks the hub for each row (a few at a time),
and says in one toast what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from pm_core.protocol import CANCELLABLE_JOB_STATUSES, OpsEvent
from pm_tui.dashboard import Dashboard
from pm_tui.data.source import error_message
from pm_tui.data.state import Changes
from pm_tui.formatting import plural

Done = Callable[[], None]
#: Requests in flight at once (the hub limits each operator's request rate).
AT_ONCE = 8


class BulkActions:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def _each(
        self, event: str, key: str, ids: list[int]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Ask the hub once per id; the acks that went well and why the others did not."""
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(ident: int) -> dict[str, Any]:
            async with gate:
                return await self.dashboard.link.call(event, {key: ident})

        acks = await asyncio.gather(*(one(i) for i in ids))
        done = [a for a in acks if a.get("ok")]
        failed = [
            f"#{i}: {error_message(a)}" for i, a in zip(ids, acks, strict=True) if not a.get("ok")
        ]
        return done, failed

    def _report(self, done: int, what: str, failed: list[str]) -> None:
        if failed:
            self.dashboard.notify(
                f"{done} {what}; {len(failed)} refused: {'; '.join(failed[:3])}",
                severity="error",
                markup=False,
            )
        else:
            self.dashboard.notify(f"{done} {what}", markup=False)

    # -- alerts ------------------------------------------------------------------------

    async def ack_alerts(
        self, alert_ids: Iterable[int] | None = None, *, then: Done | None = None
    ) -> None:
        """Acknowledge these alerts, or (None) every open one shown, after asking;
        ``then`` runs once they are done."""
        app = self.dashboard
        state = app.state
        if alert_ids is None:
            chosen = [a["id"] for a in state.open_alerts(app.branch_filter)]
        else:
            wanted = set(alert_ids)
            chosen = [a["id"] for a in state.open_alerts() if a["id"] in wanted]
        if not chosen:
            app.notify("No open alerts to acknowledge")
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            done, failed = await self._each(OpsEvent.ALERT_ACK, "alert_id", chosen)
            changes = Changes()
            for ack in done:
                changes.alerts.update(state.put_alert(ack["alert"]).alerts)
            app.publish(changes)
            self._report(len(done), "acknowledged", failed)
            if then is not None:
                then()

        app.confirm(f"Acknowledge {plural(len(chosen), 'open alert')}?", confirmed)

    # -- printers ----------------------------------------------------------------------

    async def rename_printer(self, printer_id: int | None) -> None:
        """Ask for a new name and tell the hub (``printer:configure``, managers)."""
        app = self.dashboard
        printer = app.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            app.notify("Select a printer first", severity="warning")
            return
        old = str(printer.get("name") or "")

        async def named(name: str | None) -> None:
            if not name or name == old:
                return
            ack = await app.link.call(
                OpsEvent.PRINTER_CONFIGURE, {"printer_id": printer["id"], "name": name}
            )
            if not ack.get("ok"):
                app.notify(
                    f"{old} not renamed: {error_message(ack)}", severity="error", markup=False
                )
                return
            app.publish(app.state.put_printer({**printer, **ack["printer"]}))
            app.notify(f"{old} is now called {name}", markup=False)

        app.ask_text(f"New name for {old}:", old, named)

    # -- jobs --------------------------------------------------------------------------

    async def cancel_jobs(self, job_ids: Iterable[int], *, then: Done | None = None) -> None:
        app = self.dashboard
        jobs = [app.state.jobs[i] for i in job_ids if i in app.state.jobs]
        chosen = [j["id"] for j in jobs if j.get("status") in CANCELLABLE_JOB_STATUSES]
        if not chosen:
            app.notify("None of the marked jobs can be cancelled (printing or finished)")
            return
        skipped = len(jobs) - len(chosen)

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            done, failed = await self._each(OpsEvent.JOB_CANCEL, "job_id", chosen)
            app.publish(app.state.add_jobs([ack["job"] for ack in done]))
            self._report(len(done), "cancelled", failed)
            if then is not None:
                then()

        also = f" ({skipped} others are printing or finished: left alone)" if skipped else ""
        app.confirm(f"Cancel {plural(len(chosen), 'marked job')}?{also}", confirmed)
