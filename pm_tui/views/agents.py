"""Agents and health: each agent's link (latency, loss, uptime, reconnects, spool)
and the selected agent's latency over the last hour."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from pm_core.protocol.records import AgentRecord
from pm_tui.data.clock import Clock
from pm_tui.data.state import Changes, FleetState
from pm_tui.data.waiting import HELD_STATUSES, held_by_agents
from pm_tui.formatting import duration, ms, percent
from pm_tui.views.base import TablePanel
from pm_tui.widgets.charts import LatencyPlot
from pm_tui.widgets.quiet import show
from pm_tui.widgets.tables import Cell, ColumnSpec, LiveTable

AGENT_COLUMNS = (
    ColumnSpec("state", "LINK", 7),
    ColumnSpec("name", "AGENT", 14, grow=True),
    ColumnSpec("last", "LAST", 5, priority=1),
    ColumnSpec("avg", "AVG", 5, priority=1),
    ColumnSpec("p95", "P95", 5, priority=2),
    ColumnSpec("loss", "LOSS", 5, priority=1),
    ColumnSpec("uptime", "UPTIME", 7, priority=2),
    ColumnSpec("reconnects", "RECON", 5, priority=3),
    ColumnSpec("spool", "SPOOL", 5, priority=2),
    ColumnSpec("printers", "PRN", 4, priority=4),
    ColumnSpec("branch", "BRANCH", 10, priority=5),
    ColumnSpec("host", "HOST", 14, priority=6),
)


def agent_ids(state: FleetState, branch_id: int | None) -> list[int]:
    ids = {a for a, rec in state.agents.items() if state.in_branch(rec, branch_id)}
    if branch_id is None:
        ids |= set(state.health)
    return sorted(ids)


def agent_uptime(agent_id: int, state: FleetState, clock: Clock) -> float | None:
    """The agent's uptime now: the hub's figure, counted on since the hub gave it."""
    health = state.health.get(agent_id) or {}
    agent: AgentRecord | dict[str, Any] = state.agents.get(agent_id) or {}
    if not health.get("connected", agent.get("connected")):
        return None
    uptime = health.get("uptime_s")
    if isinstance(uptime, int | float):
        return uptime + max(0.0, clock.now() - (state.health_at or clock.now()))
    since = health.get("connected_since")
    return clock.now() - since if isinstance(since, int | float) else None


def agent_cells(
    agent_id: int, state: FleetState, clock: Clock, held: dict[int, int] | None = None
) -> dict[str, Cell]:
    """``held``: per agent, the jobs its spool holds (``held_by_agents``): live, where
    the hub's ``spool_depth`` is as old as the last ``health:summary``."""
    # {}: an agent known only from health:summary.
    agent: AgentRecord | dict[str, Any] = state.agents.get(agent_id) or {}
    health = state.health.get(agent_id) or {}
    latency = health.get("latency_ms") or {}
    connected = health.get("connected", agent.get("connected"))
    printers = agent.get("printers")
    uptime = agent_uptime(agent_id, state, clock)
    spool = health.get("spool_depth")
    if held is not None and agent_id in state.agents:
        spool = held.get(agent_id, 0)
    return {
        "state": Text("ONLINE", style="bold green")
        if connected
        else Text("OFFLINE", style="bold red"),
        "name": state.agent_name(agent_id),
        "last": ms(latency.get("last")),
        "avg": ms(latency.get("avg")),
        "p95": ms(latency.get("p95")),
        "loss": percent(health.get("packet_loss")),
        "uptime": duration(uptime) if isinstance(uptime, int | float) else "-",
        "reconnects": _count(health.get("reconnects")),
        "spool": _count(spool),
        "printers": str(len(printers)) if isinstance(printers, list) else "-",
        "branch": state.branch_name(agent.get("branch_id")),
        "host": str(agent.get("hostname") or "-"),
    }


def _count(value: Any) -> str:
    return str(value) if isinstance(value, int) else "-"


class AgentsView(TablePanel):
    TABLE_ID = "agents"
    COLUMNS = AGENT_COLUMNS

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_health", "refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="agents-note", classes="filterline")
        yield LiveTable(id="agents")
        yield LatencyPlot(id="agent-plot")

    def rebuild(self) -> None:
        app = self.dashboard
        self.table.set_columns(self._columns())
        ids = agent_ids(app.state, app.branch_filter)
        held = held_by_agents(app.state)
        self.table.replace_rows((i, agent_cells(i, app.state, app.clock, held)) for i in ids)
        self._note()
        self.show_plot()

    def _note(self) -> None:
        state = self.dashboard.state
        if state.health_supported is False:
            note = Text(
                "This hub does not report agent health (health:summary): "
                "link state only, no latency figures.",
                style="dim",
            )
        else:
            connected = sum(
                1 for i in agent_ids(state, self.dashboard.branch_filter)
                if (state.health.get(i) or state.agents.get(i) or {}).get("connected")
            )  # fmt: skip
            note = Text(
                f"{connected} of {len(self.table.row_ids)} agents connected · latency in ms, "
                "last hour · r refreshes"
            )
        show(self.query_one("#agents-note", Static), note)

    def fleet_changed(self, changes: Changes) -> None:
        if changes.reloaded or changes.health:
            self.rebuild()
            return
        app = self.dashboard
        if changes.agents:
            held = held_by_agents(app.state)
            for agent_id in changes.agents:
                agent = app.state.agents.get(agent_id)
                if agent is None:  # retired
                    self.table.drop_row(agent_id)
                elif app.state.in_branch(agent, app.branch_filter):
                    self.table.put_row(agent_id, agent_cells(agent_id, app.state, app.clock, held))
            self.mark_chrome()
        if any(
            (old is not None and old.get("status") in HELD_STATUSES)
            or new.get("status") in HELD_STATUSES
            for old, new in changes.jobs.values()
        ):
            held = held_by_agents(app.state)
            for agent_id in self.table.row_ids:
                self.table.put_row(agent_id, {"spool": _count(held.get(agent_id, 0))})

    def clock_tick(self) -> None:
        app = self.dashboard
        if "uptime" not in self.table.column_keys:
            return
        for agent_id in self.table.row_ids:
            uptime = agent_uptime(agent_id, app.state, app.clock)
            self.table.put_row(agent_id, {"uptime": duration(uptime) if uptime else "-"})

    def update_chrome(self) -> None:
        self._note()

    @on(LiveTable.Highlighted, "#agents")
    def _highlighted(self, event: LiveTable.Highlighted) -> None:
        self.show_plot()

    def show_plot(self) -> None:
        app = self.dashboard
        plot = self.query_one("#agent-plot", LatencyPlot)
        agent_id = self.table.selected_id
        if agent_id is None or app.state.health_supported is False:
            plot.display = False
            return
        plot.display = True
        name = app.state.agent_name(agent_id)
        plot.show(
            app.state.health.get(agent_id),
            title=f"{name}: latency (ms), last hour",
            now=app.clock.now(),
        )

    def on_show(self) -> None:
        # Fresh figures whenever the tab comes into view (the periodic poll is 15 s).
        self.run_worker(self.dashboard.poll_health(), exclusive=True, group="agents-health")

    async def action_refresh_health(self) -> None:
        await self.dashboard.refresh_health()
