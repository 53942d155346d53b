"""Uptime and activity on the printer detail (issue 16): availability over 24 h and
7 days, a heartbeat bar whose newest cell follows the printer's state, and a chart of
tickets a minute and print time (``a``), from a real hub and printers."""

from __future__ import annotations

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.widgets.uptime import ActivityPlot, UptimeLine
from tests.support.helpers import OpsClient, eventually
from tests.support.tui_support import dashboard, ready, select_row, shows, text, wait_until
from tests.tui.test_jobs import printer_named, registered, submit
from tests.tui.test_printers import printer_id


async def test_the_detail_shows_availability_heartbeat_and_activity(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    printers = await registered(ops)
    kitchen_id = printer_named(printers, "Kitchen-1")["id"]
    job = await submit(ops, kitchen_id, "uptime")

    async def printed() -> bool:
        got = await ops.call("job:get", {"job_id": job["id"]})
        return bool(got["job"]["status"] == "completed")

    await eventually(printed, what="the ticket printed")
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        kitchen = printer_id(app, "Kitchen-1")
        await select_row(pilot, "#printers", kitchen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        line = await shows(pilot, "#pd-uptime", "available", "24h 100%", "7d 100%")
        assert line.rstrip().endswith("█")  # the newest half hour: up
        # Paper out: the newest heartbeat cell turns to down at once.
        await fleet.printers[0].set_state("paper_out")
        await wait_until(
            pilot, lambda: text(app, "#pd-uptime").rstrip().endswith("▁"), what="a down cell"
        )
        uptime = app.screen.query_one("#pd-uptime", UptimeLine)
        assert uptime.uptime is not None and uptime.uptime["heartbeat"]["cells"][-1] == "down"
        # a: the activity chart instead of the status history, with the printed ticket.
        await pilot.press("a")
        plot = app.screen.query_one("#pd-activity", ActivityPlot)
        assert plot.display and not app.screen.query_one("#pd-history").display
        await shows(pilot, "#pd-left-title", "Last hour")
        screen = app.screen
        assert isinstance(screen, PrinterDetailScreen)
        assert screen.activity is not None and sum(screen.activity["tickets"]) == 1
        await pilot.pause()
        canvas = plot.plt.build()
        assert "tickets/min" in canvas
        await pilot.press("a")
        assert app.screen.query_one("#pd-history").display
