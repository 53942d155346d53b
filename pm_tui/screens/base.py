"""What every fleet view shares: a handle on the app, and following its changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.containers import Vertical
from textual.events import Resize
from textual.screen import Screen

from pm_tui.data.state import Changes
from pm_tui.widgets.tables import ColumnSpec, LiveTable

if TYPE_CHECKING:
    from pm_tui.app import PrinterMasterApp


def dashboard_of(node: object) -> PrinterMasterApp:
    from pm_tui.app import PrinterMasterApp

    app = getattr(node, "app", None)
    assert isinstance(app, PrinterMasterApp)
    return app


class FleetPanel(Vertical):
    """A view that subscribes to the app's fleet changes while it is mounted."""

    @property
    def dashboard(self) -> PrinterMasterApp:
        return dashboard_of(self)

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


class FleetScreen(Screen[None]):
    """A pushed screen (printer or job detail) that follows the fleet too."""

    @property
    def dashboard(self) -> PrinterMasterApp:
        return dashboard_of(self)

    def on_mount(self) -> None:
        self.dashboard.subscribe(self)

    def on_unmount(self) -> None:
        self.dashboard.unsubscribe(self)

    def fleet_changed(self, changes: Changes) -> None:
        """Follow a change (override)."""

    def clock_tick(self) -> None:
        """Once a second (override)."""


class TablePanel(FleetPanel):
    """A fleet view around one live table whose columns depend on the width."""

    @property
    def table(self) -> LiveTable:
        raise NotImplementedError

    def _columns(self) -> list[ColumnSpec]:
        raise NotImplementedError

    def rebuild(self) -> None:
        raise NotImplementedError

    def on_resize(self, event: Resize) -> None:
        if self._columns() != self.table.specs:
            self.rebuild()
