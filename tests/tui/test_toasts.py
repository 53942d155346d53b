"""Toasts never cover the row or the detail being read: they take the header's line."""

from __future__ import annotations

import pytest
from textual.geometry import Region
from textual.widgets import Static
from textual.widgets._toast import Toast

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp
from pm_tui.widgets.tables import LiveTable
from tests.support.tui_support import ready, select_row, shows, text, toasts, wait_until


def selected_row(table: LiveTable) -> Region:
    """Where the cursor's row is on the screen (the column headers take the first line)."""
    y = table.region.y + 1 + table.cursor_row - int(table.scroll_offset.y)
    return Region(table.region.x, y, table.region.width, 1)


def toast_regions(app: PrinterMasterApp) -> list[Region]:
    """Every place a toast shows: Textual's toasts, and the header line while it holds one."""
    regions = [t.region for t in app.screen.query(Toast) if t.region]
    topbar = app.screen.query_one("#topbar", Static)
    if any(message.split("\n")[0][:20] in text(app, "#topbar") for message in toasts(app)):
        regions.append(topbar.region)
    return regions


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
async def test_toasts_cover_neither_the_selected_row_nor_the_detail(
    hub: RunningHub,
    admin_token: str,
    agent: Agent,
    fleet: SimulatorFleet,
    size: tuple[int, int],
) -> None:
    """The first row selected, toasts from a sort and a test print: they show on the
    header's line, off the selected row and the detail pane; the tab bar stays whole,
    and the header's counts come back when they go."""
    app = PrinterMasterApp(hub_url=hub.url, token=admin_token)
    async with app.run_test(size=size, notifications=True) as pilot:
        await ready(pilot)
        table = app.screen.query_one("#printers", LiveTable)
        await select_row(pilot, "#printers", table.row_ids[0])
        await pilot.press("o")
        await pilot.press("t")
        await wait_until(
            pilot, lambda: any("Test page printed" in t for t in toasts(app)), what="result"
        )
        assert len(toasts(app)) <= 2
        await pilot.pause()
        row = selected_row(table)
        detail = app.screen.query_one("#printer-summary").region
        shown = await wait_until(pilot, lambda: toast_regions(app), what="toasts on screen")
        for region in shown:
            assert region.height == 1
            assert not region.overlaps(row), (region, row)
            assert not region.overlaps(detail), (region, detail)
        assert "1 Printers" in text(app, "#tabbar")
        await shows(pilot, "#topbar", "Test page printed")  # the newest leads

        app.clear_notifications()
        await shows(pilot, "#topbar", "printers ok")


NOTICE = (
    "Demo branch box on http://127.0.0.1:39017 (data: /root/.local/share/printermaster-demo;"
    " log: /root/.local/share/printermaster-demo/demo.log)\n"
    "Admin token: /root/.local/share/printermaster-demo/demo.token\n"
    "Switch a printer: pm simctl --control http://127.0.0.1:9180 state 9101 paper_out\n"
    "HTTP API: TOKEN=$(cat /root/.local/share/printermaster-demo/demo.token); curl -H "
    '"Authorization: Bearer $TOKEN" http://127.0.0.1:39017/api/v1/printers'
)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)], ids=["80x24", "60x20"])
async def test_the_demos_notice_shows_whole_until_a_key_and_again_in_the_help(
    hub: RunningHub, admin_token: str, size: tuple[int, int]
) -> None:
    """Tried and failed: the demo's guide (URL, token file, the exact pm simctl and
    curl lines) was a one-line toast, cut after about 45 characters, so the lines the
    README points to could not be read. It now opens whole in a box; any key closes it,
    and ``?`` shows it again above the keys."""
    app = PrinterMasterApp(hub_url=hub.url, token=admin_token, notice=NOTICE)
    async with app.run_test(size=size, notifications=True) as pilot:
        await wait_until(pilot, lambda: app.screen.query("#notice"), what="the notice")
        shown = " ".join(text(app, "#notice-text").split())
        for line in NOTICE.splitlines():
            assert " ".join(line.split()) in shown, line
        await pilot.press("x")
        await wait_until(pilot, lambda: not app.screen.query("#notice"), what="closed")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen.query("#help-notice"), what="help")
        assert "pm simctl --control http://127.0.0.1:9180 state 9101" in " ".join(
            text(app, "#help-notice").split()
        )
