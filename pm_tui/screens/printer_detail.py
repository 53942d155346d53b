"""One printer: status and flags over time, the tickets waiting on it (each with why)
above its recent jobs, its agent's latency, and the actions (test print, test receipt,
pause/resume, move to a station, cancel or move every waiting ticket)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from pm_core.protocol import OpsEvent
from pm_core.protocol.records import PrinterRecord
from pm_tui.bulk import BulkActions
from pm_tui.data.source import error_message
from pm_tui.data.state import Changes
from pm_tui.data.waiting import WAITING_STATUSES, printer_problem, waiting_jobs
from pm_tui.formatting import ago, duration, flags_text, status_text
from pm_tui.printer_admin import PrinterAdmin
from pm_tui.screens.base import FleetScreen
from pm_tui.views.jobs import job_cells
from pm_tui.views.printers import backup_for, printer_summary
from pm_tui.widgets.charts import LatencyLine
from pm_tui.widgets.footer import DashboardFooter
from pm_tui.widgets.header import HubHeader
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import ColumnSpec, LiveTable
from pm_tui.widgets.uptime import ActivityPlot, UptimeLine

RECENT_JOBS = 20
#: Availability, heartbeat and activity are asked for again this often (seconds).
REFRESH_FIGURES_S = 60
HISTORY_TITLE = "Status history (a: activity)"
ACTIVITY_TITLE = "Last hour (a: status history)"
JOB_COLUMNS = (
    ColumnSpec("id", "JOB", 6),
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("created", "CREATED", 8, priority=1),
    ColumnSpec("info", "INFO", 10, priority=2, grow=True),
)
HISTORY_COLUMNS = (
    ColumnSpec("at", "AT", 8),
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("flags", "FLAGS", 5, priority=1, grow=True),
)


class PrinterDetailScreen(FleetScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back"),
        Binding("t", "test_print", "test"),
        Binding("s", "test_receipt", "receipt"),
        Binding("p", "pause", "pause/resume"),
        Binding("m", "move", "move"),
        Binding("c", "cancel_waiting", "cancel waiting"),
        Binding("b", "move_waiting", "waiting to backup"),
        Binding("l", "logs", "logs", show=False),
        Binding("n", "new_ticket", "ticket", show=False),
        Binding("e", "rename", "rename", show=False),
        Binding("D,delete", "remove_printer", "remove", show=False),
        Binding("a", "activity", "activity/history", show=False),
        Binding("ctrl+r", "reload", "reload", show=False),
    ]

    def __init__(self, printer_id: int) -> None:
        super().__init__()
        self.printer_id = printer_id
        #: ``printer:get`` history entries (``at``, ``status``, ``flags``), newest first.
        self.history: list[dict[str, Any]] = []
        #: ``printer:get``'s ``activity`` (tickets and print time per minute), if any.
        self.activity: dict[str, Any] | None = None
        self._ticks = 0

    def compose(self) -> ComposeResult:
        yield HubHeader()
        yield Static(id="pd-title", classes="title")
        yield Static(id="pd-info", classes="info")
        yield LatencyLine(id="pd-latency")
        yield UptimeLine(id="pd-uptime")
        with Horizontal(id="pd-body", classes="body"):
            with Vertical(classes="pane history-pane"):
                yield Static(HISTORY_TITLE, id="pd-left-title", classes="pane-title")
                yield LiveTable(id="pd-history", auto_specs=HISTORY_COLUMNS)
                yield ActivityPlot(id="pd-activity")
            with Vertical(classes="pane jobs-pane"):
                yield Static(id="pd-jobs-title", classes="pane-title")
                yield LiveTable(id="pd-jobs", auto_specs=JOB_COLUMNS)
        yield DashboardFooter()

    def on_mount(self) -> None:
        super().on_mount()
        jobs = self.query_one("#pd-jobs", LiveTable)
        state = self.dashboard.state

        def waiting_then_newest(job_id: int) -> tuple[int, int]:
            job = state.jobs.get(job_id)
            waits = job is not None and job.get("status") in WAITING_STATUSES
            return (0 if waits else 1, -job_id)

        jobs.order_by(waiting_then_newest)
        self.show()
        self._show_jobs()
        self.load()
        jobs.focus()
        self.query_one("#pd-activity").display = False

    @property
    def printer(self) -> PrinterRecord | None:
        return self.dashboard.state.printers.get(self.printer_id)

    @work(exclusive=True, group="printer-detail")
    async def load(self) -> None:
        app = self.dashboard
        get, jobs = await asyncio.gather(
            app.link.call(OpsEvent.PRINTER_GET, {"printer_id": self.printer_id}),
            app.link.call(
                OpsEvent.JOBS_LIST, {"printer_id": self.printer_id, "limit": RECENT_JOBS}
            ),
        )
        if not get.get("ok"):
            app.notify(f"Printer: {error_message(get)}", severity="error", markup=False)
        else:
            self.history = list(get.get("history") or [])
            self._show_history()
            self.query_one("#pd-uptime", UptimeLine).show_uptime(get.get("uptime"))
            activity = get.get("activity")
            self.activity = activity if isinstance(activity, dict) else None
            self._show_activity()
        if jobs.get("ok"):
            app.publish(app.state.add_jobs(jobs["jobs"]))
            self._show_jobs()

    def show(self) -> None:
        app = self.dashboard
        p = self.printer
        title = self.query_one("#pd-title", Static)
        if p is None:
            show(title, f"Printer #{self.printer_id} is gone (esc to go back)")
            return
        show(title, printer_summary(p, app.state, app.clock))
        info = [
            f"{p.get('kind') or '?'} · model {p.get('model') or 'unknown'}",
            f"paused {'yes' if p.get('paused') else 'no'}",
            f"station priority {p.get('station_priority') or 0}",
        ]
        if app.state.multi_branch:
            info.append(f"branch {app.state.branch_name(p.get('branch_id'))}")
        if p.get("default_expiry_s"):
            info.append(f"jobs expire after {duration(p['default_expiry_s'])}")
        info.append(f"seen {ago(p.get('last_seen'), app.clock.now())} ago")
        show(self.query_one("#pd-info", Static), " · ".join(info))
        self.query_one("#pd-latency", LatencyLine).show(
            app.state.health.get(p.get("agent_id") or -1),
            unsupported=app.state.health_supported is False,
        )

    def _show_history(self) -> None:
        table = self.query_one("#pd-history", LiveTable)
        clock = self.dashboard.clock
        count = len(self.history)
        table.replace_rows(
            (
                count - index,
                {
                    "at": clock.hms(entry.get("at")),
                    "status": status_text(str(entry.get("status"))),
                    "flags": flags_text(entry.get("flags")) or "-",
                },
            )
            for index, entry in enumerate(self.history)
        )

    @on(LiveTable.Refit, "#pd-history")
    def _history_refit(self, event: LiveTable.Refit) -> None:
        self._show_history()

    @on(LiveTable.Refit, "#pd-jobs")
    def _jobs_refit(self, event: LiveTable.Refit) -> None:
        self._show_jobs()

    def _show_jobs(self) -> None:
        app = self.dashboard
        table = self.query_one("#pd-jobs", LiveTable)
        waiting = waiting_jobs(app.state, self.printer_id)
        recent = app.state.jobs_for_printer(self.printer_id, RECENT_JOBS)
        jobs = waiting + [j for j in recent if j not in waiting]
        table.replace_rows((j["id"], job_cells(j, app.state, app.clock, named=False)) for j in jobs)
        table.sort_now()
        self._jobs_title()

    def _jobs_title(self) -> None:
        app = self.dashboard
        count = len(waiting_jobs(app.state, self.printer_id))
        p = self.printer
        problem = printer_problem(p, app.state, app.clock) if p is not None else None
        if count:
            why = f": {problem}" if problem else ""
            title = f"{count} waiting{why} · c cancel all · b to backup"
        else:
            title = "Nothing waiting · recent jobs (enter: details)"
        show(self.query_one("#pd-jobs-title", Static), title)

    def fleet_changed(self, changes: Changes) -> None:
        app = self.dashboard
        if changes.reloaded:
            self.show()
            self._show_jobs()
            return
        if self.printer_id in changes.printers:
            old, new = changes.printers[self.printer_id]
            self.show()
            if old is None or (old.get("status"), old.get("flags")) != (
                new.get("status"),
                new.get("flags"),
            ):
                self.history.insert(
                    0,
                    {
                        "at": new.get("status_changed_at") or app.clock.now(),
                        "status": new.get("status"),
                        "flags": new.get("flags"),
                    },
                )
                self._show_history()
                self.query_one("#pd-uptime", UptimeLine).status_now(new.get("status"))
        elif changes.health or changes.agents:
            self.show()
        table = self.query_one("#pd-jobs", LiveTable)
        resort = False
        for job_id, (old_job, job) in changes.jobs.items():
            if job.get("printer_id") == self.printer_id:
                was = old_job.get("status") if old_job is not None else None
                resort |= not table.has_row(job_id) or was != job.get("status")
                table.put_row(job_id, job_cells(job, app.state, app.clock, named=False))
            elif table.has_row(job_id):  # moved to another printer
                table.drop_row(job_id)
        if self.printer_id in changes.printers:
            self._jobs_title()
            for job_id in table.row_ids:  # the printer's state is why they wait
                row_job = app.state.jobs.get(job_id)
                if row_job is not None:
                    table.put_row(job_id, job_cells(row_job, app.state, app.clock, named=False))
        if resort:
            table.sort_now()
        if changes.jobs:
            self._jobs_title()

    def clock_tick(self) -> None:
        if self.printer is not None:
            self.show()
        self._ticks += 1
        if self._ticks % REFRESH_FIGURES_S == 0:
            self.load()  # availability, heartbeat and activity move with time

    def _show_activity(self) -> None:
        plot = self.query_one("#pd-activity", ActivityPlot)
        if plot.display:
            plot.show_activity(self.activity, title="tickets/min · print s")

    def action_activity(self) -> None:
        """Swap the status history for the activity chart (and back)."""
        plot = self.query_one("#pd-activity", ActivityPlot)
        history = self.query_one("#pd-history", LiveTable)
        plot.display = not plot.display
        history.display = not plot.display
        title = ACTIVITY_TITLE if plot.display else HISTORY_TITLE
        show(self.query_one("#pd-left-title", Static), title)
        self._show_activity()

    @on(LiveTable.Selected, "#pd-jobs")
    def _job_selected(self, event: LiveTable.Selected) -> None:
        job_id = self.query_one("#pd-jobs", LiveTable).selected_id
        if job_id is not None:
            self.dashboard.open_job(job_id)

    async def action_test_print(self) -> None:
        await self.dashboard.actions.test_print(self.printer_id)

    async def action_test_receipt(self) -> None:
        await self.dashboard.actions.send_test_receipt(self.printer_id)

    async def action_pause(self) -> None:
        await self.dashboard.actions.toggle_pause(self.printer_id)

    async def action_move(self) -> None:
        await self.dashboard.actions.move_printer(self.printer_id)

    async def action_cancel_waiting(self) -> None:
        await self.dashboard.actions.cancel_waiting(self.printer_id)

    async def action_move_waiting(self) -> None:
        p = self.printer
        backup = backup_for(p, self.dashboard.state) if p is not None else None
        await self.dashboard.actions.move_waiting(
            self.printer_id, backup["id"] if backup is not None else None
        )

    def action_reload(self) -> None:
        self.load()

    async def action_logs(self) -> None:
        await self.dashboard.show_logs(printer_id=self.printer_id)

    def action_new_ticket(self) -> None:
        self.dashboard.new_ticket(self.printer_id)

    async def action_rename(self) -> None:
        await BulkActions(self.dashboard).rename_printer(self.printer_id)

    async def action_remove_printer(self) -> None:
        def gone() -> None:
            if self.app.screen is self:
                self.action_back()

        await PrinterAdmin(self.dashboard).remove(self.printer_id, then=gone)
