"""A paused printer's ``since`` is the hub's pause time: a dashboard started later shows
it (not its own start), a resume clears it, a hub restart keeps it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub, start_hub
from pm_tui.data.clock import Clock
from pm_tui.screens.printer_detail import PrinterDetailScreen
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually
from tests.support.tui_support import dashboard, select_row, shows, text, wait_until


async def listed(hub: RunningHub, token: str, name: str) -> dict[str, Any]:
    client = await OpsClient(hub.url, token).connect()
    try:
        ack = await client.call("printers:list", {})
    finally:
        await client.close()
    return next(p for p in ack["printers"] if p["name"] == name)


async def test_a_dashboard_started_later_shows_the_hubs_pause_time(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """Paused, then the hub restarts, then a new dashboard opens: it shows when the
    printer was paused, as the hub kept it; resuming clears it."""
    settings = hub_settings(tmp_path / "hub")
    hub = await start_hub(settings)
    settings.port = hub.port  # the restart comes back where the agent looks
    assert hub.hub.tokens is not None
    token = hub.hub.tokens.create(role="admin", sub="test-admin")
    agent = Agent(
        hub_url=hub.url,
        license_key=await hub.hub.create_license(),
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"{p.name}=tcp://127.0.0.1:{p.port}") for p in fleet.printers],
        poll_interval=0.2,
        spool_synchronous="NORMAL",
    )
    await agent.start()
    try:
        await eventually(lambda: len(hub.hub.state.printers) == 2, what="printers registered")
        bar = await listed(hub, token, "Bar")
        assert bar["paused_at"] is None
        client = await OpsClient(hub.url, token).connect()
        ack = await client.call("printer:configure", {"printer_id": bar["id"], "paused": True})
        await client.close()
        paused_at = ack["printer"]["paused_at"]
        assert isinstance(paused_at, float)
        # Pausing again keeps the first time.
        client = await OpsClient(hub.url, token).connect()
        again = await client.call("printer:configure", {"printer_id": bar["id"], "paused": True})
        await client.close()
        assert again["printer"]["paused_at"] == paused_at

        await hub.stop()
        hub = await start_hub(settings)
        assert (await listed(hub, token, "Bar"))["paused_at"] == paused_at  # kept on disk

        clock = Clock()
        since = clock.hms(paused_at)
        # Start the dashboard once its own clock reads another second than the pause.
        await eventually(lambda: clock.hms(time.time()) != since, what="a second later")
        started = clock.hms(time.time())
        async with dashboard(hub.url, token) as (app, pilot):
            await wait_until(pilot, lambda: bar["id"] in app.state.printers, what="printers")
            await wait_until(pilot, lambda: app.state.printers[bar["id"]]["paused"] is True)
            await select_row(pilot, "#printers", int(bar["id"]))
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
            await shows(pilot, "#pd-title", f"PAUSED since {since}")
            assert f"PAUSED since {started}" not in text(app, "#pd-title")

            await pilot.press("p")  # resuming needs no question
            await wait_until(pilot, lambda: app.state.printers[bar["id"]]["paused"] is False)
            await wait_until(pilot, lambda: "PAUSED" not in text(app, "#pd-title"))
        assert (await listed(hub, token, "Bar"))["paused_at"] is None
    finally:
        await agent.stop()
        await hub.stop()
