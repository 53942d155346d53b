"""Alerts: a toast on any screen, the alerts table by severity, acknowledge with ``a``."""

from __future__ import annotations

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.screens.printer_detail import PrinterDetailScreen
from tests.support.helpers import OpsClient
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    rows,
    select_row,
    shows,
    toasts,
    wait_until,
)


async def test_new_alert_toasts_bumps_header_and_lists(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """Paper out: a toast (even inside a printer's detail), the header count, an OPEN row."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await shows(pilot, "#topbar", "no alerts")
        await pilot.press("enter")  # into a printer's detail: the toast still shows
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await fleet.printers[0].set_state("paper_out")
        await wait_until(
            pilot,
            lambda: any("Kitchen-1" in t and "paper" in t for t in toasts(app)),
            what="paper-out toast",
        )
        await shows(pilot, "#topbar", "1 alert")

        await pilot.press("3")  # from the detail straight to the alerts tab
        await wait_until(pilot, lambda: rows(app, "#alerts"))
        first = rows(app, "#alerts")[0]
        assert first[:2] == ["CRIT", "OPEN"]
        assert "Kitchen-1" in first
        await shows(pilot, "#alerts-filterline", "1 critical")


async def test_a_acknowledges_the_selected_alert(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """``a`` acknowledges at the hub; the row says ACKED and by whom; enter opens the printer."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await fleet.printers[1].set_state("cover_open")
        await pilot.press("3")
        await wait_until(pilot, lambda: column(app, "#alerts", "state") == ["OPEN"])
        alert_id = next(iter(app.state.alerts))
        await select_row(pilot, "#alerts", alert_id)
        await pilot.press("a")
        await wait_until(pilot, lambda: column(app, "#alerts", "state") == ["ACKED"])
        listed = await ops.call("alerts:list", {})
        assert listed["alerts"][0]["state"] == "acknowledged"
        assert listed["alerts"][0]["acknowledged_by"] == "test-admin"
        await shows(pilot, "#alert-detail", "acknowledged by test-admin")

        await pilot.press("o")  # open only: the acknowledged one leaves the view
        await wait_until(pilot, lambda: column(app, "#alerts", "state") == [])
        await pilot.press("o")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await shows(pilot, "#pd-title", "Bar")
