"""Snapshot tests: every screen at 80x24 and 120x40, from the canned sample branch
(fixed clock, fixed ids), so the pictures only change when the dashboard does.

After an intended change: ``pytest tests/tui/test_snapshots.py --snapshot-update``,
then look at the SVGs under ``tests/tui/__snapshots__/test_snapshots/``. They depend
on the Textual version (pin it in the dev dependencies).
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.support.screenshots import SCENES, play, sample_app

pytest.importorskip("pytest_textual_snapshot", reason="pip install pytest-textual-snapshot")


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40)], ids=["60x20", "80x24", "120x40"])
@pytest.mark.parametrize("name", list(SCENES))
def test_screen(snap_compare: Any, name: str, size: tuple[int, int]) -> None:
    scene = SCENES[name]

    async def run_before(pilot: Pilot[Any]) -> None:
        await play(pilot, scene)

    assert snap_compare(sample_app(scene), terminal_size=size, run_before=run_before)
