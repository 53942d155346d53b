"""The Logs tab (issue 16, "Logs"): the hub's recent lines, live, filtered by level,
printer or job; from a job, ``l`` shows only that job's lines; a role below manager
is told why it sees none."""

from __future__ import annotations

import logging

import pytest

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from pm_tui.views.logs import LogsView
from tests.support.helpers import OpsClient
from tests.support.tui_support import column, dashboard, ready, select_row, shows, wait_until
from tests.tui.test_jobs import printer_named, registered, submit

hub_log = logging.getLogger("pm_hub.dispatch")


def logs_view(app: object) -> LogsView:
    return app.screen.query_one("#tab-logs", LogsView)  # type: ignore[attr-defined]


async def test_l_on_a_job_shows_only_that_jobs_lines(
    hub: RunningHub,
    admin_token: str,
    agent: Agent,
    fleet: SimulatorFleet,
    ops: OpsClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    printers = await registered(ops)
    kitchen = printer_named(printers, "Kitchen-1")["id"]
    first = await submit(ops, kitchen, "one")
    second = await submit(ops, printer_named(printers, "Bar")["id"], "two")
    async with dashboard(hub.url, admin_token) as (app, pilot):
        await ready(pilot)
        await pilot.press("2")
        await wait_until(pilot, lambda: app.screen.query_one("#jobs").has_row(first["id"]))  # type: ignore[attr-defined]
        await select_row(pilot, "#jobs", first["id"])
        await pilot.press("l")
        await wait_until(
            pilot,
            lambda: app.screen.query_one("#views").current == "tab-logs",  # type: ignore[attr-defined]
        )
        jobs = await wait_until(
            pilot, lambda: column(app, "#logs", "job"), what="the job's log lines"
        )
        assert set(jobs) == {f"#{first['id']}"}, jobs
        assert f"#{second['id']}" not in jobs
        await shows(pilot, "#logs-filterline", f"job #{first['id']}")
        # x clears the job filter: the other job's lines show too.
        await pilot.press("x")
        await wait_until(
            pilot,
            lambda: f"#{second['id']}" in column(app, "#logs", "job"),
            what="lines of every job",
        )
        # v raises the level: only warnings and errors, and new ones arrive live.
        for _ in range(2):  # debug -> info -> warning
            await pilot.press("v")
        await shows(pilot, "#logs-filterline", "level ≥ warning")
        hub_log.info("printer %d is fine", kitchen)
        hub_log.warning("printer %d is out of paper", kitchen)
        messages = await wait_until(
            pilot,
            lambda: [m for m in column(app, "#logs", "message") if "out of paper" in m],
            what="the warning pushed live",
        )
        assert messages == [f"printer {kitchen} is out of paper"]
        assert not any("is fine" in m for m in column(app, "#logs", "message"))
        assert column(app, "#logs", "level")[0] == "WARN"
        assert column(app, "#logs", "printer")[0] == "Kitchen-1"
        # p keeps only the selected line's printer.
        await pilot.press("p")
        await shows(pilot, "#logs-filterline", "printer Kitchen-1")
        assert set(column(app, "#logs", "printer")) == {"Kitchen-1"}


async def test_an_operator_is_told_the_logs_are_for_managers(
    hub: RunningHub, agent: Agent, fleet: SimulatorFleet
) -> None:
    assert hub.hub.tokens is not None
    token = hub.hub.tokens.create(role="operator", branch_ids=[1], sub="op-1")
    async with dashboard(hub.url, token) as (app, pilot):
        await ready(pilot)
        await pilot.press("6")
        await shows(pilot, "#log-detail", "for managers and admins", "you are operator")
        assert column(app, "#logs", "message") == []
