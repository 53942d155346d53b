"""The always-visible top of every screen: hub link, branch, problems, clock (or, for
a few seconds, the toasts: ``pm_tui.widgets.toast_line``); and the tab bar of the main
screen."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from pm_tui.dashboard import Dashboard, as_dashboard
from pm_tui.formatting import plural
from pm_tui.hub_link import LinkState
from pm_tui.widgets.quiet import show
from pm_tui.widgets.toast_line import toast_line


def link_text(state: LinkState, latency_ms: float | None) -> Text:
    if state.state == "connected":
        latency = f" {latency_ms:.0f} ms" if latency_ms is not None else ""
        return Text(f"● hub{latency}", style="bold green")
    if state.state == "reconnecting":
        return Text(f"◌ reconnecting {state.retry_in or 0}s", style="bold yellow")
    if state.state == "refused":
        return Text("✕ token refused", style="bold red")
    if state.state == "offline":
        return Text(f"✕ offline, retry {state.retry_in or 0}s", style="bold red")
    return Text("◌ connecting", style="yellow")


class HubHeader(Vertical):
    """Top bar (one line) and, when the link is down, a banner saying why."""

    DEFAULT_CLASSES = "hub-header"

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        yield Static(id="banner")

    @property
    def dashboard(self) -> Dashboard:
        return as_dashboard(self.app)

    def on_mount(self) -> None:
        self.refresh_header()

    def on_resize(self) -> None:
        self.refresh_header()

    def refresh_header(self) -> None:
        if not self.is_mounted or not self.children:
            return
        app = self.dashboard
        state = app.state
        branch_filter = app.branch_filter
        hub = state.hub_info
        if branch_filter is not None:
            place = f"{state.branch_name(branch_filter)} (branch {branch_filter})"
        elif state.multi_branch:
            count = len(state.branches)
            place = f"all {count} branches" if count != 1 else "1 branch"
        elif hub.get("branch_name"):
            place = f"{hub['branch_name']} (branch {hub.get('branch_id')})"
        else:
            place = app.hub_url
        counts = state.alert_counts(branch_filter)
        alerts = sum(counts.values())
        problems = len(state.problems(branch_filter))
        link = link_text(app.link_state, app.latency_ms)
        alert_part = (
            Text(f"⚠ {plural(alerts, 'alert')}", style="bold red" if counts["critical"] else "bold")
            if alerts
            else Text("✓ no alerts", style="green")
        )
        problem_part = (
            Text(f"✕ {plural(problems, 'problem')}", style="bold red")
            if problems
            else Text("✓ printers ok", style="green")
        )
        clock = Text(app.clock.hms(app.clock.now()))
        width = max(self.size.width, 40) - 2
        variants = [
            (f"PrinterMaster · {place}", [link, alert_part, problem_part, clock]),
            (f"PM · {place}", [link, alert_part, problem_part, clock]),
            (f"PM · {place.split(' (')[0]}", [link, alert_part, problem_part, clock]),
            (f"PM · {place.split(' (')[0]}", [link, alert_part, problem_part]),
        ]
        toasts = app.toasts
        if toasts:
            # Toasts take this line (never a row or a pane below) but for the counts.
            counts_part = Text("  ").join([alert_part, problem_part])
            line = toast_line(toasts, f"PM · {place.split(' (')[0]}", counts_part, width)
        else:
            for title, parts in variants:
                right = Text("   ").join(parts)
                if len(title) + 2 + right.cell_len <= width:
                    break
            line = Text.assemble((title, "bold"))
            line.append(" " * max(2, width - len(title) - right.cell_len))
            line.append_text(right)
        show(self.query_one("#topbar", Static), line)
        self._banner(app.link_state)

    def _banner(self, state: LinkState) -> None:
        banner = self.query_one("#banner", Static)
        if state.state == "refused":
            show(
                banner,
                f"{state.message}. Make a new one on the hub with: pm token create --role admin",
            )
            banner.add_class("visible")
        elif state.state in ("reconnecting", "offline"):
            since = ""
            if state.state == "offline" and state.since is not None:
                since = f" since {self.dashboard.clock.hms(state.since)}"
            show(
                banner,
                f"{state.message}{since}; retrying in {state.retry_in or 0}s "
                "(showing the last known state)",
            )
            banner.add_class("visible")
        else:
            banner.remove_class("visible")


TABS: tuple[tuple[str, str], ...] = (
    ("printers", "Printers"),
    ("jobs", "Jobs"),
    ("alerts", "Alerts"),
    ("agents", "Agents"),
    ("branches", "Branches"),
    ("logs", "Logs"),
)


class TabBar(Static):
    """`1 Printers  2 Jobs 5  3 Alerts 2  4 Agents` with the current one highlighted."""

    @property
    def dashboard(self) -> Dashboard:
        return as_dashboard(self.app)

    current = "printers"

    def on_resize(self) -> None:
        self.show(self.current)

    def show(self, current: str) -> None:
        self.current = current
        hint = "/ filter  ? help" if current in ("printers", "jobs") else "? help"
        if not self.is_mounted:
            return
        app = self.dashboard
        state = app.state
        counts = {
            "jobs": state.active_jobs(app.branch_filter),
            "alerts": len(state.open_alerts(app.branch_filter)),
        }
        line = Text()
        for number, (key, label) in enumerate(TABS, start=1):
            if key == "branches" and not state.multi_branch:
                continue
            count = counts.get(key)
            word = f" {number} {label}{f' {count}' if count else ''} "
            style = Style(reverse=True, bold=True) if key == current else Style()
            line.append(word, style=style + Style.from_meta({"@click": f"app.show_tab({key!r})"}))
            line.append(" ")
        width = max(self.size.width, 40)
        pad = width - line.cell_len - len(hint) - 1
        if pad >= 1:
            line.append(" " * pad)
            line.append(hint, style="dim")
        show(self, line)
