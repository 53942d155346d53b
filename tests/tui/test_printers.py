"""Printers screen and printer detail, every key, against a real hub + agent + printers."""

from __future__ import annotations

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.screens.dialogs import ConfirmDialog, StationDialog
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.views.printers import PrintersView
from pm_tui.widgets.tables import LiveTable
from tests.support.helpers import OpsClient
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    rows,
    select_row,
    shows,
    type_text,
    wait_until,
)


def printer_id(app: object, name: str) -> int:
    state = app.state  # type: ignore[attr-defined]
    return next(pid for pid, p in state.printers.items() if p["name"] == name)


async def test_slash_filters_and_escape_clears(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """``/`` then typing keeps the matching rows; words may be a status or ``problem``."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await pilot.press("slash", "b", "a", "r")
        await wait_until(pilot, lambda: column(app, "#printers", "name") == ["Bar"])
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is app.screen.query_one("#printers")
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(column(app, "#printers", "name")) == 2)

        await fleet.printers[0].set_state("paper_out")
        await pilot.press("slash")
        await type_text(pilot, "problem", submit=False)
        await wait_until(pilot, lambda: column(app, "#printers", "name") == ["Kitchen-1"])
        await fleet.printers[0].set_state("online")  # no longer a problem: leaves the view
        await wait_until(pilot, lambda: column(app, "#printers", "name") == [])
        await shows(pilot, "#detail", "No printer matches")


def header_text(table: LiveTable) -> str:
    return "".join(segment.text for segment in table.render_line(0))


async def test_o_cycles_the_sort_order(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """``o`` sorts by problems, then name, station, last seen, queue (marked in the header)."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        view = app.screen.query_one(PrintersView)
        assert view.sort_mode == "problems"
        await pilot.press("o")
        assert view.sort_mode == "name"
        assert column(app, "#printers", "name") == ["Bar", "Kitchen-1"]
        assert "NAME▾" in header_text(view.table)
        await pilot.press("o", "o", "o")
        assert view.sort_mode == "queue"
        # The marker sits after the label: every letter stays (it read QUEU▾).
        assert "QUEUE▾" in header_text(view.table)
        await pilot.press("o")
        assert view.sort_mode == "problems"
        assert "STATUS▾" in header_text(view.table)


async def test_a_click_on_a_column_header_sorts_by_it(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        view = app.screen.query_one(PrintersView)
        table = view.table
        keys = table.column_keys
        x = sum(spec.width + 2 for spec in table.specs[: keys.index("name")]) + 2
        await pilot.click("#printers", offset=(x, 0))
        await wait_until(pilot, lambda: view.sort_mode == "name")
        assert column(app, "#printers", "name") == ["Bar", "Kitchen-1"]
        assert "NAME▾" in header_text(table)
        x = sum(spec.width + 2 for spec in table.specs[: keys.index("status")]) + 2
        await pilot.click("#printers", offset=(x, 0))
        await wait_until(pilot, lambda: view.sort_mode == "problems")


async def test_enter_opens_the_detail_with_history_and_live_status(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """Detail: status since, address, station, agent; a new status lands on top of history."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        kitchen = printer_id(app, "Kitchen-1")
        await select_row(pilot, "#printers", kitchen)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await shows(pilot, "#pd-title", "Kitchen-1")
        await shows(pilot, "#pd-title", "ONLINE")
        await wait_until(pilot, lambda: column(app, "#pd-history", "status"), what="history")

        await fleet.printers[0].set_state("cover_open")
        await wait_until(pilot, lambda: column(app, "#pd-history", "status")[0] == "COVER OPEN")
        await shows(pilot, "#pd-title", "COVER OPEN")
        await shows(pilot, "#pd-title", "backup: Bar")  # same station, can print
        await pilot.press("escape")
        assert isinstance(app.screen.query_one(PrintersView), PrintersView)


async def test_detail_keys_test_receipt_pause_and_move(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """In the detail: ``s`` prints a test receipt, ``p`` pauses and resumes, ``m`` moves."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        bar = printer_id(app, "Bar")
        await select_row(pilot, "#printers", bar)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))

        await pilot.press("s")
        sim = next(p for p in fleet.printers if p.name == "Bar")
        receipts = await sim.wait_for_receipts(1)
        assert "TEST RECEIPT" in receipts[0].text
        assert "station  kitchen" in receipts[0].text
        await wait_until(pilot, lambda: column(app, "#pd-jobs", "status")[:1] == ["COMPLETED"])

        await pilot.press("p")  # pause asks first, like cancel
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.printers[bar]["paused"] is True)
        listed = await ops.call("printers:list", {})
        assert next(p for p in listed["printers"] if p["id"] == bar)["paused"] is True
        # "since" is the pause's time, not the time the printer's status last changed.
        paused_at = next(p for p in listed["printers"] if p["id"] == bar)["paused_at"]
        await shows(pilot, "#pd-title", f"PAUSED since {app.clock.hms(paused_at)}")
        await pilot.press("p")  # resuming needs no question
        await wait_until(pilot, lambda: app.state.printers[bar]["paused"] is False)

        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, StationDialog))
        await type_text(pilot, "bar")
        await wait_until(pilot, lambda: app.state.printers[bar]["station"] == "bar")
        listed = await ops.call("printers:list", {})
        assert next(p for p in listed["printers"] if p["id"] == bar)["station"] == "bar"
        await shows(pilot, "#pd-title", "station bar")


async def test_list_keys_act_on_the_highlighted_printer(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """On the printers list, ``p`` pauses the highlighted printer (shown as PAUSED)."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        kitchen = printer_id(app, "Kitchen-1")
        await select_row(pilot, "#printers", kitchen)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # a "no" leaves it printing
        await pilot.pause(0.3)
        assert app.state.printers[kitchen]["paused"] is False
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(
            pilot, lambda: ["PAUSED", "Kitchen-1"] in [r[:2] for r in rows(app, "#printers")]
        )
        await pilot.press("m", "escape")  # the station dialog closes without a change
        assert app.state.printers[kitchen]["station"] == "kitchen"


async def test_a_removed_printer_leaves_the_dashboard(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """An operator removes a printer elsewhere (``printer:remove``): its row goes."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await wait_until(pilot, lambda: len(column(app, "#printers", "name")) == 2)
        ops = await OpsClient(hub.url, admin_token).connect()
        try:
            ack = await ops.call("printer:remove", {"printer_id": printer_id(app, "Bar")})
            assert ack["ok"], ack
        finally:
            await ops.close()
        await wait_until(pilot, lambda: column(app, "#printers", "name") == ["Kitchen-1"])
