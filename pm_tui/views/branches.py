"""Branches (a company hub, or a token that sees several): one row each; ``enter``
shows only that branch on every screen, the first row shows them all again.

Against a company hub the LINK column is the branch hub's link to it (connected,
lagging, offline since …) and the line under the table says when it last synced;
against a branch hub it is whether the branch's agents are connected.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from pm_tui.data.clock import Clock
from pm_tui.data.state import BranchSummary, Changes
from pm_tui.formatting import ago, duration, plural
from pm_tui.views.base import FleetPanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable, fit_columns

BRANCH_COLUMNS = (
    ColumnSpec("name", "BRANCH", 18),
    ColumnSpec("printers", "PRINTERS", 8),
    ColumnSpec("problems", "PROBLEMS", 8),
    ColumnSpec("alerts", "ALERTS", 6),
    ColumnSpec("agents", "AGENTS", 7),
    ColumnSpec("jobs", "ACTIVE", 6),
    ColumnSpec("link", "LINK", 10),
)
#: Against a company hub: the link to each branch hub, and when it last synced.
COMPANY_COLUMNS = (
    ColumnSpec("name", "BRANCH", 16, grow=True),
    ColumnSpec("printers", "PRINTERS", 8),
    ColumnSpec("problems", "PROBLEMS", 8),
    ColumnSpec("alerts", "ALERTS", 6),
    ColumnSpec("jobs", "ACTIVE", 6, priority=1),
    ColumnSpec("link", "LINK", 22),
    ColumnSpec("synced", "SYNCED", 8, priority=2),
    ColumnSpec("agents", "AGENTS", 7, priority=3),
)
ALL = 0


def since_text(clock: Clock, timestamp: Any) -> str:
    """``10:42`` today, ``24 Nov`` on another day."""
    if not isinstance(timestamp, int | float) or not timestamp:
        return "?"
    when, today = clock.struct(timestamp), clock.struct(clock.now())
    if (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M", when)
    return time.strftime("%d %b", when)


def link_text(link: dict[str, Any] | None, clock: Clock) -> Text:
    """A branch hub's link to the company hub, in words (readable without colour)."""
    state = (link or {}).get("state")
    if state == "connected":
        return Text("● connected", style="bold green")
    if state == "lagging":
        lag = (link or {}).get("lag_s")
        behind = f" {duration(lag)}" if isinstance(lag, int | float) and lag > 0 else ""
        return Text(f"◐ lagging{behind}", style="bold yellow")
    if state == "offline":
        since = since_text(clock, (link or {}).get("disconnected_at"))
        return Text(f"✕ offline since {since}", style="bold red")
    if state == "local":
        return Text("local", style="dim")
    return Text("never synced", style="dim")


def branch_cells(row: BranchSummary, selected: bool, clock: Clock | None = None) -> dict[str, Cell]:
    if row.link is not None or clock is not None:
        link = link_text(row.link, clock or Clock())
    elif row.agents == 0:
        link = Text("no agent", style="dim")
    elif row.agents_connected == row.agents:
        link = Text("UP", style="bold green")
    elif row.agents_connected:
        link = Text("PARTIAL", style="bold yellow")
    else:
        link = Text("DOWN", style="bold red")
    synced = (row.link or {}).get("last_sync_at")
    return {
        "name": ("✓ " if selected else "") + row.name,
        "printers": str(row.printers),
        "problems": Text(str(row.problems), style="bold red" if row.problems else ""),
        "alerts": Text(str(row.alerts), style="bold" if row.alerts else ""),
        "agents": f"{row.agents_connected}/{row.agents}",
        "jobs": str(row.active_jobs),
        "link": link,
        "synced": ago(synced, clock.now()) if clock is not None and synced else "-",
    }


