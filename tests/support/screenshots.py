"""Screenshots of every screen from the sample branch (recorded from a real hub,
replayed with a fixed clock and ids).

``python -m tests.support.screenshots docs/tui`` writes one SVG per screen (80x24, and the
printers screen at 120x40 too) for ``docs/tui.md``. The snapshot tests use the
same scenes, so the docs show what the tests pin.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from pm_tui.app import PrinterMasterApp
from pm_tui.data.clock import FixedClock
from pm_tui.screens.job_detail import JobDetailScreen
from pm_tui.screens.printer_detail import PrinterDetailScreen
from pm_tui.views.logs import LogsView
from pm_tui.widgets.tables import LiveTable
from tests.support.sample_hub import BRANCH_RECORDING, COMPANY_RECORDING, SAMPLE_NOW, SampleHub


@dataclass(frozen=True)
class Scene:
    """A screen to show: keys pressed after the sample loaded and replayed what the
    hub sent, what to wait for; ``company``: the company hub's recording."""

    title: str
    keys: tuple[str, ...] = ()
    ready: Callable[[PrinterMasterApp], Any] | None = None
    company: bool = False


def _detail_loaded(app: PrinterMasterApp) -> bool:
    return isinstance(app.screen, PrinterDetailScreen) and bool(app.screen.history)


def _logs_loaded(app: PrinterMasterApp) -> bool:
    return bool(app.screen.query_one("#tab-logs", LogsView).lines)


def _job_loaded(app: PrinterMasterApp) -> bool:
    return isinstance(app.screen, JobDetailScreen) and app.screen.detail is not None


SCENES: dict[str, Scene] = {
    "printers": Scene("Printers"),
    "printer-detail": Scene("Printer detail", ("enter",), _detail_loaded),
    "jobs": Scene("Jobs", ("2",)),
    "job-detail": Scene("Job detail", ("2", *["down"] * 6, "enter"), _job_loaded),
    "job-document": Scene("Job document", ("2", *["down"] * 6, "enter", "v"), _job_loaded),
    "alerts": Scene("Alerts", ("3",)),
    "agents": Scene("Agents and health", ("4",)),
    "branches": Scene("Branches", ("5",), company=True),
    "logs": Scene("Logs", ("6",), _logs_loaded),
    "help": Scene("Help", ("question_mark",)),
}


def sample_app(scene: Scene) -> PrinterMasterApp:
    return PrinterMasterApp(
        source=SampleHub(recording=COMPANY_RECORDING if scene.company else BRANCH_RECORDING),
        clock=FixedClock(SAMPLE_NOW),
        health_interval=0,
    )


async def _settle(pilot: Pilot[Any], check: Callable[[], Any], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the sample did not get there")
        await pilot.pause(0.02)
    await pilot.pause()


def _settled(app: PrinterMasterApp) -> bool:
    """Every hub event folded in and every table in order."""
    tables = [table for screen in app.screen_stack for table in screen.query(LiveTable)]
    return not app.buffer and not any(table.sort_wanted for table in tables)


async def play(pilot: Pilot[Any], scene: Scene) -> None:
    """Wait for the sample to load, replay what the hub sent after the dashboard
    connected, press the scene's keys, wait for its screen."""
    app = pilot.app
    assert isinstance(app, PrinterMasterApp)
    hub = app.link
    assert isinstance(hub, SampleHub)
    await _settle(pilot, lambda: app.state.printers and app.latency_ms is not None)
    hub.replay()
    await pilot.pause()
    await _settle(pilot, lambda: _settled(app))
    app.clear_notifications()  # the alerts and the test print the replay toasted
    if scene.keys:
        await pilot.press(*scene.keys)
    ready = scene.ready
    if ready is not None:
        await _settle(pilot, lambda: ready(app))
    app.redraw_now()  # summary lines are otherwise redrawn a few times a second
    await pilot.pause()


async def capture(scene: Scene, size: tuple[int, int]) -> str:
    app = sample_app(scene)
    async with app.run_test(size=size) as pilot:
        await play(pilot, scene)
        await pilot.wait_for_scheduled_animations()
        return app.export_screenshot(title=f"pm tui · {scene.title}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.screenshots", description=__doc__
    )
    parser.add_argument("out", type=Path, help="directory for the SVG files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [(name, scene, (80, 24)) for name, scene in SCENES.items()]
    shots.append(("printers-120x40", SCENES["printers"], (120, 40)))
    for name, scene, size in shots:
        path = args.out / f"{name}.svg"
        path.write_text(asyncio.run(capture(scene, size)))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
