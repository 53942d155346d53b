"""Agents and health, Branches, the command palette and help."""

from __future__ import annotations

import time

from textual.widgets import Input, OptionList

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp
from pm_tui.data.clock import FixedClock
from pm_tui.screens.dialogs import HelpScreen
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.widgets.tables import LiveTable
from tests.conftest import AgentFactory
from tests.support.sample_hub import SAMPLE_NOW, SampleHub
from tests.support.tui_support import column, dashboard, ready, shows, toasts, type_text, wait_until


async def test_agents_screen_shows_each_agent_and_its_link(
    hub: RunningHub, admin_token: str, make_agent: AgentFactory, fleet: SimulatorFleet
) -> None:
    """One row per agent with its link state (and health figures when the hub has them);
    an agent that goes away turns OFFLINE live."""
    specs = [f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen" for p in fleet.printers]
    agent = await make_agent(specs, name="kitchen-box")
    async with dashboard(hub.url, admin_token, health_interval=0.5) as (app, pilot):
        await ready(pilot)
        await pilot.press("4")
        await wait_until(pilot, lambda: column(app, "#agents", "name") == ["kitchen-box"])
        assert column(app, "#agents", "state") == ["ONLINE"]
        assert app.state.health_supported is not None
        if app.state.health_supported:
            await shows(pilot, "#agents-note", "agents connected")
        await pilot.press("r")
        await agent.stop()
        await wait_until(pilot, lambda: column(app, "#agents", "state") == ["OFFLINE"])


async def test_agents_screen_without_health_summary_says_so() -> None:
    """A hub without ``health:summary`` (unknown event) still lists agents, and says why
    there are no figures."""
    app = PrinterMasterApp(
        source=SampleHub(health=False), clock=FixedClock(SAMPLE_NOW), health_interval=0
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.health_supported is False)
        await pilot.press("4")
        await shows(pilot, "#agents-note", "does not report agent health")
        assert column(app, "#agents", "avg") == ["-", "-"]
        await pilot.press("1")
        assert "no health:summary" in str(app.screen.query_one(".latency-figures").render())


async def test_branches_list_and_filter_every_screen(
    hub: RunningHub, admin_token: str, make_agent: AgentFactory, fleet: SimulatorFleet
) -> None:
    """A token that sees two branches gets a Branches tab; enter on one shows only it."""
    harbour = await hub.hub.db.write(
        lambda d: (
            d.execute(
                "INSERT INTO branches (company_id, name, created_at) VALUES (1, 'Harbour', ?)",
                (time.time(),),
            ).lastrowid
        )
    )
    key = await hub.hub.create_license(branch_id=harbour)
    first, second = fleet.printers
    await make_agent([f"Kitchen-1=tcp://127.0.0.1:{first.port}#kitchen"], name="main-box")
    await make_agent(
        [f"Grill=tcp://127.0.0.1:{second.port}#kitchen"], name="harbour-box", license_key=key
    )
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await wait_until(pilot, lambda: column(app, "#printers", "status").count("ONLINE") == 2)
        assert "branch" in app.screen.query_one("#printers", LiveTable).column_keys
        await shows(pilot, "#topbar", "all 2 branches")
        await pilot.press("5")
        await wait_until(pilot, lambda: len(column(app, "#branches", "name")) == 3)
        assert column(app, "#branches", "name")[0].endswith("All branches")
        assert column(app, "#branches", "agents")[1:] == ["1/1", "1/1"]

        await pilot.press("down", "down", "enter")  # Harbour
        await wait_until(pilot, lambda: app.branch_filter == harbour)
        await shows(pilot, "#topbar", "Harbour")
        await pilot.press("1")
        await wait_until(pilot, lambda: column(app, "#printers", "name") == ["Grill"])
        await pilot.press("4")
        assert column(app, "#agents", "name") == ["harbour-box"]

        await pilot.press("5", "home", "enter")  # All branches again
        await wait_until(pilot, lambda: app.branch_filter is None)
        await pilot.press("1")
        await wait_until(pilot, lambda: len(column(app, "#printers", "name")) == 2)


async def test_palette_finds_a_printer_and_help_lists_the_keys(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """ctrl+p, a printer's name, enter: its detail. ``?`` shows every key; esc closes it."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.focused, Input))
        await type_text(pilot, "Printer Bar", submit=False)
        await wait_until(
            pilot,
            lambda: any(
                "Printer Bar" in str(o.prompt) for o in app.screen.query_one(OptionList).options
            ),
            what="the palette found Bar",
        )
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await shows(pilot, "#pd-title", "Bar")
        await pilot.press("escape", "question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "send a test receipt" in str(app.screen.query_one("Static").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Reloaded from the hub" in toasts(app))