class BranchesView(FleetPanel):
    def compose(self) -> ComposeResult:
        yield Static(id="branches-note", classes="filterline")
        yield LiveTable(id="branches")
        yield Static(id="branch-detail", classes="summary")

    @property
    def table(self) -> LiveTable:
        return self.query_one("#branches", LiveTable)

    def focus_main(self) -> None:
        self.table.focus()

    def on_mount(self) -> None:
        super().on_mount()
        self._set_columns()

    def on_resize(self) -> None:
        if self._set_columns():
            self.table.replace_rows(self._rows())
            self.mark_chrome()

    def _set_columns(self) -> bool:
        company = self.dashboard.state.company_mode
        if not company:
            return self.table.set_columns(BRANCH_COLUMNS)
        width = (self.size.width or 80) - 1
        return self.table.set_columns(fit_columns(COMPANY_COLUMNS, width))

    def _rows(
        self, summaries: list[BranchSummary] | None = None
    ) -> list[tuple[int, dict[str, Cell]]]:
        app = self.dashboard
        state = app.state
        if summaries is None:
            summaries = state.branch_summaries()
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
        clock = app.clock if state.company_mode else None
        rows = [(s.id, branch_cells(s, s.id == chosen, clock)) for s in summaries]
        first = branch_cells(total, chosen == ALL)
        if state.company_mode:
            up = sum(1 for s in summaries if (s.link or {}).get("state") == "connected")
            first["link"] = Text(f"{up}/{len(summaries)} connected")
            first["synced"] = ""
        return [(ALL, first), *rows]

    def fleet_changed(self, changes: Changes) -> None:
        table = self.table
        if self._set_columns() or changes.reloaded:
            table.replace_rows(self._rows())
            self.chrome_dirty = True
        elif self.dashboard.state.multi_branch:
            self.mark_chrome()

    def clock_tick(self) -> None:
        if self.dashboard.state.company_mode:
            self.mark_chrome()  # lag and "synced 12s" age every second

    def update_chrome(self) -> None:
        summaries = self.dashboard.state.branch_summaries()
        rows = self._rows(summaries)
        known = set(self.table.row_ids)
        for row_id, cells in rows:
            self.table.put_row(row_id, cells)
        for row_id in known - {r for r, _ in rows}:
            self.table.drop_row(row_id)
        state = self.dashboard.state
        if state.company_mode:
            links = [s.link or {} for s in summaries]
            offline = sum(1 for link in links if link.get("state") == "offline")
            count = len(links)
            note = f"{count} branch{'' if count == 1 else 'es'}"
            if offline:
                note += f" · {offline} offline"
            note += " · enter shows one branch on every screen"
        elif state.multi_branch:
            note = f"{len(state.branches)} branches · enter shows one branch on every screen"
        else:
            note = "This token sees one branch."
        show(self.query_one("#branches-note", Static), note)
        self._describe(self.table.selected_id)

    def _describe(self, branch_id: int | None) -> None:
        detail = self.query_one("#branch-detail", Static)
        app = self.dashboard
        state = app.state
        if not state.company_mode:
            detail.display = False
            return
        detail.display = True
        if not branch_id:
            show(
                detail,
                "Each branch hub syncs to this company hub; actions on its printers, jobs "
                "and alerts are sent to it.",
            )
            return
        link = state.branch_link(branch_id) or {}
        name = state.branch_name(branch_id)
        clock = app.clock
        synced = link.get("last_sync_at")
        last = (
            f"last sync {clock.short(synced)} ({ago(synced, clock.now())} ago)"
            if synced
            else "never synced"
        )
        if link.get("state") == "offline":
            text = (
                f"{name}: offline since {clock.short(link.get('disconnected_at'))} · {last} · "
                "it keeps printing; its changes wait at the branch"
            )
        elif link.get("state") in ("connected", "lagging"):
            pending = link.get("pending") or 0
            owed = f"{plural(pending, 'change')} on the way" if pending else "up to date"
            text = (
                f"{name}: {last} · {owed} · connected since {clock.short(link.get('connected_at'))}"
            )
        else:
            text = f"{name}: {last}"
        show(detail, text)

    @on(LiveTable.Highlighted, "#branches")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        self._describe(event.row_id)

    @on(LiveTable.Selected, "#branches")
    def _selected(self, event: LiveTable.Selected) -> None:
        branch_id = self.table.selected_id
        self.dashboard.set_branch_filter(branch_id if branch_id else None)
        self.fleet_changed(Changes())
