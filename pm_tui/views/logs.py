"""Logs: the hub's recent log lines, newest first, live (``logs:list``, then
``logs:follow`` pushes ``logs:update``); managers and admins only.

``v`` cycles the least level shown, ``p`` keeps only the selected line's printer,
``o`` only its job, ``x`` (or esc) clears the filters; ``enter`` opens the line's job,
else its printer. From a job (the Jobs tab or the job's detail) ``l`` comes here
showing only that job's lines: the correlation id joins them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from pm_core.protocol import ErrorCode, OpsEvent
from pm_tui.data.source import error_message, unknown_event
from pm_tui.data.state import Changes, FleetState
from pm_tui.formatting import level_text
from pm_tui.views.base import TablePanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

LOG_COLUMNS = (
    ColumnSpec("at", "TIME", 8),
    ColumnSpec("level", "LEVEL", 5),
    ColumnSpec("printer", "PRINTER", 10, priority=2),
    ColumnSpec("job", "JOB", 6, priority=1),
    ColumnSpec("logger", "FROM", 12, priority=3),
    ColumnSpec("message", "MESSAGE", 20, grow=True),
)
#: Lines the view asks for and keeps (the newest).
MAX_LINES = 500
LEVELS = ("debug", "info", "warning", "error")
LEVEL_RANK = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
LogLine = dict[str, Any]


@dataclass(frozen=True)
class LogQuery:
    """What the Logs tab shows: lines at ``level`` or above, of one printer or job."""

    level: str = "info"
    printer_id: int | None = None
    job_id: int | None = None

    def payload(self) -> dict[str, Any]:
        wanted: dict[str, Any] = {"level": self.level}
        if self.printer_id is not None:
            wanted["printer_id"] = self.printer_id
        if self.job_id is not None:
            wanted["job_id"] = self.job_id
        return wanted

    def matches(self, line: LogLine) -> bool:
        return (
            LEVEL_RANK.get(str(line.get("level")), 0) >= LEVEL_RANK[self.level]
            and (self.printer_id is None or line.get("printer_id") == self.printer_id)
            and (self.job_id is None or line.get("job_id") == self.job_id)
        )

    def describe(self, state: FleetState) -> str:
        parts = [f"level ≥ {self.level}"]
        if self.printer_id is not None:
            parts.append(f"printer {state.printer_name(self.printer_id)}")
        if self.job_id is not None:
            parts.append(f"job #{self.job_id}")
        return " · ".join(parts)


def log_cells(line: LogLine, state: FleetState, hms: Any) -> dict[str, Cell]:
    printer_id, job_id = line.get("printer_id"), line.get("job_id")
    logger = str(line.get("logger") or "")
    return {
        "at": hms(line.get("at")),
        "level": level_text(str(line.get("level"))),
        "printer": state.printer_name(printer_id) if isinstance(printer_id, int) else "-",
        "job": f"#{job_id}" if isinstance(job_id, int) else "-",
        "logger": logger.removeprefix("pm_hub.") or "-",
        "message": str(line.get("message") or ""),
    }


class LogsView(TablePanel):
    TABLE_ID = "logs"
    COLUMNS = LOG_COLUMNS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "cycle_level", "level"),
        Binding("p", "only_printer", "this printer"),
        Binding("o", "only_job", "this job"),
        Binding("x,escape", "clear_filter", "clear"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query_spec = LogQuery()
        self.lines: dict[int, LogLine] = {}
        #: Why there are no lines (not allowed, an old hub), or None.
        self.refusal: str | None = None
        #: Loaded once the tab was first shown; reloads follow every reconnect then.
        self.active = False

    def compose(self) -> ComposeResult:
        yield Static(id="logs-filterline", classes="filterline")
        yield LiveTable(id="logs")
        yield Static(id="log-detail", classes="summary")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.order_by(lambda seq: seq, reverse=True)

    def focus_main(self) -> None:
        super().focus_main()
        if not self.active:
            self.active = True
            self.load()

    # -- filters -----------------------------------------------------------------------

    def set_query(self, query: LogQuery) -> None:
        self.query_spec = query
        self.active = True
        self.load()

    def action_cycle_level(self) -> None:
        index = LEVELS.index(self.query_spec.level) if self.query_spec.level in LEVELS else 0
        self.set_query(replace(self.query_spec, level=LEVELS[(index + 1) % len(LEVELS)]))

    def _selected(self) -> LogLine | None:
        seq = self.table.selected_id
        return self.lines.get(seq) if seq is not None else None

    def action_only_printer(self) -> None:
        line = self._selected()
        if self.query_spec.printer_id is not None:
            self.set_query(replace(self.query_spec, printer_id=None))
        elif line is not None and isinstance(line.get("printer_id"), int):
            self.set_query(replace(self.query_spec, printer_id=line["printer_id"]))
        else:
            self.dashboard.notify("This line names no printer", severity="warning")

    def action_only_job(self) -> None:
        line = self._selected()
        if self.query_spec.job_id is not None:
            self.set_query(replace(self.query_spec, job_id=None))
        elif line is not None and isinstance(line.get("job_id"), int):
            self.set_query(replace(self.query_spec, job_id=line["job_id"]))
        else:
            self.dashboard.notify("This line names no job", severity="warning")

    def action_clear_filter(self) -> None:
        self.set_query(LogQuery(level=self.query_spec.level))

    # -- lines -------------------------------------------------------------------------

    @work(exclusive=True, group="logs")
    async def load(self) -> None:
        app = self.dashboard
        query = self.query_spec
        if not app.link.connected:
            self._describe("waiting for the hub")
            return
        ack = await app.link.call(OpsEvent.LOGS_LIST, {**query.payload(), "limit": MAX_LINES})
        if not ack.get("ok"):
            self._refused(ack)
            return
        self.refusal = None
        self.lines = {
            int(line["seq"]): line
            for line in ack.get("lines") or ()
            if isinstance(line, dict) and isinstance(line.get("seq"), int)
        }
        self.rebuild()
        followed = await app.link.call(OpsEvent.LOGS_FOLLOW, query.payload())
        if not followed.get("ok"):
            self._refused(followed)

    def _refused(self, ack: dict[str, Any]) -> None:
        role = self.dashboard.state.who.get("role") or "this token"
        if unknown_event(ack):
            self.refusal = "This hub does not serve its logs (it is older than the dashboard)."
        elif (ack.get("error") or {}).get("code") == ErrorCode.FORBIDDEN:
            self.refusal = f"The hub's logs are for managers and admins (you are {role})."
        else:
            self.refusal = f"Could not read the hub's logs: {error_message(ack)}"
        self.lines = {}
        self.rebuild()

    def rebuild(self) -> None:
        app = self.dashboard
        self.table.set_columns(self._columns())
        newest = sorted(self.lines, reverse=True)[:MAX_LINES]
        self.lines = {seq: self.lines[seq] for seq in newest}
        hms = app.clock.hms
        self.table.replace_rows((seq, log_cells(self.lines[seq], app.state, hms)) for seq in newest)
        self.update_chrome()

    def fleet_changed(self, changes: Changes) -> None:
        if changes.reloaded:
            if self.active:
                self.load()
            return
        if not changes.log_lines or self.refusal:
            return
        app = self.dashboard
        table = self.table
        added = False
        for line in changes.log_lines:
            seq = line.get("seq")
            if not isinstance(seq, int) or seq in self.lines or not self.query_spec.matches(line):
                continue
            self.lines[seq] = line
            table.put_row(seq, log_cells(line, app.state, app.clock.hms))
            added = True
        if added:
            for seq in sorted(self.lines)[:-MAX_LINES]:
                self.lines.pop(seq, None)
                table.drop_row(seq)
            table.sort_now()
            self.mark_chrome()

    # -- chrome ------------------------------------------------------------------------

    def _describe(self, note: str | None = None) -> None:
        state = self.dashboard.state
        words = note or f"{len(self.lines)} lines"
        line = (
            f"{self.query_spec.describe(state)} · {words} · v level · p printer · o job · x clear"
        )
        show(self.query_one("#logs-filterline", Static), line)

    def update_chrome(self) -> None:
        self._describe()
        detail = self.query_one("#log-detail", Static)
        if self.refusal:
            show(detail, Text(self.refusal, style="bold"))
            return
        line = self._selected()
        if line is None:
            job = self.query_spec.job_id
            if self.active and job is not None:
                # A job that went as planned logs nothing: say so, and where its steps are.
                show(
                    detail,
                    f"No log lines for job #{job}: the hub logs a job's problems (a failure, "
                    "a retry, a redelivery), not each step. Its event trail is in its "
                    "detail (Jobs, enter).",
                )
            else:
                show(detail, "No log lines match." if self.active else "")
            return
        text = Text.assemble(
            level_text(str(line.get("level"))),
            " ",
            (str(line.get("message") or ""), "bold"),
            f"\n{line.get('logger')}",
        )
        if line.get("correlation_id"):
            text.append(f" · {line['correlation_id']}")
        show(detail, text)

    @on(LiveTable.Highlighted, "#logs")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        self.mark_chrome()

    @on(LiveTable.Selected, "#logs")
    def _open(self, event: LiveTable.Selected) -> None:
        line = self._selected()
        if line is None:
            return
        if isinstance(line.get("job_id"), int) and line["job_id"] in self.dashboard.state.jobs:
            self.dashboard.open_job(line["job_id"])
        elif isinstance(line.get("printer_id"), int):
            self.dashboard.open_printer(line["printer_id"])
