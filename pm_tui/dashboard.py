"""What the views, screens, operator actions and command palette need from the app.

``Dashboard`` is a small protocol: the fleet as last told by the hub, the hub link,
following changes, the branch filter, the operator actions, and going to a screen or
a dialog by what it is for (a printer, a job, a question). ``PrinterMasterApp``
implements it and is the only module that knows every screen; everything else
depends on this module, never on the app, so nothing imports in a circle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast, runtime_checkable

from textual.app import App
from textual.notifications import Notification, SeverityLevel

from pm_core.protocol.records import PrinterRecord
from pm_tui.data.clock import Clock
from pm_tui.data.source import HubSource
from pm_tui.data.state import Changes, FleetState
from pm_tui.hub_link import LinkState


class FleetView(Protocol):
    """A view or screen that shows part of the fleet and follows its changes.

    It may also have ``refresh_chrome()``: its summary lines, redrawn a few times a
    second at most (see :meth:`Dashboard.request_chrome`)."""

    def fleet_changed(self, changes: Changes) -> None: ...

    def clock_tick(self) -> None: ...


class OperatorActions(Protocol):
    """What an operator can do from any screen. Each asks first where it must, asks
    the hub, and says what happened in a toast. ``None``: nothing is selected."""

    async def test_print(self, printer_id: int | None) -> None: ...

    async def send_test_receipt(self, printer_id: int | None) -> None: ...

    async def toggle_pause(self, printer_id: int | None) -> None: ...

    async def move_printer(self, printer_id: int | None) -> None: ...

    async def cancel_job(self, job_id: int | None) -> None: ...

    async def reprint_job(self, job_id: int | None) -> None: ...

    async def cancel_waiting(self, printer_id: int) -> None: ...

    async def move_waiting(self, printer_id: int, to_printer_id: int | None) -> None: ...

    async def ack_alert(self, alert_id: int | None) -> None: ...


@runtime_checkable
class Dashboard(Protocol):
    """The dashboard app, as its parts see it."""

    # -- what it knows ---------------------------------------------------------------

    @property
    def state(self) -> FleetState:
        """Printers, jobs, alerts, agents and health as last told by the hub."""
        ...

    @property
    def clock(self) -> Clock: ...

    @property
    def link(self) -> HubSource:
        """The hub: ``call`` an ``/ops`` event and get its ack."""
        ...

    @property
    def hub_url(self) -> str: ...

    @property
    def link_state(self) -> LinkState: ...

    @property
    def latency_ms(self) -> float | None: ...

    @property
    def branch_filter(self) -> int | None:
        """The branch every screen shows, or None for all of them."""
        ...

    @property
    def actions(self) -> OperatorActions: ...

    @property
    def toasts(self) -> list[Notification]:
        """The toasts showing now, newest first (the header shows them on its line)."""
        ...

    # -- following it -------------------------------------------------------------------

    def subscribe(self, view: FleetView) -> None: ...

    def unsubscribe(self, view: FleetView) -> None: ...

    def publish(self, changes: Changes) -> None:
        """Tell every subscribed view what changed (after changing the state)."""
        ...

    def request_chrome(self) -> None:
        """Headers and summary lines need redrawing (at most a few times a second)."""
        ...

    def set_branch_filter(self, branch_id: int | None) -> None: ...

    async def poll_health(self) -> None:
        """Ask for ``health:summary`` unless offline or the hub does not offer it."""
        ...

    async def refresh_health(self) -> None:
        """Ask for ``health:summary`` now."""
        ...

    # -- going places (the app knows the screens) -------------------------------------

    async def action_show_tab(self, tab: str) -> None: ...

    async def action_reload(self) -> None: ...

    def action_help(self) -> None: ...

    def open_printer(self, printer_id: int) -> None: ...

    def open_job(self, job_id: int) -> None: ...

    def ask_text(
        self, question: str, value: str, then: Callable[[str | None], Awaitable[None]]
    ) -> None:
        """Ask for one line of text (``None``: cancelled)."""
        ...

    def new_ticket(self, printer_id: int | None = None) -> None:
        """The form that prints a typed ticket (on this printer, if given)."""
        ...

    def add_printer(self) -> None:
        """The form that adds a printer through a connected agent (``printer:add``)."""
        ...

    async def show_logs(self, *, job_id: int | None = None, printer_id: int | None = None) -> None:
        """The Logs tab, showing only this job's (or printer's) lines."""
        ...

    def confirm(self, question: str, then: Callable[[bool | None], Awaitable[None]]) -> None:
        """Ask yes or no; ``then`` gets the answer."""
        ...

    def choose_station(
        self,
        printer: PrinterRecord,
        stations: list[str],
        then: Callable[[str | None], Awaitable[None]],
    ) -> None:
        """Ask for the printer's new station (``""``: none; ``None``: cancelled)."""
        ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...


#: App classes already found to be dashboards (the protocol check costs ~20 us).
_DASHBOARD_CLASSES: set[type] = set()


def as_dashboard(app: App[Any]) -> Dashboard:
    """The running app as a :class:`Dashboard` (a clear error if it is not one)."""
    if type(app) not in _DASHBOARD_CLASSES:
        if not isinstance(app, Dashboard):
            raise TypeError(f"{type(app).__name__} does not implement pm_tui.dashboard.Dashboard")
        _DASHBOARD_CLASSES.add(type(app))
    return cast(Dashboard, app)
