"""Printers: every printer in a live table (problems first), filter with ``/``,
the selected printer's summary and agent latency underneath."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_core.protocol.records import PrinterRecord
from pm_tui.bulk import BulkActions
from pm_tui.data.clock import Clock
from pm_tui.data.filters import PRINTER_SORTS, next_sort, printer_matches
from pm_tui.data.state import Changes, FleetState, printer_record
from pm_tui.data.waiting import agent_missing
from pm_tui.formatting import ago, flags_text, paper_text, plural, status_text
from pm_tui.printer_admin import PrinterAdmin
from pm_tui.views.base import TablePanel
from pm_tui.widgets.charts import LatencyLine
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

PRINTER_COLUMNS = (
    ColumnSpec("status", "STATUS", 10),
    ColumnSpec("branch", "BRANCH", 10, priority=2),
    ColumnSpec("name", "NAME", 12, grow=True),
    ColumnSpec("station", "STATION", 8, priority=1),
    ColumnSpec("address", "ADDRESS", 20, priority=3, grow=True),
    ColumnSpec("paper", "PAPER", 5, priority=2),
    ColumnSpec("queue", "QUEUE", 5, priority=1),
    ColumnSpec("seen", "SEEN", 5, priority=2),
    ColumnSpec("model", "MODEL", 12, priority=6),
    ColumnSpec("agent", "AGENT", 12, priority=7),
    ColumnSpec("last_job", "LAST JOB", 8, priority=5),
)
SORT_COLUMN = {"problems": "status", "name": "name", "station": "station", "seen": "seen"}
#: The sort a click on a column's header picks.
COLUMN_SORT = {column: mode for mode, column in SORT_COLUMN.items()} | {"queue": "queue"}


def printer_cells(p: PrinterRecord, state: FleetState, clock: Clock) -> dict[str, Cell]:
    now = clock.now()
    flags = p.get("flags") if isinstance(p.get("flags"), dict) else {}
    last_job = state.last_job_at.get(p["id"])
    return {
        "status": status_text(str(p.get("status")), paused=bool(p.get("paused"))),
        "branch": state.branch_name(p.get("branch_id")),
        "name": str(p.get("name")),
        "station": str(p.get("station") or "-"),
        "address": str(p.get("address")),
        "paper": paper_text(str(p.get("status")), flags or {}),
        "queue": str(p.get("queue", 0)),
        "seen": ago(p.get("last_seen"), now),
        "model": str(p.get("model") or "-"),
        "agent": state.agent_name(p.get("agent_id")),
        "last_job": ago(last_job, now) if last_job else "-",
    }


def backup_for(printer: PrinterRecord, state: FleetState) -> PrinterRecord | None:
    """The printer a station job would go to if this one cannot print."""
    station = printer.get("station")
    if not station:
        return None
    others = sorted(
        (
            p
            for p in state.printers.values()
            if p["id"] != printer["id"]
            and p.get("station") == station
            and p.get("branch_id") == printer.get("branch_id")
            and p.get("status") not in PROBLEM_PRINTER_STATUSES
            and not p.get("paused")
            and not agent_missing(p)
        ),
        key=lambda p: (p.get("station_priority") or 0, p["id"]),
    )
    return others[0] if others else None


def printer_summary(p: PrinterRecord, state: FleetState, clock: Clock) -> Text:
    """Two lines about one printer: what is wrong since when, and where it is."""
    status = str(p.get("status"))
    since = clock.hms(p.get("status_changed_at"))
    paused = bool(p.get("paused"))
    paused_at = p.get("paused_at") if paused else None
    line = Text.assemble((str(p.get("name")), "bold"), "  ")
    if paused:
        # The pause has its own time (the hub's); the status keeps its.
        line.append("PAUSED", style="bold magenta")
        if paused_at:
            line.append(f" since {clock.hms(paused_at)}")
        line.append(" · ")
        line.append(status_text(status))
    else:
        line.append(status_text(status))
    line.append(f" since {since}")
    line.append(f" · {plural(int(p.get('queue') or 0), 'job')} waiting")
    if status in PROBLEM_PRINTER_STATUSES or p.get("paused"):
        backup = backup_for(p, state)
        line.append(f" · backup: {backup['name']}" if backup else " · no backup printer")
    agent = state.agent_name(p.get("agent_id"))
    connected = "connected" if p.get("agent_connected") else "NOT CONNECTED"
    second = f"\n{p.get('address')} · station {p.get('station') or '-'} · {agent} ({connected})"
    flags = flags_text(p.get("flags"))
    if flags:
        second += f" · {flags}"
    line.append(second)
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


class PrintersView(TablePanel):
    TABLE_ID = "printers"
    COLUMNS = PRINTER_COLUMNS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter"),
        Binding("o", "sort", "sort"),
        Binding("t", "test_print", "test"),
        Binding("s", "test_receipt", "receipt"),
        Binding("p", "pause", "pause"),
        Binding("m", "move", "move"),
        Binding("n", "new_ticket", "ticket", show=False),
        Binding("e", "rename", "rename", show=False),
        Binding("A", "add_printer", "add printer", show=False),
        Binding("D,delete", "remove_printer", "remove", show=False),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.sort_mode = "problems"

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder="filter: name, station, status, address, problem, paused (esc clears)",
            id="printer-filter",
            classes="filter",
        )
        yield LiveTable(id="printers")
        with Vertical(id="printer-summary", classes="summary"):
            yield Static(id="detail")
            yield LatencyLine(id="printer-latency")

    def on_mount(self) -> None:
        super().on_mount()
        self.table.rows_shown = self._age_rows
        state = self.dashboard.state
        # A row whose printer is gone (a reload not drawn yet) sorts as a bare id.
        self.table.order_by(
            lambda pid: PRINTER_SORTS[self.sort_mode](
                state.printers.get(pid) or printer_record({"id": pid})
            )
        )

    # -- rows --------------------------------------------------------------------------

    def _visible(self, p: PrinterRecord) -> bool:
        app = self.dashboard
        return app.state.in_branch(p, app.branch_filter) and printer_matches(
            p, self.filter_text, app.state
        )

    def rebuild(self) -> None:
        """Fill the table from scratch: reload, new filter, new branch, resize."""
        app = self.dashboard
        table = self.table
        table.set_columns(self._columns())
        self._label_sort()
        key = PRINTER_SORTS[self.sort_mode]
        rows = sorted((p for p in app.state.printers.values() if self._visible(p)), key=key)
        table.replace_rows((p["id"], printer_cells(p, app.state, app.clock)) for p in rows)
        self.show_summary()

    def fleet_changed(self, changes: Changes) -> None:
        if changes.reloaded:
            self.rebuild()
            return
        app = self.dashboard
        table = self.table
        key = PRINTER_SORTS[self.sort_mode]
        before = table.selected_id
        resort: list[int] = []
        for printer_id in changes.removed_printers:
            table.drop_row(printer_id)
        for printer_id, (old, new) in changes.printers.items():
            if not self._visible(new):
                table.drop_row(printer_id)
                continue
            added = not table.has_row(printer_id)
            table.put_row(printer_id, printer_cells(new, app.state, app.clock))
            if added or old is None or key(old) != key(new):
                resort.append(printer_id)
        if changes.seen and self.sort_mode == "seen":
            resort.extend(changes.seen)
        if resort:
            table.want_sort(resort)
        if changes.agents or changes.health:
            for printer_id in table.row_ids:
                p = app.state.printers.get(printer_id)
                if p is not None:
                    table.put_row(printer_id, printer_cells(p, app.state, app.clock))
        selected = table.selected_id
        if selected != before or selected in changes.printers or changes.health or changes.agents:
            self.mark_chrome()

    def clock_tick(self) -> None:
        self._age_rows(self.table.visible_row_ids)

    def _age_rows(self, row_ids: list[int]) -> None:
        """Bring the ages ("seen", "last job") of these rows up to the clock: the rows on
        screen, each second and when others come into view."""
        app = self.dashboard
        now = app.clock.now()
        table = self.table
        if "seen" not in table.column_keys:
            return
        for printer_id in row_ids:
            p = app.state.printers.get(printer_id)
            if p is not None:
                cells: dict[str, Cell] = {"seen": ago(p.get("last_seen"), now)}
                if "last_job" in table.column_keys:
                    last = app.state.last_job_at.get(printer_id)
                    cells["last_job"] = ago(last, now) if last else "-"
                table.put_row(printer_id, cells)

    # -- summary -------------------------------------------------------------------------

    @on(LiveTable.Highlighted, "#printers")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        self.mark_chrome()

    def update_chrome(self) -> None:
        self.show_summary()

    def show_summary(self) -> None:
        app = self.dashboard
        detail = self.query_one("#detail", Static)
        latency = self.query_one("#printer-latency", LatencyLine)
        printer_id = self.table.selected_id
        p = app.state.printers.get(printer_id) if printer_id is not None else None
        if p is None:
            if app.state.printers and self.filter_text:
                show(detail, f"No printer matches “{self.filter_text}” (esc clears the filter)")
            else:
                show(detail, "No printers yet." if not app.state.printers else "")
            latency.display = False
            return
        show(detail, printer_summary(p, app.state, app.clock))
        latency.display = True
        latency.show(
            app.state.health.get(p.get("agent_id") or -1),
            unsupported=app.state.health_supported is False,
        )

    @on(LiveTable.Selected, "#printers")
    def _selected(self, event: LiveTable.Selected) -> None:
        self.open_detail(self.table.selected_id)

    def open_detail(self, printer_id: int | None) -> None:
        if printer_id is not None and printer_id in self.dashboard.state.printers:
            self.dashboard.open_printer(printer_id)

    # -- filter and sort ---------------------------------------------------------------

    def action_filter(self) -> None:
        field = self.query_one("#printer-filter", Input)
        field.add_class("visible")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#printer-filter", Input)
        if field.value or field.has_class("visible"):
            field.value = ""
            field.remove_class("visible")
            self.filter_text = ""
            self.rebuild()
        self.table.focus()

    @on(Input.Changed, "#printer-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.rebuild()

    @on(Input.Submitted, "#printer-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("visible")
        self.table.focus()

    def action_sort(self) -> None:
        self.sort_by(next_sort(self.sort_mode))

    @on(LiveTable.HeaderClicked, "#printers")
    def _header_clicked(self, event: LiveTable.HeaderClicked) -> None:
        mode = COLUMN_SORT.get(event.key)
        if mode is not None and mode != self.sort_mode:
            self.sort_by(mode)

    def sort_by(self, mode: str) -> None:
        self.sort_mode = mode
        self._label_sort()
        self.table.sort_now()
        self.app.notify(f"Sorted by {self.sort_mode}")

    def _label_sort(self) -> None:
        self.table.mark_sorted(SORT_COLUMN.get(self.sort_mode, self.sort_mode))

    # -- actions -------------------------------------------------------------------------

    async def action_test_print(self) -> None:
        await self.dashboard.actions.test_print(self.table.selected_id)

    async def action_test_receipt(self) -> None:
        await self.dashboard.actions.send_test_receipt(self.table.selected_id)

    async def action_pause(self) -> None:
        await self.dashboard.actions.toggle_pause(self.table.selected_id)

    async def action_move(self) -> None:
        await self.dashboard.actions.move_printer(self.table.selected_id)

    def action_new_ticket(self) -> None:
        self.dashboard.new_ticket(self.table.selected_id)

    async def action_rename(self) -> None:
        await BulkActions(self.dashboard).rename_printer(self.table.selected_id)

    def action_add_printer(self) -> None:
        self.dashboard.add_printer()

    async def action_remove_printer(self) -> None:
        await PrinterAdmin(self.dashboard).remove(self.table.selected_id)
