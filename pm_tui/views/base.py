"""What every view in the main screen's tabs shares: a handle on the dashboard,
following its changes while mounted, and (for most) one live table."""

from __future__ import annotations

from typing import ClassVar

from textual.containers import Vertical
from textual.events import Resize

from pm_tui.dashboard import Dashboard, as_dashboard
from pm_tui.data.state import Changes
from pm_tui.widgets.tables import ColumnSpec, LiveTable, fit_columns


class FleetPanel(Vertical):
    """A view that subscribes to the dashboard's fleet changes while it is mounted."""

    @property
    def dashboard(self) -> Dashboard:
        return as_dashboard(self.app)

    def on_mount(self) -> None:
        self.dashboard.subscribe(self)
        self.fleet_changed(Changes(reloaded=True))

    def on_unmount(self) -> None:
        self.dashboard.unsubscribe(self)

    def fleet_changed(self, changes: Changes) -> None:
        """Follow a change (override): rows, cheaply; mark_chrome() for summaries."""

    def clock_tick(self) -> None:
        """Once a second (override to refresh ages)."""

    chrome_dirty = True

    def mark_chrome(self) -> None:
        """The summary lines need redrawing (done a few times a second at most)."""
        self.chrome_dirty = True
        self.dashboard.request_chrome()

    def refresh_chrome(self) -> None:
        if self.chrome_dirty:
            self.chrome_dirty = False
            self.update_chrome()

    def update_chrome(self) -> None:
        """Redraw summary lines: counts, descriptions, the selected row's detail (override)."""

    def focus_main(self) -> None:
        """Put the focus on the view's main widget (override)."""


class TablePanel(FleetPanel):
    """A fleet view around one live table (``#TABLE_ID``) whose columns depend on the
    width: ``COLUMNS`` fitted to it, the branch column only while several branches
    show."""

    TABLE_ID: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[ColumnSpec, ...]] = ()

    @property
    def table(self) -> LiveTable:
        return self.query_one(f"#{self.TABLE_ID}", LiveTable)

    def focus_main(self) -> None:
        self.table.focus()

    def _columns(self) -> list[ColumnSpec]:
        width = (self.size.width or 80) - 1
        multi = self.dashboard.state.multi_branch and self.dashboard.branch_filter is None
        return fit_columns([c for c in self.COLUMNS if c.key != "branch" or multi], width)

    def rebuild(self) -> None:
        raise NotImplementedError

    def on_resize(self, event: Resize) -> None:
        if self._columns() != self.table.specs:
            self.rebuild()
