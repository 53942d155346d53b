"""Adding and removing printers from the dashboard (issue 16), against a real hub,
agent and simulated printers: ``A`` opens a form that adds a printer by address
through the connected agent (it comes online, prints a test page, and is still there
after the agent restarts); ``D`` removes the selected printer after asking, and while
tickets wait for it the hub refuses and the toast says to cancel or move them first;
``delete`` in the printer's detail removes it too, and the detail closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from textual.widgets import Input, OptionList

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.screens.dialogs import ConfirmDialog
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.screens.printer_form import AddPrinterForm
from tests.support.helpers import OpsClient, receipt_doc
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    rows,
    select_row,
    toasts,
    type_text,
    wait_until,
)
from tests.tui.test_printers import printer_id


@asynccontextmanager
async def box(
    hub: RunningHub, key: str, data_dir: Path, printers: list[str]
) -> AsyncIterator[Agent]:
    agent = Agent(
        hub_url=hub.url,
        license_key=key,
        data_dir=data_dir,
        printers=[parse_printer_spec(p) for p in printers],
        name="backoffice",
        poll_interval=0.2,
        spool_synchronous="NORMAL",
        identify_wait=1.0,
    )
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


def status_of(app: object, name: str) -> str | None:
    found = [r for r in rows(app, "#printers") if name in r]  # type: ignore[arg-type]
    return found[0][0] if found else None


async def test_add_a_printer_from_the_form_then_remove_it(
    hub: RunningHub, admin_token: str, ops: OpsClient, fleet: SimulatorFleet, tmp_path: Path
) -> None:
    kitchen, bar = fleet.printers
    key = await hub.hub.create_license()
    configured = [f"Kitchen-1=tcp://127.0.0.1:{kitchen.port}#kitchen"]
    async with dashboard(hub.url, admin_token) as (app, pilot):
        async with box(hub, key, tmp_path / "box", configured):
            await ready(pilot, printers=1)
            agents = app.state.agents
            await wait_until(pilot, lambda: any(a.get("connected") for a in agents.values()))
            await pilot.press("A")
            await wait_until(pilot, lambda: isinstance(app.screen, AddPrinterForm))
            # One agent connected: it is chosen, the address field has the focus.
            await type_text(pilot, "http://127.0.0.1:9100")
            await type_text(pilot, "Bar")
            await type_text(pilot, "bar")
            said = app.screen.query_one("#printer-error")
            await wait_until(pilot, lambda: "use tcp://HOST:PORT" in str(said.render()))
            assert isinstance(app.screen, AddPrinterForm)  # nothing sent, still open
            app.screen.query_one("#printer-uri").focus()
            await pilot.pause()
            await type_text(pilot, f"tcp://127.0.0.1:{bar.port}", submit=False)
            await pilot.press("ctrl+s")
            await wait_until(
                pilot, lambda: not isinstance(app.screen, AddPrinterForm), what="the form closes"
            )
            await wait_until(pilot, lambda: status_of(app, "Bar") == "ONLINE", what="Bar online")
            assert any(t.startswith("Added Bar at station bar") for t in toasts(app))
            await select_row(pilot, "#printers", printer_id(app, "Bar"))
            await pilot.press("t")
            await bar.wait_for_receipts(1, timeout=10)

        await wait_until(pilot, lambda: status_of(app, "Bar") == "OFFLINE", what="Bar offline")
        async with box(hub, key, tmp_path / "box", configured) as agent:
            # The agent restarted with the same command line: Bar is driven again.
            await wait_until(
                pilot, lambda: status_of(app, "Bar") == "ONLINE", what="Bar back after the restart"
            )
            bar_id = printer_id(app, "Bar")

            # A ticket waits for Bar (paused): the hub refuses, the toast says what to do.
            await ops.call("printer:configure", {"printer_id": bar_id, "paused": True})
            job = await ops.call(
                "job:submit", {"printer_id": bar_id, "document": receipt_doc("T1")}
            )
            assert job["ok"], job
            await select_row(pilot, "#printers", bar_id)
            await pilot.press("D")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            asked = app.screen.question  # type: ignore[attr-defined]
            assert "Remove printer Bar?" in asked and "stays removed" in asked
            await pilot.press("y")
            await wait_until(
                pilot,
                lambda: any(
                    "Bar not removed: 1 ticket waiting" in t and "Cancel them or move" in t
                    for t in toasts(app)
                ),
                what="the refusal toast",
            )
            assert "Bar" in column(app, "#printers", "name")

            # Nothing waits any more: removed from its detail, which then closes.
            await ops.call("job:cancel", {"job_id": job["job"]["id"]})
            await select_row(pilot, "#printers", bar_id)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
            await pilot.press("delete")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await wait_until(pilot, lambda: not isinstance(app.screen, PrinterDetailScreen))
            await wait_until(
                pilot,
                lambda: column(app, "#printers", "name") == ["Kitchen-1"],
                what="Bar's row gone",
            )
            assert any("Bar removed" in t for t in toasts(app))
            await wait_until(
                pilot,
                lambda: [w.spec.name for w in agent.workers] == ["Kitchen-1"],
                what="the agent forgets Bar",
            )


async def test_the_palette_opens_the_form_which_says_when_no_agent_is_connected(
    hub: RunningHub, admin_token: str
) -> None:
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.focused, Input))
        await type_text(pilot, "Add a printer", submit=False)
        options = app.screen.query_one(OptionList)
        await wait_until(pilot, lambda: options.option_count > 0, what="the palette's hits")
        assert str(options.get_option_at_index(0).prompt).startswith("Add a printer")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AddPrinterForm))
        said = app.screen.query_one("#printer-error")
        assert "No agent is connected" in str(said.render())
        await pilot.press("ctrl+s")  # nothing to send through: says so, stays open
        await wait_until(pilot, lambda: "choose the agent" in str(said.render()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddPrinterForm))
