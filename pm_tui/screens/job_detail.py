"""One job: what it is, its event trail, and a text preview of the ticket: what the
printer was sent (read back from the bytes, when the agent or the CloudPRNT server
reported it) or else the job's document; ``v`` switches between the two."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from pm_core.protocol import OpsEvent
from pm_core.protocol.records import JobRecord
from pm_tui.data.documents import PAPER_WIDTH, PreviewLine, document_lines, sent_lines
from pm_tui.data.source import error_message
from pm_tui.data.state import Changes, job_record
from pm_tui.data.waiting import waiting_reason
from pm_tui.formatting import job_status_text, plural
from pm_tui.screens.base import FleetScreen
from pm_tui.widgets.footer import DashboardFooter
from pm_tui.widgets.header import HubHeader
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import ColumnSpec, LiveTable

TRAIL_COLUMNS = (
    ColumnSpec("at", "AT", 8),
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("why", "BY · WHY", 8, priority=1, grow=True),
)


def preview_text(job: JobRecord, printer_name: str | None = None) -> Text:
    header = f"BACKUP FROM {printer_name}" if job.get("failover_from") and printer_name else None
    return paper_text(document_lines(job.get("document"), width=PAPER_WIDTH, header=header))


#: The widest paper shown: what a printer was sent may be wider than the document's
#: preview (48 columns on 80 mm paper), and is shown as it is, not wrapped.
MAX_PAPER_WIDTH = 64


def paper_width(lines: list[PreviewLine]) -> int:
    """As wide as the widest line: at least the document's preview width, at most
    :data:`MAX_PAPER_WIDTH`."""
    return min(MAX_PAPER_WIDTH, max([PAPER_WIDTH, *(len(line.text) for line in lines)]))


def paper_text(lines: list[PreviewLine]) -> Text:
    """Preview lines on the paper, as wide as :func:`paper_width`."""
    width = paper_width(lines)
    text = Text()
    for index, line in enumerate(lines):
        style = " ".join(
            s
            for s, on in (("bold", line.bold), ("underline", line.underline), ("dim", line.dim))
            if on
        )
        text.append(line.text[:width].ljust(width), style=style or None)
        if index < len(lines) - 1:
            text.append("\n")
    return text


class JobDetailScreen(FleetScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back"),
        Binding("c", "cancel", "cancel"),
        Binding("r", "reprint", "reprint"),
        Binding("v", "toggle_view", "sent/document"),
        Binding("l", "logs", "logs", show=False),
        Binding("ctrl+r", "reload", "reload", show=False),
    ]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        #: The ``job:get`` answer: the job with its document and event trail.
        self.detail: JobRecord | None = None
        #: Show what the printer was sent (when known) rather than the document.
        self.show_sent = True

    def compose(self) -> ComposeResult:
        yield HubHeader()
        yield Static(id="jd-title", classes="title")
        yield Static(id="jd-info", classes="info")
        with Horizontal(id="jd-body", classes="body"):
            with Vertical(classes="pane"):
                yield Static("Event trail", classes="pane-title")
                yield LiveTable(id="jd-trail", auto_specs=TRAIL_COLUMNS)
            with Vertical(classes="pane paper-pane"):
                yield Static("What it prints", classes="pane-title", id="jd-preview-title")
                with VerticalScroll(id="jd-preview-scroll"):
                    yield Static(id="jd-preview", classes="paper")
        yield DashboardFooter()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    def on_mount(self) -> None:
        super().on_mount()
        trail = self.query_one("#jd-trail", LiveTable)
        self.show()
        self.load()
        trail.focus()

    @property
    def job(self) -> JobRecord | None:
        return self.detail or self.dashboard.state.jobs.get(self.job_id)

    @work(exclusive=True, group="job-detail")
    async def load(self) -> None:
        app = self.dashboard
        ack = await app.link.call(OpsEvent.JOB_GET, {"job_id": self.job_id, "document": True})
        if not ack.get("ok"):
            app.notify(f"Job #{self.job_id}: {error_message(ack)}", severity="error", markup=False)
            return
        self.detail = job_record(ack["job"])
        self.show()

    def show(self) -> None:
        app = self.dashboard
        job = self.job
        title = self.query_one("#jd-title", Static)
        if job is None:
            show(title, f"Job #{self.job_id}: loading…")
            return
        state, clock = app.state, app.clock
        printer = state.printer_name(job.get("printer_id"))
        where = f"{printer} ({job['station']})" if job.get("station") else printer
        show(
            title,
            Text.assemble(
                (f"Job #{job['id']}", "bold"),
                "  ",
                job_status_text(str(job.get("status"))),
                f"  {where} · {plural(int(job.get('copies') or 1), 'copy')}",
                f" · by {job.get('submitted_by') or '-'}",
            ),
        )
        info = [f"created {clock.short(job.get('created_at'))}"]
        if job.get("finished_at"):
            info.append(f"finished {clock.short(job['finished_at'])}")
        elif job.get("expires_at"):
            info.append(f"expires {clock.short(job['expires_at'])}")
        info.append(f"attempts {job.get('attempts') or 0}")
        if job.get("reprint_of"):
            info.append(f"reprint of #{job['reprint_of']}")
        if job.get("failover_from"):
            info.append(f"backup from {state.printer_name(job['failover_from'])}")
        if job.get("idempotency_key"):
            info.append(f"key {job['idempotency_key']}")
        error = job.get("error")
        text = Text(" · ".join(info))
        waiting = waiting_reason(state.jobs.get(self.job_id) or job, state, clock)
        if waiting:
            text.append(f"\n{waiting}", style="bold yellow")
        if isinstance(error, dict):
            text.append(f"\nerror {error.get('code')}: {error.get('message')}", style="bold red")
        show(self.query_one("#jd-info", Static), text)
        self._show_trail(job.get("events") or [])
        self._show_preview(job)

    def _show_preview(self, job: JobRecord) -> None:
        preview = self.query_one("#jd-preview", Static)
        title = self.query_one("#jd-preview-title", Static)
        sent = job.get("sent_preview")
        if "document" not in job:
            show(preview, Text("loading…", style="dim"))
        elif isinstance(sent, dict) and self.show_sent:
            show(title, "Sent to printer  (v: the document)")
            lines = sent_lines(sent)
            self._paper_width(paper_width(lines))
            show(preview, paper_text(lines))
        else:
            show(title, "Document  (v: sent to printer)" if sent else "What it prints")
            self._paper_width(PAPER_WIDTH)
            failover = job.get("failover_from")
            name = self.dashboard.state.printer_name(failover) if failover else None
            show(preview, preview_text(job, name))

    def _paper_width(self, width: int) -> None:
        """The paper (and its pane) as wide as the ticket shown (app.tcss has the
        document's width: 42 columns, plus padding and the pane's border)."""
        self.query_one("#jd-preview", Static).styles.width = width + 2
        self.query_one(".paper-pane", Vertical).styles.width = width + 4

    def _show_trail(self, events: list[dict[str, Any]]) -> None:
        trail = self.query_one("#jd-trail", LiveTable)
        clock = self.dashboard.clock
        trail.replace_rows(
            (
                index,
                {
                    "at": clock.hms(event.get("at")),
                    "status": job_status_text(str(event.get("status"))),
                    "why": " · ".join(
                        str(v) for v in (event.get("actor"), event.get("reason")) if v
                    ),
                },
            )
            for index, event in enumerate(events)
        )

    @on(LiveTable.Refit, "#jd-trail")
    def _refit(self, event: LiveTable.Refit) -> None:
        job = self.job
        self._show_trail(job.get("events") or [] if job else [])

    def fleet_changed(self, changes: Changes) -> None:
        if self.job_id in changes.jobs:
            _old, new = changes.jobs[self.job_id]
            if self.detail is not None and new.get("status") != self.detail.get("status"):
                self.detail = {**self.detail, **new}
                self.load()
            self.show()
        elif changes.printers:
            job = self.job
            if job is not None and job.get("printer_id") in changes.printers:
                self.show()  # its printer's state is why it waits

    async def action_cancel(self) -> None:
        await self.dashboard.actions.cancel_job(self.job_id)

    async def action_reprint(self) -> None:
        await self.dashboard.actions.reprint_job(self.job_id)

    def action_toggle_view(self) -> None:
        job = self.job
        if job is None or not isinstance(job.get("sent_preview"), dict):
            self.dashboard.notify(
                f"Job #{self.job_id}: nothing reported yet of what the printer was sent",
                markup=False,
            )
            return
        self.show_sent = not self.show_sent
        self._show_preview(job)

    def action_reload(self) -> None:
        self.load()

    async def action_logs(self) -> None:
        await self.dashboard.show_logs(job_id=self.job_id)
