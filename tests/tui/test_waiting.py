"""Why a ticket waits (Jobs tab, job detail, printer detail), the printer detail's
cancel-all, the Jobs tab keeping the newest and the stuck in view and filtering as you
type, and the smaller defects of issue 16: alert detail names, F1, the footer at 60x20,
one banner and no toasts when the hub stops."""

from __future__ import annotations

from pathlib import Path

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub, start_hub
from pm_tui.screens.dialogs import ConfirmDialog, HelpScreen
from pm_tui.screens.job_detail import JobDetailScreen
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.views.jobs import JobsView
from pm_tui.widgets.footer import DashboardFooter
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.tui_support import (
    column,
    dashboard,
    ready,
    rows,
    select_row,
    shows,
    text,
    toasts,
    type_text,
    wait_until,
)


async def printer_id(hub: RunningHub, name: str) -> int:
    await eventually(lambda: any(p["name"] == name for p in hub.hub.printers.values()))
    return next(p["id"] for p in hub.hub.printers.values() if p["name"] == name)


async def test_a_stuck_ticket_says_why_it_waits_everywhere(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    bar_sim = next(p for p in fleet.printers if p.name == "Bar")
    bar = await printer_id(hub, "Bar")
    async with dashboard(hub.url, admin_token, size=(160, 30)) as (app, pilot):
        await ready(pilot)
        await bar_sim.set_state("paper_out")
        await eventually(lambda: hub.hub.printers[bar]["status"] == "paper_out")
        since = app.clock.struct(hub.hub.printers[bar]["status_changed_at"])
        at = f"{since.tm_hour:02d}:{since.tm_min:02d}"
        reason = f"waiting: Bar paper out since {at}"
        # Beside a PRINTER column the printer's name is left out.
        short = f"waiting: paper out since {at}"
        jobs = []
        for n in range(2):
            ack = await ops.call(
                "job:submit", {"printer_id": bar, "document": receipt_doc(f"W{n}")}
            )
            jobs.append(ack["job"]["id"])
        await pilot.press("2")
        view = app.screen.query_one(JobsView)
        await wait_until(pilot, lambda: all(view.table.has_row(j) for j in jobs))
        await wait_until(
            pilot,
            lambda: short in view.table.cell_text(jobs[0], "info"),
            what=f"{short!r} (shown: {view.table.cell_text(jobs[0], 'info')!r})",
        )
        assert "expires" not in reason
        await wait_until(  # stuck first, newest first
            pilot, lambda: view.table.row_ids[:2] == sorted(jobs, reverse=True)
        )

        # The job detail says it too.
        await select_row(pilot, "#jobs", jobs[0])
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await shows(pilot, "#jd-info", reason)
        await pilot.press("escape")

        # The printer detail lists both first, and c cancels every waiting ticket.
        await pilot.press("1")
        await select_row(pilot, "#printers", bar)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await shows(pilot, "#pd-jobs-title", f"2 {reason}")
        await wait_until(
            pilot, lambda: sorted(column(app, "#pd-jobs", "id")[:2]) == [f"#{j}" for j in jobs]
        )
        assert all(short in r[-1] for r in rows(app, "#pd-jobs")[:2])
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        for job_id in jobs:
            await eventually(lambda j=job_id: j not in hub.hub.jobs.active)
        await shows(pilot, "#pd-jobs-title", "Nothing waiting")

        # Paused: the reason follows the printer's state at once.
        await bar_sim.set_state("online")
        await ops.call("printer:configure", {"printer_id": bar, "paused": True})
        ack = await ops.call("job:submit", {"printer_id": bar, "document": receipt_doc("P")})
        await pilot.press("escape", "2")
        await wait_until(
            pilot,
            lambda: "waiting: paused" in view.table.cell_text(ack["job"]["id"], "info"),
        )
        await ops.call("printer:configure", {"printer_id": bar, "paused": False})
        await wait_until(pilot, lambda: app.state.jobs[ack["job"]["id"]]["status"] == "completed")
        assert "waiting" not in view.table.cell_text(ack["job"]["id"], "info")


async def test_the_jobs_filter_works_as_you_type_and_a_reprint_comes_into_view(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    kitchen = await printer_id(hub, "Kitchen-1")
    bar = await printer_id(hub, "Bar")
    done = []
    for n in range(12):
        target = kitchen if n % 2 else bar
        ack = await ops.call("job:submit", {"printer_id": target, "document": receipt_doc(f"J{n}")})
        done.append(ack["job"]["id"])
    await eventually(lambda: not hub.hub.jobs.active, timeout=20)
    async with dashboard(hub.url, admin_token, size=(80, 24)) as (app, pilot):
        await ready(pilot)
        await pilot.press("2")
        view = app.screen.query_one(JobsView)
        await wait_until(pilot, lambda: view.table.row_count == 12)
        # Filter as you type: no Enter.
        await pilot.press("slash")
        await type_text(pilot, "printer:Bar", submit=False)
        await wait_until(pilot, lambda: set(column(app, "#jobs", "printer")) == {"Bar"})
        assert view.table.row_count == 6
        await pilot.press("escape")
        await wait_until(pilot, lambda: view.table.row_count == 12)

        # Down to the oldest ticket, reprint it: the new ticket is selected, in view.
        view.table.focus()
        await pilot.press("end")
        oldest = view.table.selected_id
        assert oldest == done[0]
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_until(pilot, lambda: (view.table.selected_id or 0) > max(done))
        assert view.table.cursor_row == 0
        assert view.table.scroll_offset.y == 0


async def test_alert_detail_names_the_printer(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    bar_sim = next(p for p in fleet.printers if p.name == "Bar")
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await bar_sim.set_state("paper_out")
        await wait_until(pilot, lambda: app.state.open_alerts())
        await pilot.press("3")
        detail = await shows(pilot, "#alert-detail", "paper_out · Bar")
        assert "printer:" not in detail


async def test_f1_is_help_and_the_narrow_footer_keeps_help_and_quit(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    async with dashboard(hub.url, admin_token, size=(60, 20)) as (app, pilot):
        await ready(pilot)
        footer = app.screen.query_one(DashboardFooter)
        await pilot.pause(0.2)
        keys = [str(getattr(k, "action", "")) for k in footer.children]
        assert keys[:2] == ["help", "quit"]
        assert "palette" not in " ".join(keys)
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_a_hub_that_stops_shows_one_banner_and_no_printer_toasts(tmp_path: Path) -> None:
    """Only the hub went away: the printers are not offline, no toast per printer."""
    settings = hub_settings(tmp_path / "hub")
    running = await start_hub(settings)
    assert running.hub.tokens is not None
    token = running.hub.tokens.create(role="admin")
    async with SimulatorFleet.start(
        count=2, names=["Kitchen-1", "Bar"], control_port=None
    ) as fleet:
        key = await running.hub.create_license()
        agent = Agent(
            hub_url=running.url,
            license_key=key,
            data_dir=tmp_path / "agent",
            printers=[
                parse_printer_spec(f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen")
                for p in fleet.printers
            ],
            name="agent",
            poll_interval=0.2,
            spool_synchronous="NORMAL",
        )
        await agent.start()
        try:
            async with dashboard(running.url, token) as (app, pilot):
                await ready(pilot)
                await running.stop()
                await wait_until(
                    pilot,
                    lambda: app.link_state.state in ("reconnecting", "offline"),
                    what=f"reconnecting ({app.link_state})",
                )
                await pilot.pause(1.0)
                assert app.screen.query_one("#banner").has_class("visible")
                assert not [t for t in toasts(app) if "offline" in t], toasts(app)
                assert column(app, "#printers", "status") == ["ONLINE", "ONLINE"]
                assert "alert" not in text(app, "#topbar") or "no alerts" in text(app, "#topbar")
                # Still away after the retries: the banner still says it was planned.
                await wait_until(
                    pilot,
                    lambda: app.link_state.state == "offline",
                    timeout=30,
                    what=f"offline ({app.link_state})",
                )
                assert "stopped on purpose" in app.link_state.message, app.link_state
        finally:
            await agent.stop()


async def test_b_moves_every_waiting_ticket_to_the_station_backup(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """Bar is out of paper with two tickets; ``b`` in its detail moves both to
    Kitchen-1 (its station's backup): each is cancelled on Bar and printed once there."""
    bar_sim = next(p for p in fleet.printers if p.name == "Bar")
    kitchen_sim = next(p for p in fleet.printers if p.name == "Kitchen-1")
    bar = await printer_id(hub, "Bar")
    async with dashboard(hub.url, admin_token, size=(120, 30)) as (app, pilot):
        await ready(pilot)
        await bar_sim.set_state("paper_out")
        await eventually(lambda: hub.hub.printers[bar]["status"] == "paper_out")
        jobs = []
        for n in range(2):
            doc = receipt_doc(f"MOVE-{n}")
            ack = await ops.call("job:submit", {"printer_id": bar, "document": doc})
            jobs.append(ack["job"]["id"])
        await wait_until(pilot, lambda: hub.hub.jobs.depth(bar) == 2)
        await select_row(pilot, "#printers", bar)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PrinterDetailScreen))
        await shows(pilot, "#pd-jobs-title", "2 waiting")
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        receipts = await kitchen_sim.wait_for_receipts(2, timeout=15)
        assert sorted(r.text.count("MOVE-") for r in receipts) == [1, 1]
        for job_id in jobs:
            got = await ops.call("job:get", {"job_id": job_id})
            assert got["job"]["status"] == "cancelled"
        await shows(pilot, "#pd-jobs-title", "Nothing waiting")
        await wait_until(pilot, lambda: hub.hub.jobs.depth(bar) == 0)
        assert bar_sim.receipts == []
