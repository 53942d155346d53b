"""The dashboard against a real hub, agent and simulated printers (Textual pilot)."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import DataTable, Static

from pm_agent.agent import Agent
from pm_agent.sim import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp


def table_rows(app: PrinterMasterApp) -> list[list[str]]:
    table = app.query_one("#printers", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def wait_until(pilot: Any, check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("dashboard did not get there in time")


def screen_text(app: PrinterMasterApp, widget_id: str) -> str:
    return str(app.query_one(widget_id, Static).render())


async def test_dashboard_shows_printers_and_live_status(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    app = PrinterMasterApp(hub_url=hub.url, token=admin_token)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: sum(r[0] == "ONLINE" for r in table_rows(app)) == 2)
        names = sorted(r[1] for r in table_rows(app))
        assert names == ["Bar", "Kitchen-1"]
        assert "connected" not in screen_text(app, "#banner")
        assert "● hub" in screen_text(app, "#topbar")

        started = time.monotonic()
        await fleet.printers[0].set_state("paper_out")
        await wait_until(
            pilot, lambda: ["PAPER OUT", "Kitchen-1"] in [r[:2] for r in table_rows(app)]
        )
        assert time.monotonic() - started < 2.0  # one poll interval plus a little
        assert table_rows(app)[0][1] == "Kitchen-1"  # problems sort first
        assert "1 problem" in screen_text(app, "#topbar")

        await pilot.press("q")
    assert not app.is_running


async def test_dashboard_shows_a_lost_hub_and_its_return(
    tmp_path: Any, fleet: SimulatorFleet
) -> None:
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    settings = hub_settings(tmp_path / "hub")
    running = await start_hub(settings)
    assert running.hub.tokens is not None
    token = running.hub.tokens.create(role="admin")
    app = PrinterMasterApp(hub_url=running.url, token=token)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.link_state.state == "connected")
        settings.port = running.port
        await running.stop()
        await wait_until(pilot, lambda: app.link_state.state == "reconnecting")
        assert "reconnecting" in screen_text(app, "#topbar")
        assert app.query_one("#banner").has_class("visible")
        running = await start_hub(settings)
        await wait_until(pilot, lambda: app.link_state.state == "connected", timeout=20)
        assert not app.query_one("#banner").has_class("visible")
    await running.stop()


async def test_dashboard_explains_a_refused_token(hub: RunningHub) -> None:
    app = PrinterMasterApp(hub_url=hub.url, token="not-a-token")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.link_state.state == "refused")
        assert "refused the token" in screen_text(app, "#banner")
        assert "pm token create" in screen_text(app, "#banner")


async def test_test_print_key_prints_on_the_selected_printer(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    app = PrinterMasterApp(hub_url=hub.url, token=admin_token)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: sum(r[0] == "ONLINE" for r in table_rows(app)) == 2)
        selected_id = app._selected_id()
        assert selected_id is not None
        selected = app.printers[selected_id]["name"]
        await pilot.press("t")
        target = next(p for p in fleet.printers if p.name == selected)
        receipts = await target.wait_for_receipts(1)
        assert "PRINTERMASTER TEST PAGE" in receipts[0].text
        other = next(p for p in fleet.printers if p.name != selected)
        assert other.receipts == []
