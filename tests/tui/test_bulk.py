"""Bulk and everyday actions (issue 16): space marks rows; ``a`` acknowledges the
marked alerts and ``A`` every open one; ``c`` cancels the marked jobs; ``n`` prints a
ticket typed in a small form on the printer or station named; ``?`` has a colour
legend. Against a real hub, agent and simulated printers."""

from __future__ import annotations

from typing import Any

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.legend import legend_text
from pm_tui.screens.ask_text import AskText
from pm_tui.screens.dialogs import ConfirmDialog, HelpScreen
from pm_tui.screens.ticket_form import TicketForm
from pm_tui.widgets.tables import LiveTable
from tests.support.helpers import OpsClient, eventually
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    select_row,
    shows,
    text,
    toasts,
    wait_until,
)
from tests.tui.test_jobs import printer_named, registered, submit
from tests.tui.test_printers import printer_id


async def alert_states(ops: OpsClient) -> dict[int, str]:
    listed = await ops.call("alerts:list", {})
    return {a["id"]: a["state"] for a in listed["alerts"]}


async def test_marked_alerts_are_acknowledged_together_and_A_takes_every_open_one(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        for printer in fleet.printers:
            await printer.set_state("paper_out")
        states = await eventually(lambda: _open_count(ops, 2), what="two open paper-out alerts")
        await pilot.press("3")
        table = app.screen.query_one("#alerts", LiveTable)
        await wait_until(pilot, lambda: len(table.row_ids) >= 2, what="alerts on screen")
        first = table.row_ids[0]
        await select_row(pilot, "#alerts", first)
        await pilot.press("space")
        assert table.marked_ids == [first]
        await shows(pilot, "#alerts-filterline", "1 marked")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Acknowledge 1 open alert?" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("y")
        states = await eventually(
            lambda: _states_if(ops, lambda s: s[first] == "acknowledged"), what="first acked"
        )
        assert list(states.values()).count("open") >= 1  # the unmarked one is still open
        await wait_until(pilot, lambda: not table.marked, what="marks cleared")
        await pilot.press("A")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await eventually(
            lambda: _states_if(ops, lambda s: "open" not in s.values()), what="every alert acked"
        )
        await wait_until(pilot, lambda: any("acknowledged" in t for t in toasts(app)))


async def _open_count(ops: OpsClient, count: int) -> dict[int, str] | None:
    states = await alert_states(ops)
    return states if list(states.values()).count("open") >= count else None


async def _states_if(ops: OpsClient, check: Any) -> dict[int, str] | None:
    states = await alert_states(ops)
    return states if check(states) else None


async def test_marked_jobs_are_cancelled_together(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    printers = await registered(ops)
    kitchen = printer_named(printers, "Kitchen-1")["id"]
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await ops.call("printer:configure", {"printer_id": kitchen, "paused": True})
        jobs = [await submit(ops, kitchen, f"wait-{n}") for n in range(3)]
        await pilot.press("2")
        table = app.screen.query_one("#jobs", LiveTable)
        await wait_until(pilot, lambda: all(table.has_row(j["id"]) for j in jobs))
        await select_row(pilot, "#jobs", jobs[2]["id"])  # newest first: 2, 1, 0
        await pilot.press("space", "space")  # marks #2 and #1, the cursor moves down
        assert sorted(table.marked_ids) == sorted([jobs[2]["id"], jobs[1]["id"]])
        await shows(pilot, "#jobs-filterline", "2 marked")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        assert "Cancel 2 marked jobs?" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("y")

        async def statuses() -> list[str] | None:
            found = [
                (await ops.call("job:get", {"job_id": j["id"]}))["job"]["status"] for j in jobs
            ]
            return found if found[1:] == ["cancelled", "cancelled"] else None

        assert (await eventually(statuses, what="two jobs cancelled"))[0] == "queued"
        await wait_until(pilot, lambda: any("2 cancelled" in t for t in toasts(app)))


async def test_n_prints_a_typed_ticket_on_the_printer_or_a_station(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        bar = printer_id(app, "Bar")
        await select_row(pilot, "#printers", bar)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketForm))
        form = app.screen
        assert form.query_one("#ticket-target").value == "Bar"  # type: ignore[attr-defined]
        # Nothing typed: said, and nothing is sent.
        await pilot.press("ctrl+s")
        await shows(pilot, "#ticket-error", "type at least one line")
        form.query_one("#ticket-lines").text = "2x Burger\n1x Fries, no salt"  # type: ignore[attr-defined]
        form.query_one("#ticket-title").value = "TABLE 7"  # type: ignore[attr-defined]
        form.query_one("#ticket-copies").value = "2"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TicketForm), what="sent")
        bar_sim = next(p for p in fleet.printers if p.name == "Bar")
        await eventually(lambda: len(bar_sim.receipts) >= 2, what="two copies printed at Bar")
        assert "TABLE 7" in bar_sim.receipts[0].text
        assert "1x Fries, no salt" in bar_sim.receipts[-1].text
        assert any("Ticket queued as job #" in t and "(2 copies)" in t for t in toasts(app))

        # A station by name (both printers are at "kitchen"), typed in the form.
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketForm))
        form = app.screen
        form.query_one("#ticket-target").value = "nowhere"  # type: ignore[attr-defined]
        form.query_one("#ticket-lines").text = "soup"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await shows(pilot, "#ticket-error", "no station or printer called nowhere")
        form.query_one("#ticket-target").value = "Kitchen"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TicketForm), what="sent")
        listed = await ops.call("jobs:list", {"limit": 1})
        assert listed["jobs"][0]["station"] == "kitchen"
        await eventually(
            lambda: any("soup" in r.text for p in fleet.printers for r in p.receipts),
            what="the station ticket printed",
        )


async def test_the_help_has_a_colour_legend(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        legend = text(app, "#legend")
        for word in ("PAPER OUT", "COMPLETED", "CRIT", "WARN", "heartbeat", "marked"):
            assert word.lower() in legend.lower(), word
        # The colours are the screens' own: PAPER OUT in bold red.
        shown = legend_text()
        assert shown.plain in legend
        spans = {shown.plain[s.start : s.end]: str(s.style) for s in shown.spans}
        assert spans["PAPER OUT"] == "bold red"
        assert spans["ONLINE"] == "bold green"


async def test_e_renames_a_printer_and_an_operator_is_refused(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        bar = printer_id(app, "Bar")
        await select_row(pilot, "#printers", bar)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AskText))
        app.screen.query_one("#ask-input").value = "Terrace bar"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Terrace bar" in column(app, "#printers", "name"))
        got = await ops.call("printer:get", {"printer_id": bar})
        assert got["printer"]["name"] == "Terrace bar"
    assert hub.hub.tokens is not None
    operator = hub.hub.tokens.create(role="operator", branch_ids=[1], sub="op-1")
    async with dashboard(hub.url, operator) as (app, pilot):
        await wait_until(pilot, lambda: "Terrace bar" in column(app, "#printers", "name"))
        await select_row(pilot, "#printers", bar)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AskText))
        app.screen.query_one("#ask-input").value = "Mine"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("not renamed" in t for t in toasts(app)))
        assert "Terrace bar" in column(app, "#printers", "name")
