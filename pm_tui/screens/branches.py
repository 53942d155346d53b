"""Branches (a token that sees several): one row each; ``enter`` shows only that
branch on every screen, the first row shows them all again."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from pm_tui.data.state import BranchSummary, Changes
from pm_tui.screens.base import FleetPanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

BRANCH_COLUMNS = (
    ColumnSpec("name", "BRANCH", 18),
    ColumnSpec("printers", "PRINTERS", 8),
    ColumnSpec("problems", "PROBLEMS", 8),
    ColumnSpec("alerts", "ALERTS", 6),
    ColumnSpec("agents", "AGENTS", 7),
    ColumnSpec("jobs", "ACTIVE", 6),
    ColumnSpec("link", "LINK", 10),
)
ALL = 0


def branch_cells(row: BranchSummary, selected: bool) -> dict[str, Cell]:
    if row.agents == 0:
        link = Text("no agent", style="dim")
    elif row.agents_connected == row.agents:
        link = Text("UP", style="bold green")
    elif row.agents_connected:
        link = Text("PARTIAL", style="bold yellow")
    else:
        link = Text("DOWN", style="bold red")
    return {
        "name": ("▸ " if selected else "") + row.name,
        "printers": str(row.printers),
        "problems": Text(str(row.problems), style="bold red" if row.problems else ""),
        "alerts": Text(str(row.alerts), style="bold" if row.alerts else ""),
        "agents": f"{row.agents_connected}/{row.agents}",
        "jobs": str(row.active_jobs),
        "link": link,
    }


class BranchesView(FleetPanel):
    def compose(self) -> ComposeResult:
        yield Static(id="branches-note", classes="filterline")
        yield LiveTable(id="branches")

    @property
    def table(self) -> LiveTable:
        return self.query_one("#branches", LiveTable)

    def focus_main(self) -> None:
        self.table.focus()

    def on_mount(self) -> None:
        super().on_mount()
        self.table.set_columns(BRANCH_COLUMNS)

    def _rows(self) -> list[tuple[int, dict[str, Cell]]]:
        app = self.dashboard
        summaries = app.state.branch_summaries()
        total = BranchSummary(
            id=ALL,
            name="All branches",
            printers=sum(s.printers for s in summaries),
            problems=sum(s.problems for s in summaries),
            alerts=sum(s.alerts for s in summaries),
            agents_connected=sum(s.agents_connected for s in summaries),
            agents=sum(s.agents for s in summaries),
            active_jobs=sum(s.active_jobs for s in summaries),
        )
        chosen = app.branch_filter or ALL
        return [(s.id, branch_cells(s, s.id == chosen)) for s in [total, *summaries]]

    def fleet_changed(self, changes: Changes) -> None:
        table = self.table
        if not table.specs:
            table.set_columns(BRANCH_COLUMNS)
        if changes.reloaded:
            table.replace_rows(self._rows())
            self.chrome_dirty = True
        elif self.dashboard.state.multi_branch:
            self.mark_chrome()

    def update_chrome(self) -> None:
        for row_id, cells in self._rows():
            self.table.put_row(row_id, cells)
        state = self.dashboard.state
        note = (
            f"{len(state.branches)} branches · enter shows one branch on every screen"
            if state.multi_branch
            else "This token sees one branch."
        )
        show(self.query_one("#branches-note", Static), note)

    @on(LiveTable.Selected, "#branches")
    def _selected(self, event: LiveTable.Selected) -> None:
        branch_id = self.table.selected_id
        self.dashboard.set_branch_filter(branch_id if branch_id else None)
        self.fleet_changed(Changes())
