"""``pm tui``: the terminal dashboard (Textual).

The app owns the hub connection and the data (``FleetState``); screens and views
subscribe to changes. Hub events are buffered and folded in once per UI turn, so
a burst of status changes costs one pass over the changed rows.

It implements :class:`~pm_tui.dashboard.Dashboard`, the protocol its views,
screens, actions and command palette use, and is the only module that knows every
screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import Notification, Notify, SeverityLevel

from pm_core.protocol import OpsEvent
from pm_core.protocol.records import AlertRecord, PrinterRecord
from pm_tui.actions import HubActions
from pm_tui.dashboard import FleetView
from pm_tui.data.buffer import EventBuffer
from pm_tui.data.clock import Clock
from pm_tui.data.source import HubSource, error_message, unknown_event
from pm_tui.data.state import Changes, FleetState
from pm_tui.formatting import plural
from pm_tui.hub_link import HubLink, LinkState
from pm_tui.messages import HubPulse, LinkChanged
from pm_tui.palette import DashboardCommands
from pm_tui.printer_admin import connected_agents
from pm_tui.screens.ask_text import AskText
from pm_tui.screens.dialogs import ConfirmDialog, HelpScreen, NoticeDialog, StationDialog
from pm_tui.screens.job_detail import JobDetailScreen
from pm_tui.screens.main import MainScreen
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.screens.printer_form import AddPrinterForm
from pm_tui.screens.ticket_form import TicketForm, form_names
from pm_tui.views.logs import LogQuery, LogsView
from pm_tui.widgets.header import HubHeader

log = logging.getLogger(__name__)

#: How many recent jobs the dashboard loads on connect.
JOBS_ON_CONNECT = 300
#: Headers, counts and summary lines are redrawn at most this often (seconds).
CHROME_INTERVAL = 0.25
#: Alert toasts: at most this many ...
TOAST_BURST = 3
#: ... in this many seconds; the others become one "N more alerts" toast.
TOAST_WINDOW = 5.0
#: Toasts on screen at once, on the header's line (a new one replaces the oldest).
MAX_TOASTS = 2


class PrinterMasterApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "PrinterMaster"
    COMMANDS = App.COMMANDS | {DashboardCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show_tab('printers')", "printers", show=False),
        Binding("2", "show_tab('jobs')", "jobs", show=False),
        Binding("3", "show_tab('alerts')", "alerts", show=False),
        Binding("4", "show_tab('agents')", "agents", show=False),
        Binding("5", "show_tab('branches')", "branches", show=False),
        Binding("6", "show_tab('logs')", "logs", show=False),
        Binding("question_mark,f1", "help", "help"),
        Binding("ctrl+r", "reload", "reload", show=False),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        *,
        hub_url: str = "",
        token: str = "",
        source: HubSource | None = None,
        clock: Clock | None = None,
        health_interval: float = 15.0,
        exit_on_refusal: bool = False,
        tls: ssl.SSLContext | None = None,
        notice: str | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        #: Quit on SIGTERM/SIGINT (``pm tui``; not inside tests).
        self.handle_signals = handle_signals
        #: Shown as a first toast (``pm demo``: its URL, token file, simctl and curl lines).
        self.notice = notice
        self.link: HubSource = source if source is not None else HubLink(hub_url, token, tls=tls)
        self.hub_url = hub_url or self.link.url
        self.link.bind(on_event=self._hub_event, on_state=self._link_state)
        self.clock = clock or Clock()
        self.state = FleetState()
        self.buffer = EventBuffer()
        self.link_state = LinkState("connecting")
        self.latency_ms: float | None = None
        self.branch_filter: int | None = None
        self.health_interval = health_interval
        self.exit_on_refusal = exit_on_refusal
        self._views: list[FleetView] = []
        self._loading = False
        self._pulse_pending = False
        self._chrome_dirty = False
        self._chrome_at = 0.0
        self._toast_times: deque[float] = deque()
        self._toasts_held = 0
        # HubActions takes a Dashboard: mypy checks here that this app is one.
        self.actions = HubActions(self)
        #: Called after every batch is on screen (the benchmark listens here).
        self.on_changes_shown: Callable[[Changes], None] | None = None

    # -- plumbing ----------------------------------------------------------------------

    def _hub_event(self, event: str, data: Any) -> None:
        self.buffer.add(event, data)
        if not self._pulse_pending:
            self._pulse_pending = True
            self.post_message(HubPulse())

    def _link_state(self, state: LinkState) -> None:
        self.post_message(LinkChanged(state))

    def subscribe(self, view: FleetView) -> None:
        if view not in self._views:
            self._views.append(view)

    def unsubscribe(self, view: FleetView) -> None:
        if view in self._views:
            self._views.remove(view)

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    def on_mount(self) -> None:
        # SIGTERM or SIGINT from outside (a service stop, kill): quit like `q`, exit 0.
        if self.handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.exit)
        if self.notice:
            self.push_screen(NoticeDialog(self.notice))
        self.run_link()
        self.set_interval(1.0, self._tick)
        self.set_interval(CHROME_INTERVAL, self._chrome_tick)
        self.set_interval(5.0, self._measure_latency)
        if self.health_interval > 0:
            self.set_interval(self.health_interval, self.poll_health)

    @work(exclusive=True, group="link")
    async def run_link(self) -> None:
        await self.link.run()

    async def on_unmount(self) -> None:
        await self.link.close()

    # -- hub events ----------------------------------------------------------------------

    async def on_link_changed(self, message: LinkChanged) -> None:
        self.link_state = message.state
        if message.state.state == "connected":
            self.refresh_headers()
            self.load_in_background()
        else:
            self.workers.cancel_group(self, "load")
            self._loading = False
            if message.state.state == "refused" and self.exit_on_refusal:
                self.exit(3, return_code=3)
        self.refresh_headers()

    def on_hub_pulse(self, message: HubPulse) -> None:
        self._pulse_pending = False
        if not self._loading:
            self.flush()

    def flush(self) -> Changes:
        """Fold what the hub sent since the last turn into the state and the views."""
        batch = self.buffer.drain()
        if not batch:
            return Changes()
        changes = self.state.apply(batch)
        if changes.unknown_printers:
            self.fetch_missing_printers()
        for alert in changes.opened:
            if self._toast_allowed():
                self._toast_alert(alert)
            else:
                self._toasts_held += 1
        for result in changes.test_results:
            self._toast_test_result(result)
        self.publish(changes)
        return changes

    def publish(self, changes: Changes) -> None:
        if not changes:
            return
        for view in list(self._views):
            try:
                view.fleet_changed(changes)
            except Exception:
                log.exception("a view failed to follow a change")
        self.request_chrome()
        if self.on_changes_shown is not None:
            self.on_changes_shown(changes)

    def _toast_allowed(self) -> bool:
        """At most ``TOAST_BURST`` alert toasts per ``TOAST_WINDOW`` s; the rest are counted."""
        now = time.monotonic()
        while self._toast_times and now - self._toast_times[0] > TOAST_WINDOW:
            self._toast_times.popleft()
        if len(self._toast_times) >= TOAST_BURST:
            return False
        self._toast_times.append(now)
        return True

    def _toast_held(self) -> None:
        if self._toasts_held and self._toast_allowed():
            self.notify(
                f"{plural(self._toasts_held, 'more alert')} opened: see 3 Alerts",
                title="Alerts",
                severity="warning",
                timeout=8,
            )
            self._toasts_held = 0

    def _toast_alert(self, alert: AlertRecord) -> None:
        severity = alert.get("severity")
        levels: dict[Any, SeverityLevel] = {"critical": "error", "info": "information"}
        level = levels.get(severity, "warning")
        where = (
            f" ({self.state.branch_name(alert.get('branch_id'))})"
            if self.state.multi_branch
            else ""
        )
        self.notify(
            f"{alert.get('message') or alert.get('kind')}{where}",
            title=f"{str(severity or 'alert').upper()} alert",
            severity=level,
            timeout=8,
            markup=False,
        )

    def _toast_test_result(self, result: dict[str, Any]) -> None:
        name = self.state.printer_name(result.get("printer_id"))
        if result.get("ok"):
            self.notify(
                f"Test page printed on {name} ({result.get('duration_ms')} ms)", markup=False
            )
        else:
            error = result.get("error") or {}
            self.notify(
                f"Test print on {name} failed: {error.get('message') or error.get('code')}",
                severity="error",
                markup=False,
            )

    @work(exclusive=True, group="missing")
    async def fetch_missing_printers(self) -> None:
        """Printers the hub sent a status for before this dashboard had them."""
        ack = await self.link.call(OpsEvent.PRINTERS_LIST)
        if not ack.get("ok"):
            return
        for printer in ack.get("printers") or ():
            if isinstance(printer, dict) and printer.get("id") not in self.state.printers:
                self.publish(self.state.put_printer(printer))

    @work(exclusive=True, group="load")
    async def load_in_background(self) -> None:
        await self.load_everything()

    async def load_everything(self) -> None:
        """Ask the hub for everything (after connecting, or ctrl+r)."""
        self._loading = True
        try:
            call = self.link.call
            who, printers, jobs, alerts, agents, stations = await asyncio.gather(
                call(OpsEvent.WHOAMI),
                call(OpsEvent.PRINTERS_LIST),
                call(OpsEvent.JOBS_LIST, {"limit": JOBS_ON_CONNECT}),
                call(OpsEvent.ALERTS_LIST, {"limit": 200}),
                call(OpsEvent.AGENTS_LIST),
                call(OpsEvent.STATIONS_LIST),
            )
            if not printers.get("ok"):
                self.notify(
                    f"Could not list printers: {error_message(printers)}",
                    severity="error",
                    markup=False,
                )
                return
            branch_links = None
            hub = who.get("hub") if who.get("ok") else None
            if isinstance(hub, dict) and hub.get("company_mode"):
                listed = await call(OpsEvent.BRANCHES_LIST)
                if listed.get("ok"):
                    branch_links = listed["branches"]
            changes = self.state.load(
                branch_links=branch_links,
                who=who if who.get("ok") else None,
                printers=printers["printers"],
                jobs=jobs.get("jobs") if jobs.get("ok") else None,
                alerts=alerts.get("alerts") if alerts.get("ok") else None,
                agents=agents.get("agents") if agents.get("ok") else None,
                stations=stations.get("stations") if stations.get("ok") else None,
            )
            await self._fetch_health()
            self.publish(changes)
            await self._measure_latency()
        finally:
            self._loading = False
        self.flush()

    async def _fetch_health(self) -> bool:
        ack = await self.link.call(OpsEvent.HEALTH_SUMMARY, {})
        if ack.get("ok"):
            self.state.set_health(ack, now=self.clock.now())
            return True
        if unknown_event(ack):
            if self.state.health_supported is not False:
                log.info("the hub has no health:summary; agent figures are limited")
            self.state.set_health(None)
            return True
        return False

    async def poll_health(self) -> None:
        if not self.link.connected or self.state.health_supported is False:
            return
        await self.refresh_health()

    async def refresh_health(self) -> None:
        if await self._fetch_health():
            self.publish(Changes(health=True))

    # -- chrome --------------------------------------------------------------------------

    def request_chrome(self) -> None:
        """Redraw headers and summary lines now, or within ``CHROME_INTERVAL`` under load."""
        self._chrome_dirty = True
        if time.monotonic() - self._chrome_at >= CHROME_INTERVAL:
            self._chrome_pass()

    def redraw_now(self) -> None:
        """Redraw headers and summary lines at once (tests, screenshots)."""
        self._chrome_dirty = True
        self._chrome_pass()

    def _chrome_tick(self) -> None:
        if self._chrome_dirty:
            self._chrome_pass()

    def _chrome_pass(self) -> None:
        self._chrome_dirty = False
        self._chrome_at = time.monotonic()
        self.refresh_headers()
        for view in list(self._views):
            refresh = getattr(view, "refresh_chrome", None)
            if refresh is not None:
                try:
                    refresh()
                except Exception:
                    log.exception("a view failed to redraw its summary")

    def refresh_headers(self) -> None:
        for screen in self.screen_stack:
            for header in screen.query(HubHeader):
                header.refresh_header()
        main = self.main_screen
        if main is not None:
            main.refresh_tabs()

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def _tick(self) -> None:
        self._toast_held()
        for view in list(self._views):
            try:
                view.clock_tick()
            except Exception:
                log.exception("a view failed to tick")
        self.request_chrome()

    async def _measure_latency(self) -> None:
        if self.link.connected:
            self.latency_ms = await self.link.ping()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """A one-line toast on the header's line (``pm_tui.widgets.toast_line``): the
        title leads it."""
        if title:
            message = f"{escape(title) if markup else title}: {message}"
        super().notify(message, severity=severity, timeout=timeout, markup=markup)

    @property
    def toasts(self) -> list[Notification]:
        return list(self._notifications)[::-1]  # expired ones are already left out

    def _refresh_notifications(self) -> None:
        """Textual's hook after a toast comes or goes: the toasts live on the header's
        line (``pm_tui.widgets.toast_line``), not in Textual's rack over the screen."""
        self.call_later(self.refresh_headers)

    def on_notify(self, event: Notify) -> None:
        """Before Textual takes a new toast (this handler runs before App's): make room,
        the oldest go, so at most ``MAX_TOASTS`` show."""
        while len(self._notifications) >= MAX_TOASTS:
            # Textual has no public "dismiss the oldest"; its own _unnotify does it.
            self._unnotify(next(iter(self._notifications)))

    # -- navigation ------------------------------------------------------------------------

    async def action_show_tab(self, tab: str) -> None:
        main = self.main_screen
        if main is None:
            return
        while self.screen is not main and len(self.screen_stack) > 1:
            self.pop_screen()
        main.show_tab(tab)

    async def action_reload(self) -> None:
        await self.load_everything()
        self.notify("Reloaded from the hub")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.notice))

    def open_printer(self, printer_id: int) -> None:
        self.push_screen(PrinterDetailScreen(printer_id))

    def open_job(self, job_id: int) -> None:
        self.push_screen(JobDetailScreen(job_id))

    def ask_text(
        self, question: str, value: str, then: Callable[[str | None], Awaitable[None]]
    ) -> None:
        self.push_screen(AskText(question, value), then)

    def new_ticket(self, printer_id: int | None = None) -> None:
        printer = self.state.printers.get(printer_id) if printer_id is not None else None
        target = str(printer["name"]) if printer is not None else ""
        names = form_names(self.state, self.branch_filter)
        self.push_screen(TicketForm(target=target, names=names))

    def add_printer(self) -> None:
        self.push_screen(AddPrinterForm(connected_agents(self.state, self.branch_filter)))

    async def show_logs(self, *, job_id: int | None = None, printer_id: int | None = None) -> None:
        await self.action_show_tab("logs")
        for view in self.query("#tab-logs").results(LogsView):
            view.set_query(LogQuery(printer_id=printer_id, job_id=job_id, level="debug"))

    def confirm(self, question: str, then: Callable[[bool | None], Awaitable[None]]) -> None:
        self.push_screen(ConfirmDialog(question), then)

    def choose_station(
        self,
        printer: PrinterRecord,
        stations: list[str],
        then: Callable[[str | None], Awaitable[None]],
    ) -> None:
        self.push_screen(StationDialog(printer, stations), then)

    def set_branch_filter(self, branch_id: int | None) -> None:
        self.branch_filter = branch_id
        self.publish(Changes(reloaded=True))
        label = self.state.branch_name(branch_id) if branch_id is not None else "every branch"
        self.notify(f"Showing {label}", markup=False)
