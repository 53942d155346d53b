"""Jobs: the queue and the history, newest first, live; filter with ``/`` (``status:``
``printer:`` ``station:`` ``since:`` ``until:`` and words), ``s`` cycles the status."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from pm_core.protocol import ACTIVE_JOB_STATUSES, OpsEvent
from pm_core.protocol.records import JobRecord
from pm_tui.bulk import BulkActions
from pm_tui.data.clock import Clock
from pm_tui.data.filters import JOB_STATUS_PRESETS, JobQuery, QueryError
from pm_tui.data.source import error_message
from pm_tui.data.state import Changes, FleetState
from pm_tui.formatting import duration, job_status_text
from pm_tui.views.base import TablePanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

JOB_COLUMNS = (
    ColumnSpec("id", "JOB", 6),
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("branch", "BRANCH", 10, priority=4),
    ColumnSpec("printer", "PRINTER", 12),
    ColumnSpec("station", "STATION", 8, priority=2),
    ColumnSpec("created", "CREATED", 8, priority=1),
    ColumnSpec("tries", "TRIES", 5, priority=3),
    ColumnSpec("info", "INFO", 14, priority=1, grow=True),
    ColumnSpec("by", "BY", 10, priority=5),
    ColumnSpec("finished", "FINISHED", 8, priority=6),
)
#: Rows kept in the jobs table (the newest).
MAX_ROWS = 500


def job_info(job: JobRecord, state: FleetState, clock: Clock) -> str:
    """The one thing worth knowing about a job, in a few words."""
    error = job.get("error")
    status = job.get("status")
    parts: list[str] = []
    if isinstance(error, dict) and (error.get("message") or error.get("code")):
        parts.append(str(error.get("message") or error.get("code")))
    if job.get("failover_from"):
        parts.append(f"backup from {state.printer_name(job['failover_from'])}")
    if job.get("reprint_of"):
        parts.append(f"reprint of #{job['reprint_of']}")
    if not parts:
        expires_at = job.get("expires_at")
        finished_at, created_at = job.get("finished_at"), job.get("created_at")
        if status in ACTIVE_JOB_STATUSES and expires_at:
            left = float(expires_at) - clock.now()
            parts.append(f"expires in {duration(left)}" if left > 0 else "expiring")
        elif status == "completed" and finished_at and created_at:
            parts.append(f"took {float(finished_at) - float(created_at):.1f}s")
        elif status == "expired":
            parts.append("not printed in time")
    return " · ".join(parts)


def job_cells(job: JobRecord, state: FleetState, clock: Clock) -> dict[str, Cell]:
    return {
        "id": f"#{job['id']}",
        "status": job_status_text(str(job.get("status"))),
        "branch": state.branch_name(job.get("branch_id")),
        "printer": state.printer_name(job.get("printer_id")),
        "station": str(job.get("station") or "-"),
        "created": clock.short(job.get("created_at")),
        "tries": str(job.get("attempts") or 0),
        "info": job_info(job, state, clock),
        "by": str(job.get("submitted_by") or "-"),
        "finished": clock.hms(job.get("finished_at")) if job.get("finished_at") else "-",
    }


class JobsView(TablePanel):
    TABLE_ID = "jobs"
    COLUMNS = JOB_COLUMNS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter"),
        Binding("s", "cycle_status", "status"),
        Binding("c", "cancel", "cancel"),
        Binding("r", "reprint", "reprint"),
        Binding("l", "logs", "logs", show=False),
        Binding("n", "new_ticket", "ticket", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_spec = JobQuery()
        self.preset = 0

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="status:failed printer:Kitchen-1 station:bar since:1h until:10:30 words",
            id="jobs-filter",
            classes="filter",
        )
        yield Static(id="jobs-filterline", classes="filterline")
        yield LiveTable(id="jobs")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.order_by(lambda job_id: job_id, reverse=True)
        self.table.markable = True

    def _visible(self, job: JobRecord) -> bool:
        app = self.dashboard
        return app.state.in_branch(job, app.branch_filter) and self.query_spec.matches(
            job, app.state
        )

    def rebuild(self) -> None:
        app = self.dashboard
        self.table.set_columns(self._columns())
        jobs = sorted(
            (j for j in app.state.jobs.values() if self._visible(j)),
            key=lambda j: j["id"],
            reverse=True,
        )[:MAX_ROWS]
        self.table.replace_rows((j["id"], job_cells(j, app.state, app.clock)) for j in jobs)
        self._describe(len(jobs))

    def _describe(self, count: int | None = None) -> None:
        shown = self.table.row_count if count is None else count
        line = f"{self.query_spec.describe()} · {shown} shown · s status · / filter"
        if self.table.marked:
            line += f" · {len(self.table.marked)} marked (c cancels them)"
        show(self.query_one("#jobs-filterline", Static), line)

    def fleet_changed(self, changes: Changes) -> None:
        if changes.reloaded:
            self.rebuild()
            return
        app = self.dashboard
        table = self.table
        added = False
        for job_id, (_old, job) in changes.jobs.items():
            if self._visible(job):
                added |= not table.has_row(job_id)
                table.put_row(job_id, job_cells(job, app.state, app.clock))
            else:
                table.drop_row(job_id)
        if changes.printers:
            renamed = {
                pid for pid, (old, new) in changes.printers.items()
                if old is None or old.get("name") != new.get("name")
            }  # fmt: skip
            for row_id in table.row_ids if renamed else ():
                row_job = app.state.jobs.get(row_id)
                if row_job is not None and row_job.get("printer_id") in renamed:
                    table.put_row(row_id, job_cells(row_job, app.state, app.clock))
        if added:
            table.want_sort()
            ids = table.row_ids
            for job_id in sorted(ids)[: max(0, len(ids) - MAX_ROWS)]:
                table.drop_row(job_id)
            self.mark_chrome()

    def update_chrome(self) -> None:
        self._describe()

    def clock_tick(self) -> None:
        app = self.dashboard
        for job_id in self.table.row_ids:
            job = app.state.jobs.get(job_id)
            if job is not None and job.get("status") in ACTIVE_JOB_STATUSES:
                self.table.put_row(job_id, {"info": job_info(job, app.state, app.clock)})

    # -- filters -----------------------------------------------------------------------

    def action_filter(self) -> None:
        field = self.query_one("#jobs-filter", Input)
        field.value = self.query_spec.text
        field.add_class("visible")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#jobs-filter", Input)
        field.remove_class("visible")
        if self.query_spec.text:
            field.value = ""
            self.preset = 0
            self.apply_query(JobQuery())
        self.table.focus()

    @on(Input.Submitted, "#jobs-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        app = self.dashboard
        try:
            query = JobQuery.parse(event.value, now=app.clock.now(), struct=app.clock.struct)
            query.payload(app.state)
        except QueryError as exc:
            app.notify(f"Filter not understood: {exc}", severity="error", markup=False)
            return
        event.input.remove_class("visible")
        self.apply_query(query)
        self.table.focus()

    def action_cycle_status(self) -> None:
        self.preset = (self.preset + 1) % len(JOB_STATUS_PRESETS)
        name, statuses = JOB_STATUS_PRESETS[self.preset]
        app = self.dashboard
        text = self.query_spec.with_status(name if statuses else None)
        self.apply_query(JobQuery.parse(text, now=app.clock.now(), struct=app.clock.struct))

    def apply_query(self, query: JobQuery) -> None:
        self.query_spec = query
        self.rebuild()
        self.fetch(query)

    @work(exclusive=True, group="jobs-fetch")
    async def fetch(self, query: JobQuery) -> None:
        """Ask the hub for the jobs the filter wants (older ones the dashboard never saw)."""
        app = self.dashboard
        try:
            payload = query.payload(app.state, limit=MAX_ROWS)
        except QueryError:
            return
        ack = await app.link.call(OpsEvent.JOBS_LIST, payload)
        if not ack.get("ok"):
            app.notify(f"Could not list jobs: {error_message(ack)}", severity="error", markup=False)
            return
        app.publish(app.state.add_jobs(ack["jobs"]))
        self._describe()

    # -- actions -------------------------------------------------------------------------

    @on(LiveTable.Selected, "#jobs")
    def _selected(self, event: LiveTable.Selected) -> None:
        job_id = self.table.selected_id
        if job_id is not None:
            self.dashboard.open_job(job_id)

    async def action_cancel(self) -> None:
        """The marked jobs (space marks), else the one under the cursor."""
        marked = self.table.marked_ids
        if marked:
            await BulkActions(self.dashboard).cancel_jobs(marked, then=self.table.clear_marks)
            return
        await self.dashboard.actions.cancel_job(self.table.selected_id)

    @on(LiveTable.Marked, "#jobs")
    def _marked(self, event: LiveTable.Marked) -> None:
        self._describe()

    async def action_reprint(self) -> None:
        await self.dashboard.actions.reprint_job(self.table.selected_id)

    async def action_logs(self) -> None:
        """The hub's log lines about the selected job (its correlation id joins them)."""
        job_id = self.table.selected_id
        if job_id is None:
            self.dashboard.notify("Select a job first", severity="warning")
            return
        await self.dashboard.show_logs(job_id=job_id)

    def action_new_ticket(self) -> None:
        self.dashboard.new_ticket()
