"""Bursts: many hub events at once become one UI pass that touches only changed rows."""

from __future__ import annotations

import random

from pm_core.protocol import PRINTER_STATUS_FIELDS, HubEvent
from pm_tui.app import PrinterMasterApp
from pm_tui.data.clock import FixedClock
from pm_tui.data.filters import STATUS_ORDER
from pm_tui.formatting import status_text
from pm_tui.widgets.tables import LiveTable
from tests.support.sample_hub import SAMPLE_NOW, SampleHub
from tests.support.tui_support import wait_until


async def test_a_burst_is_coalesced_and_never_rebuilds_the_table() -> None:
    """2,000 status changes for 300 printers arrive in one go (status-only entries in
    printers:update batches, as a hub sends them): one flush, no rebuild, every row
    right; the problems are sorted to the top within half a second."""
    hub = SampleHub()
    base = hub.printers[2]
    for pid in range(100, 400):
        hub.printers[pid] = {**base, "id": pid, "name": f"P-{pid}", "status": "online"}
    app = PrinterMasterApp(source=hub, clock=FixedClock(SAMPLE_NOW), health_interval=0)
    flushes = 0
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(app.state.printers) == 305)
        table = app.screen.query_one("#printers", LiveTable)
        rebuilds = table.rebuilds

        def count(_changes: object) -> None:
            nonlocal flushes
            flushes += 1

        app.on_changes_shown = count
        rng = random.Random(3)
        final: dict[int, str] = {}
        for _ in range(200):
            batch = []
            for _ in range(10):
                pid = rng.randrange(100, 400)
                status = rng.choice(["online", "paper_out", "offline", "paper_low"])
                final[pid] = status
                entry = {**app.state.printers[pid], "status": status}
                batch.append({key: entry[key] for key in PRINTER_STATUS_FIELDS})
            hub.push(HubEvent.PRINTERS_UPDATE, {"printers": batch})
        await pilot.pause()
        assert flushes == 1
        assert table.rebuilds == rebuilds
        for pid, status in final.items():
            assert table.cell_text(pid, "status") == status_text(status).plain
        await wait_until(pilot, lambda: table.sort_wanted is False, timeout=1)
        ranks = [STATUS_ORDER[app.state.printers[pid]["status"]] for pid in table.row_ids]
        assert ranks == sorted(ranks)
