"""Jobs: the queue and the history, live: stuck tickets first (each says why it waits),
then the newest; filter with ``/`` as you type (``status:`` ``printer:`` ``station:``
``since:`` ``until:`` and words), ``s`` cycles the status."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input, Static

from pm_core.protocol import ACTIVE_JOB_STATUSES, OpsEvent
from pm_core.protocol.records import JobRecord
from pm_tui.bulk import BulkActions
from pm_tui.data.clock import Clock
from pm_tui.data.filters import JOB_STATUS_PRESETS, JobQuery, QueryError
from pm_tui.data.source import error_message
from pm_tui.data.state import Changes, FleetState
from pm_tui.data.waiting import is_stuck, waiting_reason
from pm_tui.formatting import duration, job_status_text
from pm_tui.views.base import TablePanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

JOB_COLUMNS = (
    ColumnSpec("id", "JOB", 6),
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("branch", "BRANCH", 10, priority=4),
    ColumnSpec("printer", "PRINTER", 10, priority=1),
    ColumnSpec("station", "STATION", 8, priority=3),
    ColumnSpec("created", "CREATED", 8, priority=2),
    ColumnSpec("tries", "TRIES", 5, priority=4),
    # Room for why a ticket waits (``waiting: Bar paper out since 20:06``, which names
    # the printer): at 80 columns the tries and station give way to it, at 60 the
    # created time and the printer.
    ColumnSpec("info", "INFO", 26, priority=1, grow=True),
    ColumnSpec("by", "BY", 10, priority=5),
    ColumnSpec("finished", "FINISHED", 8, priority=6),
)
#: Rows kept in the jobs table (the newest).
MAX_ROWS = 500
#: A filter typed is asked of the hub once typing pauses this long (seconds); the
#: jobs the dashboard has are filtered at once.
FETCH_DELAY = 0.3


def job_info(job: JobRecord, state: FleetState, clock: Clock, *, named: bool = True) -> str:
    """The one thing worth knowing about a job, in a few words (``named``: why it waits
    names its printer; not where a printer column is beside it)."""
    error = job.get("error")
    status = job.get("status")
    parts: list[str] = []
    waiting = waiting_reason(job, state, clock, named=named)
    if waiting:
        parts.append(waiting)
    if isinstance(error, dict) and (error.get("message") or error.get("code")):
        parts.append(str(error.get("message") or error.get("code")))
    if job.get("failover_from"):
        parts.append(f"backup from {state.printer_name(job['failover_from'])}")
    if job.get("reprint_of"):
        parts.append(f"reprint of #{job['reprint_of']}")
    if not parts or waiting:
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


def job_cells(
    job: JobRecord, state: FleetState, clock: Clock, *, named: bool = True
) -> dict[str, Cell]:
    return {
        "id": f"#{job['id']}",
        "status": job_status_text(str(job.get("status"))),
        "branch": state.branch_name(job.get("branch_id")),
        "printer": state.printer_name(job.get("printer_id")),
        "station": str(job.get("station") or "-"),
        "created": clock.short(job.get("created_at")),
        "tries": str(job.get("attempts") or 0),
        "info": job_info(job, state, clock, named=named),
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
        self._fetch_timer: Timer | None = None

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
        state = self.dashboard.state

        def stuck_then_newest(job_id: int) -> tuple[int, int]:
            job = state.jobs.get(job_id)
            return (0 if job is not None and is_stuck(job, state) else 1, -job_id)

        self.table.order_by(stuck_then_newest)
        self.table.markable = True

    @property
    def named(self) -> bool:
        """Why a ticket waits names its printer unless the printer column shows."""
        return "printer" not in self.table.column_keys

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
        self.table.replace_rows(
            (j["id"], job_cells(j, app.state, app.clock, named=self.named)) for j in jobs
        )
        self.table.sort_now()
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
        reprint: int | None = None
        selected = table.selected_id
        for job_id, (old, job) in changes.jobs.items():
            if self._visible(job):
                added |= not table.has_row(job_id)
                table.put_row(job_id, job_cells(job, app.state, app.clock, named=self.named))
                if old is None and selected is not None and job.get("reprint_of") == selected:
                    reprint = job_id
                if old is None or old.get("status") != job.get("status"):
                    table.want_sort()
            else:
                table.drop_row(job_id)
        if changes.printers:
            # A printer's status, pause or agent link says why its tickets wait.
            for row_id in table.row_ids:
                row_job = app.state.jobs.get(row_id)
                if row_job is not None and row_job.get("printer_id") in changes.printers:
                    table.put_row(
                        row_id, job_cells(row_job, app.state, app.clock, named=self.named)
                    )
            table.want_sort()
        if added:
            ids = table.row_ids
            for job_id in sorted(ids)[: max(0, len(ids) - MAX_ROWS)]:
                table.drop_row(job_id)
            table.want_sort()
            self.mark_chrome()
        if reprint is not None:
            # The new ticket is what the operator looks for next: show it.
            table.sort_now()
            table.select(reprint)

    def update_chrome(self) -> None:
        self._describe()

    def clock_tick(self) -> None:
        app = self.dashboard
        for job_id in self.table.row_ids:
            job = app.state.jobs.get(job_id)
            if job is not None and job.get("status") in ACTIVE_JOB_STATUSES:
                self.table.put_row(
                    job_id, {"info": job_info(job, app.state, app.clock, named=self.named)}
                )

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

    def _parse(self, text: str) -> JobQuery:
        app = self.dashboard
        query = JobQuery.parse(text, now=app.clock.now(), struct=app.clock.struct)
        query.payload(app.state)
        return query

    @on(Input.Changed, "#jobs-filter")
    def _typed(self, event: Input.Changed) -> None:
        """Filter as you type: the rows the dashboard has at once, the hub's answer
        when typing pauses. A filter not understood yet (half typed) says why below."""
        if event.value == self.query_spec.text:
            return
        try:
            query = self._parse(event.value)
        except QueryError as exc:
            show(self.query_one("#jobs-filterline", Static), f"… {exc}")
            return
        self.query_spec = query
        self.rebuild()
        if self._fetch_timer is not None:
            self._fetch_timer.stop()
        self._fetch_timer = self.set_timer(FETCH_DELAY, lambda: self.fetch(query))

    @on(Input.Submitted, "#jobs-filter")
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            query = self._parse(event.value)
        except QueryError as exc:
            self.dashboard.notify(f"Filter not understood: {exc}", severity="error", markup=False)
            return
        event.input.remove_class("visible")
        if self._fetch_timer is not None:
            self._fetch_timer.stop()
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
