"""Alerts: open ones first (critical, warning, info), then the recent history;
``a`` acknowledges, ``enter`` opens the printer it is about."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from pm_core.protocol.records import AlertRecord
from pm_tui.bulk import BulkActions
from pm_tui.data.clock import Clock
from pm_tui.data.state import Changes, FleetState, alert_record
from pm_tui.formatting import alert_state_text, severity_text
from pm_tui.views.base import TablePanel
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

ALERT_COLUMNS = (
    ColumnSpec("severity", "SEV", 4),
    ColumnSpec("state", "STATE", 7),
    ColumnSpec("opened", "OPENED", 8, priority=1),
    ColumnSpec("branch", "BRANCH", 10, priority=4),
    ColumnSpec("kind", "KIND", 15, priority=2),
    ColumnSpec("subject", "SUBJECT", 12, priority=1),
    ColumnSpec("message", "MESSAGE", 20, grow=True),
    ColumnSpec("by", "ACKED BY", 10, priority=5),
)
STATE_RANK = {"open": 0, "acknowledged": 1, "cleared": 2}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
#: What a row whose alert is gone sorts as (nothing known about it: last).
NO_ALERT = alert_record({})


def alert_order(alert: AlertRecord) -> tuple[int, int, float]:
    return (
        STATE_RANK.get(str(alert.get("state")), 3),
        SEVERITY_RANK.get(str(alert.get("severity")), 3),
        -(alert.get("opened_at") or 0),
    )


def alert_cells(alert: AlertRecord, state: FleetState, clock: Clock) -> dict[str, Cell]:
    return {
        "severity": severity_text(str(alert.get("severity"))),
        "state": alert_state_text(str(alert.get("state"))),
        "opened": clock.short(alert.get("opened_at")),
        "branch": state.branch_name(alert.get("branch_id")),
        "kind": str(alert.get("kind") or "-"),
        "subject": state.subject_name(alert.get("subject")),
        "message": str(alert.get("message") or ""),
        "by": str(alert.get("acknowledged_by") or "-"),
    }


class AlertsView(TablePanel):
    TABLE_ID = "alerts"
    COLUMNS = ALERT_COLUMNS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "ack", "acknowledge"),
        Binding("A", "ack_all", "ack all", show=False),
        Binding("o", "toggle_open", "open only/all"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.open_only = False

    def compose(self) -> ComposeResult:
        yield Static(id="alerts-filterline", classes="filterline")
        yield LiveTable(id="alerts")
        yield Static(id="alert-detail", classes="summary")

    def on_mount(self) -> None:
        super().on_mount()
        state = self.dashboard.state
        self.table.order_by(lambda aid: alert_order(state.alerts.get(aid) or NO_ALERT))
        self.table.markable = True

    def _visible(self, alert: AlertRecord) -> bool:
        app = self.dashboard
        if self.open_only and alert.get("state") != "open":
            return False
        return app.state.in_branch(alert, app.branch_filter)

    def rebuild(self) -> None:
        app = self.dashboard
        self.table.set_columns(self._columns())
        alerts = sorted((a for a in app.state.alerts.values() if self._visible(a)), key=alert_order)
        self.table.replace_rows((a["id"], alert_cells(a, app.state, app.clock)) for a in alerts)
        self._describe()
        self.show_detail()

    def _describe(self) -> None:
        app = self.dashboard
        counts = app.state.alert_counts(app.branch_filter)
        line = Text.assemble(
            ("open: ", "bold"),
            (f"{counts['critical']} critical", "bold red" if counts["critical"] else ""),
            " · ",
            (f"{counts['warning']} warning", "bold yellow" if counts["warning"] else ""),
            " · ",
            f"{counts['info']} info",
            f"   showing {'open only' if self.open_only else 'open and recent'} · o toggles",
        )
        marked = len(self.table.marked)
        if marked:
            line.append(f" · {marked} marked (a acks them)", style="bold")
        show(self.query_one("#alerts-filterline", Static), line)

    def fleet_changed(self, changes: Changes) -> None:
        if changes.reloaded:
            self.rebuild()
            return
        app = self.dashboard
        table = self.table
        for alert_id, (old, alert) in changes.alerts.items():
            if not self._visible(alert):
                table.drop_row(alert_id)
                continue
            table.put_row(alert_id, alert_cells(alert, app.state, app.clock))
            if old is None or alert_order(old) != alert_order(alert):
                table.want_sort()
        if changes.alerts:
            self.mark_chrome()

    @on(LiveTable.Highlighted, "#alerts")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        self.mark_chrome()

    def update_chrome(self) -> None:
        self._describe()
        self.show_detail()

    def show_detail(self) -> None:
        app = self.dashboard
        alert_id = self.table.selected_id
        alert = app.state.alerts.get(alert_id) if alert_id is not None else None
        detail = self.query_one("#alert-detail", Static)
        if alert is None:
            show(detail, "No alerts." if not app.state.alerts else "")
            return
        clock = app.clock
        text = Text.assemble(
            severity_text(str(alert.get("severity"))),
            " ",
            (str(alert.get("message") or alert.get("kind")), "bold"),
            f"\n{alert.get('kind')} · {app.state.subject_name(alert.get('subject'))}",
            f" · opened {clock.short(alert.get('opened_at'))}",
        )
        if alert.get("acknowledged_at"):
            text.append(
                f" · acknowledged by {alert.get('acknowledged_by')}"
                f" at {clock.short(alert['acknowledged_at'])}"
            )
        if alert.get("cleared_at"):
            text.append(f" · cleared {clock.short(alert['cleared_at'])}")
        show(detail, text)

    @on(LiveTable.Selected, "#alerts")
    def _selected(self, event: LiveTable.Selected) -> None:
        app = self.dashboard
        alert = app.state.alerts.get(self.table.selected_id or -1)
        printer_id = app.state.subject_printer(alert.get("subject")) if alert else None
        if printer_id is not None:
            app.open_printer(printer_id)

    async def action_ack(self) -> None:
        """The marked alerts (space marks), else the one under the cursor."""
        marked = self.table.marked_ids
        if marked:
            await BulkActions(self.dashboard).ack_alerts(marked, then=self.table.clear_marks)
            return
        await self.dashboard.actions.ack_alert(self.table.selected_id)

    async def action_ack_all(self) -> None:
        await BulkActions(self.dashboard).ack_alerts(None, then=self.table.clear_marks)

    @on(LiveTable.Marked, "#alerts")
    def _marked(self, event: LiveTable.Marked) -> None:
        self._describe()

    def action_toggle_open(self) -> None:
        self.open_only = not self.open_only
        self.rebuild()
