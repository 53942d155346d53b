"""The dashboard against a real hub, agent and simulated printers (Textual pilot)."""

from __future__ import annotations

import time
from typing import Any

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp
from pm_tui.views.printers import PrintersView
from tests.support.tui_support import column, dashboard, ready, rows, shows, toasts, wait_until


async def test_dashboard_shows_printers_and_live_status(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """Every printer shows; a status change at a printer reaches its row within ~1 s."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        assert sorted(column(app, "#printers", "name")) == ["Bar", "Kitchen-1"]
        await shows(pilot, "#topbar", "● hub")
        await shows(pilot, "#topbar", "Main branch")

        started = time.monotonic()
        await fleet.printers[0].set_state("paper_out")
        await wait_until(
            pilot,
            lambda: ["PAPER OUT", "Kitchen-1"] in [r[:2] for r in rows(app, "#printers")],
            what="Kitchen-1 PAPER OUT",
        )
        assert time.monotonic() - started < 2.0  # one poll interval plus a little
        await wait_until(
            pilot, lambda: column(app, "#printers", "name")[0] == "Kitchen-1", what="sorted first"
        )
        await shows(pilot, "#topbar", "1 problem")
        await shows(pilot, "#detail", "Kitchen-1")  # the cursor followed it to the top
        assert rows(app, "#printers")[0][4] == "out"  # PAPER column

        await pilot.press("q")
    assert not app.is_running


async def test_dashboard_shows_a_lost_hub_and_its_return(
    tmp_path: Any, fleet: SimulatorFleet
) -> None:
    """The header counts down to the next try; the banner goes when the hub is back."""
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    settings = hub_settings(tmp_path / "hub")
    running = await start_hub(settings)
    assert running.hub.tokens is not None
    token = running.hub.tokens.create(role="admin")
    async with dashboard(running.url, token) as (app, pilot):
        await wait_until(pilot, lambda: app.link_state.state == "connected")
        settings.port = running.port
        await running.stop()
        await wait_until(pilot, lambda: app.link_state.state == "reconnecting")
        await shows(pilot, "#topbar", "reconnecting")
        assert app.screen.query_one("#banner").has_class("visible")
        await shows(pilot, "#banner", "last known state")
        running = await start_hub(settings)
        await wait_until(pilot, lambda: app.link_state.state == "connected", timeout=20)
        await wait_until(pilot, lambda: not app.screen.query_one("#banner").has_class("visible"))
    await running.stop()


async def test_dashboard_explains_a_refused_token(hub: RunningHub) -> None:
    """A refused token is said in words, with the command that makes a new one."""
    async with dashboard(hub.url, "not-a-token") as (app, pilot):
        await wait_until(pilot, lambda: app.link_state.state == "refused")
        await shows(pilot, "#banner", "refused the token")
        await shows(pilot, "#banner", "pm token create")
        await shows(pilot, "#topbar", "token refused")


async def test_a_refused_token_ends_the_command_line_dashboard(hub: RunningHub) -> None:
    """Started by ``pm tui`` (exit_on_refusal), the app exits with code 3 instead of waiting."""
    app = PrinterMasterApp(hub_url=hub.url, token="expired", exit_on_refusal=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: not app.is_running or app.return_code == 3)
    assert app.return_code == 3


async def test_test_print_key_prints_on_the_selected_printer(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """``t`` prints a test page on the highlighted printer only, and says so."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        view = app.screen.query_one(PrintersView)
        selected_id = view.table.selected_id
        assert selected_id is not None
        selected = app.state.printers[selected_id]["name"]
        await pilot.press("t")
        target = next(p for p in fleet.printers if p.name == selected)
        receipts = await target.wait_for_receipts(1)
        assert "PRINTERMASTER TEST PAGE" in receipts[0].text
        other = next(p for p in fleet.printers if p.name != selected)
        assert other.receipts == []
        await wait_until(
            pilot,
            lambda: any(f"Test page printed on {selected}" in t for t in toasts(app)),
            what="test result toast",
        )
