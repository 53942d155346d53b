"""What the pushed screens that show part of the fleet share (printer and job detail)."""

from __future__ import annotations

from textual.screen import Screen

from pm_tui.dashboard import Dashboard, as_dashboard
from pm_tui.data.state import Changes


class FleetScreen(Screen[None]):
    """A pushed screen (printer or job detail) that follows the fleet too."""

    @property
    def dashboard(self) -> Dashboard:
        return as_dashboard(self.app)

    def on_mount(self) -> None:
        self.dashboard.subscribe(self)

    def on_unmount(self) -> None:
        self.dashboard.unsubscribe(self)

    def fleet_changed(self, changes: Changes) -> None:
        """Follow a change (override)."""

    def clock_tick(self) -> None:
        """Once a second (override)."""

    def action_back(self) -> None:
        self.app.pop_screen()
