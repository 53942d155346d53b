"""Jobs screen and job detail: live updates, filters, cancel, reprint, trail, preview."""

from __future__ import annotations

from typing import Any

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.screens.dialogs import ConfirmDialog
from pm_tui.screens.job_detail import JobDetailScreen
from pm_tui.views.jobs import JobsView
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    select_row,
    shows,
    text,
    toasts,
    type_text,
    wait_until,
)


def printer_named(printers: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(p for p in printers if p["name"] == name)


async def registered(ops: OpsClient, count: int = 2) -> list[dict[str, Any]]:
    """The hub's printers, once the agent registered ``count`` of them online."""

    async def check() -> list[dict[str, Any]] | None:
        printers: list[dict[str, Any]] = (await ops.call("printers:list", {}))["printers"]
        online = [p for p in printers if p["status"] == "online"]
        return printers if len(online) >= count else None

    result: list[dict[str, Any]] = await eventually(check, what="printers registered")
    return result


async def submit(ops: OpsClient, printer_id: int, marker: str) -> dict[str, Any]:
    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc(marker)})
    assert ack["ok"], ack
    job: dict[str, Any] = ack["job"]
    return job


async def test_jobs_follow_job_updates_live(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """A job submitted elsewhere appears on top and walks to COMPLETED in place."""
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await pilot.press("2")
        assert app.screen.query_one("#views").current == "tab-jobs"  # type: ignore[attr-defined]
        printers = await registered(ops)
        first = await submit(ops, printer_named(printers, "Kitchen-1")["id"], "one")
        second = await submit(ops, printer_named(printers, "Bar")["id"], "two")
        await wait_until(
            pilot,
            lambda: column(app, "#jobs", "id")[:2] == [f"#{second['id']}", f"#{first['id']}"],
            what="both jobs, newest first",
        )
        await wait_until(
            pilot, lambda: column(app, "#jobs", "status")[:2] == ["COMPLETED", "COMPLETED"]
        )
        assert column(app, "#jobs", "printer")[:2] == ["Bar", "Kitchen-1"]
        assert column(app, "#jobs", "info")[0].startswith("took ")


async def test_jobs_filters_by_status_printer_and_time(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """``/status:cancelled`` and ``printer:Bar`` narrow the list; ``s`` cycles statuses."""
    printers = await registered(ops)
    kitchen = printer_named(printers, "Kitchen-1")["id"]
    await ops.call("printer:configure", {"printer_id": kitchen, "paused": True})
    waiting = await submit(ops, kitchen, "waits")
    await ops.call("job:cancel", {"job_id": waiting["id"]})
    done = await submit(ops, printer_named(printers, "Bar")["id"], "done")
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await wait_until(pilot, lambda: len(app.state.printers) == 2)
        await pilot.press("2")
        await wait_until(pilot, lambda: len(column(app, "#jobs", "id")) == 2)
        await pilot.press("slash")
        await type_text(pilot, "status:cancelled")
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [f"#{waiting['id']}"])
        await shows(pilot, "#jobs-filterline", "status:cancelled")

        await pilot.press("slash")
        await type_text(pilot, "printer:Bar since:1h")
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [f"#{done['id']}"])
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(column(app, "#jobs", "id")) == 2)

        view = app.screen.query_one(JobsView)
        await pilot.press("s")  # active: nothing is waiting
        assert view.query_spec.text == "status:active"
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [])
        await pilot.press("s")  # failed
        await pilot.press("s")  # completed
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [f"#{done['id']}"])

        await pilot.press("slash")
        await type_text(pilot, "status:nonsense")
        await wait_until(pilot, lambda: any("not understood" in t for t in toasts(app)))


