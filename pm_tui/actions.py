"""What an operator can do from any screen: test print, test receipt, pause, move,
cancel, reprint, acknowledge. Each asks the hub and says what happened in a toast."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pm_core.protocol import CANCELLABLE_JOB_STATUSES, OpsEvent
from pm_core.protocol.records import JobRecord, PrinterRecord
from pm_tui.dashboard import Dashboard
from pm_tui.data.source import error_message
from pm_tui.data.state import FleetState, Wire, job_record
from pm_tui.data.waiting import waiting_jobs


def test_receipt(printer: PrinterRecord, *, who: str, when: str) -> dict[str, Any]:
    """The small ticket ``s`` sends: proves the whole path (hub, agent, spool, printer)."""
    return {
        "blocks": [
            {"type": "text", "text": "TEST RECEIPT", "bold": True, "align": "center", "width": 2},
            {"type": "text", "text": "PrinterMaster dashboard", "align": "center"},
            {"type": "line"},
            {"type": "text", "text": f"printer  {printer.get('name')}"},
            {"type": "text", "text": f"station  {printer.get('station') or '-'}"},
            {"type": "text", "text": f"address  {printer.get('address')}"},
            {"type": "text", "text": f"sent by  {who} at {when}"},
            {"type": "line"},
            {"type": "text", "text": "If you can read this, it prints.", "align": "center"},
            {"type": "cut"},
        ]
    }


def cancellable_waiting(state: FleetState, printer_id: int) -> list[JobRecord]:
    return [j for j in waiting_jobs(state, printer_id) if j["status"] in CANCELLABLE_JOB_STATUSES]


class HubActions:
    """The :class:`~pm_tui.dashboard.OperatorActions` of a dashboard, carried out by
    its hub."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def _call(self, event: str, payload: dict[str, Any], failed: str) -> dict[str, Any]:
        ack = await self.dashboard.link.call(event, payload)
        if not ack.get("ok"):
            self.dashboard.notify(f"{failed}: {error_message(ack)}", severity="error", markup=False)
        return ack

    # -- printers ----------------------------------------------------------------------

    async def test_print(self, printer_id: int | None) -> None:
        if printer_id is None:
            self.dashboard.notify("Select a printer first", severity="warning")
            return
        name = self.dashboard.state.printer_name(printer_id)
        ack = await self._call(
            OpsEvent.PRINTER_TEST, {"printer_id": printer_id}, f"Test print on {name} refused"
        )
        if ack.get("ok"):
            self.dashboard.notify(f"Test print sent to {name}…", markup=False)

    async def send_test_receipt(self, printer_id: int | None) -> None:
        printer = self.dashboard.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            self.dashboard.notify("Select a printer first", severity="warning")
            return
        clock = self.dashboard.clock
        document = test_receipt(
            printer,
            who=str(self.dashboard.state.who.get("sub") or "dashboard"),
            when=clock.hms(clock.now()),
        )
        ack = await self._call(
            OpsEvent.JOB_SUBMIT,
            {"printer_id": printer["id"], "document": document},
            f"Test receipt for {printer['name']} refused",
        )
        if ack.get("ok"):
            job = job_record(ack["job"])
            self.dashboard.publish(self.dashboard.state.add_jobs([job]))
            self.dashboard.notify(f"Test receipt queued as job #{job['id']} on {printer['name']}")

    async def toggle_pause(self, printer_id: int | None) -> None:
        printer = self.dashboard.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            self.dashboard.notify("Select a printer first", severity="warning")
            return
        paused = not printer.get("paused")

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            ack = await self._call(
                OpsEvent.PRINTER_CONFIGURE,
                {"printer_id": printer["id"], "paused": paused},
                f"Could not {'pause' if paused else 'resume'} {printer['name']}",
            )
            if ack.get("ok"):
                self.dashboard.publish(
                    self.dashboard.state.put_printer(self._merged(ack["printer"]))
                )
                verb = "paused: jobs wait (station jobs move to a backup)" if paused else "resumed"
                self.dashboard.notify(f"{printer['name']} {verb}", markup=False)

        if not paused:
            await confirmed(True)  # resuming only lets waiting tickets print: no question
            return
        waiting = int(printer.get("queue") or 0)
        self.dashboard.confirm(
            f"Pause {printer['name']}? New tickets wait"
            f"{' or go to a backup' if printer.get('station') else ''}"
            f" ({waiting} waiting now).",
            confirmed,
        )

    async def move_printer(self, printer_id: int | None) -> None:
        printer = self.dashboard.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            self.dashboard.notify("Select a printer first", severity="warning")
            return
        stations = sorted(
            {
                str(s["name"])
                for s in self.dashboard.state.stations
                if s.get("branch_id") == printer.get("branch_id")
            }
            | {
                str(p["station"])
                for p in self.dashboard.state.printers.values()
                if p.get("station") and p.get("branch_id") == printer.get("branch_id")
            }
        )

        async def chosen(station: str | None) -> None:
            if station is None:
                return
            await self.set_station(printer["id"], station.strip().lower() or None)

        self.dashboard.choose_station(printer, stations, chosen)

    async def set_station(self, printer_id: int, station: str | None) -> None:
        name = self.dashboard.state.printer_name(printer_id)
        ack = await self._call(
            OpsEvent.PRINTER_CONFIGURE,
            {"printer_id": printer_id, "station": station},
            f"Could not move {name}",
        )
        if ack.get("ok"):
            self.dashboard.publish(self.dashboard.state.put_printer(self._merged(ack["printer"])))
            where = f"station {station}" if station else "no station"
            self.dashboard.notify(f"{name} moved to {where}", markup=False)
            stations = await self.dashboard.link.call(OpsEvent.STATIONS_LIST)
            if stations.get("ok"):
                self.dashboard.state.stations = list(stations["stations"])

    def _merged(self, printer: Wire) -> dict[str, Any]:
        """The printer:configure answer on top of ours: live fields (queue, agent link)
        it may lack stay as they were (a branch hub sends them today)."""
        old: Mapping[str, Any] = self.dashboard.state.printers.get(printer["id"], {})
        return {**old, **printer}

    # -- jobs --------------------------------------------------------------------------

    async def cancel_job(self, job_id: int | None) -> None:
        job = self.dashboard.state.jobs.get(job_id) if job_id is not None else None
        if job is None:
            self.dashboard.notify("Select a job first", severity="warning")
            return
        if job.get("status") not in CANCELLABLE_JOB_STATUSES:
            why = "too late to cancel" if job.get("status") == "printing" else "nothing to cancel"
            self.dashboard.notify(f"Job #{job['id']} is {job['status']}: {why}")
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            ack = await self._call(
                OpsEvent.JOB_CANCEL, {"job_id": job["id"]}, f"Job #{job['id']} not cancelled"
            )
            if ack.get("ok"):
                self.dashboard.publish(self.dashboard.state.add_jobs([ack["job"]]))
                self.dashboard.notify(f"Job #{job['id']} cancelled")

        printer = self.dashboard.state.printer_name(job.get("printer_id"))
        self.dashboard.confirm(
            f"Cancel job #{job['id']} ({job['status']} on {printer})?", confirmed
        )

    async def reprint_job(self, job_id: int | None) -> None:
        job = self.dashboard.state.jobs.get(job_id) if job_id is not None else None
        if job is None:
            self.dashboard.notify("Select a job first", severity="warning")
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            ack = await self._call(
                OpsEvent.JOB_REPRINT, {"job_id": job["id"]}, f"Job #{job['id']} not reprinted"
            )
            if ack.get("ok"):
                new = job_record(ack["job"])
                self.dashboard.publish(self.dashboard.state.add_jobs([new]))
                where = self.dashboard.state.printer_name(new.get("printer_id"))
                self.dashboard.notify(
                    f"Reprint of #{job['id']} queued as job #{new['id']} on {where}"
                )

        target = job.get("station") or self.dashboard.state.printer_name(job.get("printer_id"))
        self.dashboard.confirm(f"Print job #{job['id']} again on {target}?", confirmed)

    async def cancel_waiting(self, printer_id: int) -> None:
        """Cancel every ticket waiting on a printer (after asking)."""
        state = self.dashboard.state
        jobs = cancellable_waiting(state, printer_id)
        name = state.printer_name(printer_id)
        if not jobs:
            self.dashboard.notify(f"No tickets wait on {name}", markup=False)
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            done = 0
            for job in jobs:
                ack = await self._call(
                    OpsEvent.JOB_CANCEL, {"job_id": job["id"]}, f"Job #{job['id']} not cancelled"
                )
                if ack.get("ok"):
                    done += 1
                    self.dashboard.publish(state.add_jobs([ack["job"]]))
            self.dashboard.notify(
                f"{done} of {len(jobs)} tickets on {name} cancelled", markup=False
            )

        self.dashboard.confirm(f"Cancel the {len(jobs)} tickets waiting on {name}?", confirmed)

    async def move_waiting(self, printer_id: int, to_printer_id: int | None) -> None:
        """Move every ticket waiting on a printer to another (a backup of its station):
        each is cancelled here first, then printed again there, so a ticket that starts
        printing meanwhile is not printed twice."""
        state = self.dashboard.state
        name = state.printer_name(printer_id)
        if to_printer_id is None:
            self.dashboard.notify(
                f"No other working printer at {name}'s station to move to",
                severity="warning",
                markup=False,
            )
            return
        jobs = cancellable_waiting(state, printer_id)
        target = state.printer_name(to_printer_id)
        if not jobs:
            self.dashboard.notify(f"No tickets wait on {name}", markup=False)
            return

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            moved = 0
            for job in jobs:
                ack = await self._call(
                    OpsEvent.JOB_CANCEL, {"job_id": job["id"]}, f"Job #{job['id']} not moved"
                )
                if not ack.get("ok"):
                    continue
                self.dashboard.publish(state.add_jobs([ack["job"]]))
                again = await self._call(
                    OpsEvent.JOB_REPRINT,
                    {"job_id": job["id"], "printer_id": to_printer_id},
                    f"Job #{job['id']} was cancelled but not printed on {target}: reprint it",
                )
                if again.get("ok"):
                    moved += 1
                    self.dashboard.publish(state.add_jobs([again["job"]]))
            self.dashboard.notify(
                f"{moved} of {len(jobs)} tickets moved from {name} to {target}", markup=False
            )

        self.dashboard.confirm(
            f"Move the {len(jobs)} tickets waiting on {name} to {target}?", confirmed
        )

    # -- alerts ------------------------------------------------------------------------

    async def ack_alert(self, alert_id: int | None) -> None:
        alert = self.dashboard.state.alerts.get(alert_id) if alert_id is not None else None
        if alert is None:
            self.dashboard.notify("Select an alert first", severity="warning")
            return
        if alert.get("state") != "open":
            self.dashboard.notify(f"Alert #{alert['id']} is already {alert.get('state')}")
            return
        ack = await self._call(
            OpsEvent.ALERT_ACK, {"alert_id": alert["id"]}, f"Alert #{alert['id']} not acknowledged"
        )
        if ack.get("ok"):
            self.dashboard.publish(self.dashboard.state.put_alert(ack["alert"]))
            self.dashboard.notify(f"Acknowledged: {alert.get('message')}", markup=False)
