"""The main screen: header, tab bar, the five views, footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from pm_tui.dashboard import as_dashboard
from pm_tui.views.agents import AgentsView
from pm_tui.views.alerts import AlertsView
from pm_tui.views.base import FleetPanel
from pm_tui.views.branches import BranchesView
from pm_tui.views.jobs import JobsView
from pm_tui.views.logs import LogsView
from pm_tui.views.printers import PrintersView
from pm_tui.widgets.footer import DashboardFooter
from pm_tui.widgets.header import TABS, HubHeader, TabBar


class MainScreen(Screen[None]):
    AUTO_FOCUS = "#printers"

    def __init__(self) -> None:
        super().__init__()
        self.current = "printers"

    def compose(self) -> ComposeResult:
        yield HubHeader()
        yield TabBar(id="tabbar")
        with ContentSwitcher(initial="tab-printers", id="views"):
            yield PrintersView(id="tab-printers")
            yield JobsView(id="tab-jobs")
            yield AlertsView(id="tab-alerts")
            yield AgentsView(id="tab-agents")
            yield BranchesView(id="tab-branches")
            yield LogsView(id="tab-logs")
        yield DashboardFooter()

    def on_mount(self) -> None:
        self.refresh_tabs()

    def show_tab(self, tab: str) -> None:
        if tab not in dict(TABS):
            return
        if tab == "branches" and not as_dashboard(self.app).state.multi_branch:
            self.app.notify("This token sees one branch: there is no branch list.")
            return
        self.current = tab
        self.query_one("#views", ContentSwitcher).current = f"tab-{tab}"
        view = self.query_one(f"#tab-{tab}", FleetPanel)
        view.focus_main()
        self.refresh_tabs()
        self.refresh_bindings()

    def refresh_tabs(self) -> None:
        # query, not query_one: a chrome tick can come while the app is shutting down
        # and the screen's widgets are already gone.
        for bar in self.query("#tabbar").results(TabBar):
            bar.show(self.current)
