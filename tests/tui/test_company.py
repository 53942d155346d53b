"""The dashboard against a real company hub with two branch boxes syncing to it; the
link going offline; where a refused token came from; cancel in the palette."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from pm.cli import build_parser
from pm_hub.server import RunningHub, start_hub
from pm_tui.app import PrinterMasterApp
from pm_tui.config import resolve
from pm_tui.data.clock import FixedClock
from pm_tui.hub_link import HubLink
from tests.conftest import hub_settings
from tests.support.company_support import (
    BranchBox,
    branch_token,
    operator_token,
    start_branch_box,
    start_company,
)
from tests.support.sample_hub import SAMPLE_NOW, SampleHub
from tests.support.tui_support import (
    column,
    dashboard,
    select_row,
    shows,
    toasts,
    type_text,
    wait_until,
)


@pytest.fixture
async def company(tmp_path: Path) -> Any:
    running = await start_company(tmp_path / "company")
    yield running
    await running.stop()


@pytest.fixture
async def boxes(tmp_path: Path, company: RunningHub) -> Any:
    made = [
        await start_branch_box(
            tmp_path, "Harbour", company=company, token=branch_token(company, 1)
        ),
        await start_branch_box(
            tmp_path, "Station", company=company, token=branch_token(company, 2)
        ),
    ]
    yield made
    for box in made:
        await box.close()


async def test_branches_tab_follows_each_branch_live(
    company: RunningHub, boxes: list[BranchBox]
) -> None:
    """Against a company hub: one row per branch with its printers, problems and link;
    a paper-out at a branch shows in its row; a branch hub that stops shows offline
    since when; enter on a branch shows only its printers."""
    async with dashboard(company.url, operator_token(company)) as (app, pilot):
        await wait_until(
            pilot,
            lambda: column(app, "#printers", "status").count("ONLINE") == 4,
            what="4 printers online",
        )
        assert sorted(column(app, "#printers", "branch")) == ["Harbour"] * 2 + ["Station"] * 2
        await pilot.press("5")
        await wait_until(pilot, lambda: len(column(app, "#branches", "name")) == 3)
        names = column(app, "#branches", "name")
        assert names[0].endswith("All branches") and names[1:] == ["Harbour", "Station"]
        # Rows are redrawn a few times a second, not on every event.
        await wait_until(
            pilot,
            lambda: column(app, "#branches", "link")[1:] == ["● connected", "● connected"],
            what="both links up",
        )
        await wait_until(pilot, lambda: column(app, "#branches", "printers") == ["4", "2", "2"])

        await boxes[1].fleet.printers[0].set_state("paper_out")
        await wait_until(
            pilot,
            lambda: column(app, "#branches", "problems") == ["1", "0", "1"],
            what="Station's problem counted",
        )
        await wait_until(pilot, lambda: column(app, "#branches", "alerts")[2] == "1")

        await boxes[1].stop()
        await wait_until(
            pilot,
            lambda: column(app, "#branches", "link")[2].startswith("✕ offline since "),
            what="Station offline",
        )
        await select_row(pilot, "#branches", 2)
        await shows(pilot, "#branch-detail", "Station: offline since", "changes wait")
        await select_row(pilot, "#branches", 1)
        await shows(pilot, "#branch-detail", "Harbour: last sync", "up to date")

        await pilot.press("enter")
        await wait_until(pilot, lambda: app.branch_filter == 1)
        await pilot.press("1")
        await wait_until(pilot, lambda: len(column(app, "#printers", "name")) == 2)
        # The "Showing Harbour" toast holds the header's line for a few seconds first.
        await shows(pilot, "#topbar", "Harbour (branch 1)", timeout=20)


async def test_a_lost_hub_shows_offline_while_it_keeps_retrying(tmp_path: Path) -> None:
    """After a few failed tries the header says offline (not reconnecting for ever),
    the banner says since when; the dashboard still reconnects when the hub is back."""
    settings = hub_settings(tmp_path / "hub")
    running = await start_hub(settings)
    settings.port = running.port
    token = operator_token(running)
    link = HubLink(running.url, token, max_delay=0.3, offline_after=2)
    app = PrinterMasterApp(source=link)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.link_state.state == "connected")
            await running.stop()
            await wait_until(pilot, lambda: app.link_state.state == "offline", timeout=15)
            await shows(pilot, "#topbar", "✕ offline")
            # running.stop() is a planned stop: the banner says so, and since when.
            await shows(pilot, "#banner", "stopped on purpose", "since", "retrying")
            running = await start_hub(settings)
            await wait_until(pilot, lambda: app.link_state.state == "connected", timeout=20)
            await shows(pilot, "#topbar", "● hub")
    finally:
        await running.stop()


def test_a_token_from_pm_token_is_said_to_come_from_pm_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pm tui`` with only PM_TOKEN set: a refusal names PM_TOKEN, not --token."""
    monkeypatch.setenv("PM_TOKEN", "from-the-env")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    args = build_parser().parse_args(["tui", "--hub", "http://127.0.0.1:3001"])
    settings = resolve(hub=args.hub, token=args.token, env=os.environ, discover=lambda: None)
    assert settings.token == "from-the-env"
    assert settings.token_from == "PM_TOKEN"
    args = build_parser().parse_args(["tui", "--token", "given"])
    settings = resolve(hub=args.hub, token=args.token, env=os.environ, discover=lambda: None)
    assert (settings.token, settings.token_from) == ("given", "--token")


async def test_cancel_is_offered_for_the_same_jobs_by_key_and_palette() -> None:
    """A printing job cannot be cancelled: ``c`` says so without asking the hub, and
    the palette does not offer it; a dispatched job is offered."""
    source = SampleHub()
    app = PrinterMasterApp(source=source, clock=FixedClock(SAMPLE_NOW), health_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.jobs)
        source.replay()
        printing = next(j for j, job in source.jobs.items() if job["status"] == "printing")
        dispatched = max(j for j, job in source.jobs.items() if job["status"] == "dispatched")
        await wait_until(pilot, lambda: printing in app.state.jobs)
        await pilot.press("2")
        await select_row(pilot, "#jobs", printing)
        await pilot.press("c")
        await wait_until(pilot, lambda: any("too late to cancel" in t for t in toasts(app)))
        assert not [c for c in source.calls if c[0] == "job:cancel"]

        async def offered(query: str) -> list[str]:
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: isinstance(app.focused, Input))
            await type_text(pilot, query, submit=False)
            await pilot.pause(0.3)
            prompts = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
            await pilot.press("escape")
            return prompts

        assert not any(
            f"Cancel job #{printing}" in p for p in await offered(f"Cancel job #{printing}")
        )
        assert any(
            f"Cancel job #{dispatched}" in p for p in await offered(f"Cancel job #{dispatched}")
        )