async def test_cancel_and_reprint_ask_first_then_act(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """``c`` cancels a waiting job after ``y``; ``r`` prints a finished one again."""
    printers = await registered(ops)
    kitchen = printer_named(printers, "Kitchen-1")["id"]
    bar = printer_named(printers, "Bar")["id"]
    await ops.call("printer:configure", {"printer_id": kitchen, "paused": True})
    waiting = await submit(ops, kitchen, "waits")
    printed = await submit(ops, bar, "printed")
    sim_bar = next(p for p in fleet.printers if p.name == "Bar")
    await sim_bar.wait_for_receipts(1)
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await wait_until(pilot, lambda: len(app.state.printers) == 2)
        await pilot.press("2")
        await wait_until(pilot, lambda: len(column(app, "#jobs", "id")) == 2)

        await select_row(pilot, "#jobs", waiting["id"])
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # changed our mind: nothing happens
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.state.jobs[waiting["id"]]["status"] == "cancelled")
        got = await ops.call("job:get", {"job_id": waiting["id"]})
        assert got["job"]["status"] == "cancelled"

        await select_row(pilot, "#jobs", printed["id"])
        await pilot.press("r", "y")
        receipts = await sim_bar.wait_for_receipts(2)
        assert "ticket printed" in receipts[1].text
        reprint = await wait_until(
            pilot,
            lambda: [j for j in app.state.jobs.values() if j.get("reprint_of") == printed["id"]],
        )
        await wait_until(pilot, lambda: column(app, "#jobs", "id")[0] == f"#{reprint[0]['id']}")
        assert column(app, "#jobs", "info")[0].startswith(f"reprint of #{printed['id']}")


async def test_job_detail_shows_trail_and_ticket_preview(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """``enter`` on a job: its event trail and what the ticket says, as text."""
    printers = await registered(ops)
    job = await submit(ops, printer_named(printers, "Bar")["id"], "preview-me")
    await next(p for p in fleet.printers if p.name == "Bar").wait_for_receipts(1)
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await wait_until(pilot, lambda: len(app.state.printers) == 2)
        await pilot.press("2")
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [f"#{job['id']}"])
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await wait_until(pilot, lambda: column(app, "#jd-trail", "status")[-1:] == ["COMPLETED"])
        statuses = column(app, "#jd-trail", "status")
        assert statuses[0] == "QUEUED"
        await wait_until(pilot, lambda: "ticket preview-me" in text(app, "#jd-preview"))
        preview = text(app, "#jd-preview")
        assert "TABLE 12" in preview and "2x Burger" in preview and " cut " in preview
        await shows(pilot, "#jd-title", "COMPLETED")
        await pilot.press("escape")
        assert not isinstance(app.screen, JobDetailScreen)


async def test_job_detail_shows_what_the_printer_was_sent_and_v_shows_the_document(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """The detail of a printed job shows what the printer was sent, read back from
    the bytes (the simulated printer got the same lines); ``v`` switches to the
    document and back."""
    printers = await registered(ops)
    job = await submit(ops, printer_named(printers, "Bar")["id"], "sent-view")
    receipt = (await next(p for p in fleet.printers if p.name == "Bar").wait_for_receipts(1))[0]
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await wait_until(pilot, lambda: len(app.state.printers) == 2)
        await pilot.press("2")
        await wait_until(pilot, lambda: column(app, "#jobs", "id") == [f"#{job['id']}"])
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await shows(pilot, "#jd-preview-title", "Sent to printer")
        sent = [line.rstrip() for line in text(app, "#jd-preview").splitlines()]
        assert sent[: len(receipt.text.splitlines())] == receipt.text.splitlines()
        assert sent[-1].strip("-") == " cut "
        await pilot.press("v")
        await shows(pilot, "#jd-preview-title", "Document")
        document = text(app, "#jd-preview")
        assert "TABLE 12" in document and "ticket sent-view" in document
        assert document.splitlines()[0].strip() == "TABLE 12"  # centred, as the document says
        await pilot.press("v")
        await shows(pilot, "#jd-preview-title", "Sent to printer")
