"""Bursts: many hub events at once become one UI pass that touches only changed rows."""

from __future__ import annotations

import random

from pm_core.protocol import PRINTER_STATUS_FIELDS, HubEvent
from pm_tui.app import PrinterMasterApp
from pm_tui.data.clock import FixedClock
from pm_tui.data.filters import STATUS_ORDER
from pm_tui.formatting import ago, status_text
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


def large_fleet(hub: SampleHub, count: int) -> list[int]:
    """``count`` more online printers at the sample hub, seen 5 s before its clock."""
    base = hub.printers[2]
    ids = list(range(100, 100 + count))
    for pid in ids:
        hub.printers[pid] = {
            **base,
            "id": pid,
            "name": f"P-{pid}",
            "status": "online",
            "last_seen": SAMPLE_NOW - 5,
        }
    return ids


async def test_a_few_changes_in_a_large_fleet_sort_only_those_rows() -> None:
    """2,000 printers, 5 of them run out of paper: those 5 move to the top, and the
    sort works out the order of those 5 only, not of all 2,000 rows again."""
    hub = SampleHub()
    ids = large_fleet(hub, 2000)
    app = PrinterMasterApp(source=hub, clock=FixedClock(SAMPLE_NOW), health_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(app.state.printers) == len(ids) + 5)
        table = app.screen.query_one("#printers", LiveTable)
        key = table.sort_key
        assert key is not None
        keys_computed = 0

        def counting(pid: int) -> object:
            nonlocal keys_computed
            keys_computed += 1
            return key(pid)

        table.order_by(counting)
        table.sort_now()
        keys_computed = 0
        out = ids[100:2000:400]
        entries = [{**app.state.printers[pid], "status": "paper_out"} for pid in out]
        hub.push(
            HubEvent.PRINTERS_UPDATE,
            {"printers": [{k: e[k] for k in PRINTER_STATUS_FIELDS} for e in entries]},
        )
        await wait_until(
            pilot,
            lambda: (
                all(app.state.printers[pid]["status"] == "paper_out" for pid in out)
                and not table.sort_wanted
            ),
        )
        ranks = [STATUS_ORDER[app.state.printers[pid]["status"]] for pid in table.row_ids]
        assert ranks == sorted(ranks)
        problems = {pid for pid in table.row_ids[:10] if pid in out}
        assert problems == set(out)
        assert keys_computed <= 2 * len(out)


async def test_ages_are_kept_current_on_screen_and_on_rows_scrolled_into_view() -> None:
    """Of 300 printers, the clock's tick rewrites the ages of the rows on screen only;
    a row scrolled into view shows its age at once."""
    hub = SampleHub()
    ids = large_fleet(hub, 300)
    clock = FixedClock(SAMPLE_NOW)
    app = PrinterMasterApp(source=hub, clock=clock, health_interval=0)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: len(app.state.printers) == len(ids) + 5)
        table = app.screen.query_one("#printers", LiveTable)
        assert "seen" in table.column_keys
        table.focus()
        clock._now = SAMPLE_NOW + 600
        writes = table.cell_writes
        on_screen = table.visible_row_ids[-1]
        expected = ago(SAMPLE_NOW - 5, SAMPLE_NOW + 600)
        await wait_until(pilot, lambda: table.cell_text(on_screen, "seen") == expected, timeout=5)
        assert table.cell_writes - writes <= 2 * 2 * len(table.visible_row_ids)
        await pilot.press("end")
        bottom = [pid for pid in table.visible_row_ids if pid in ids][-1]
        assert table.row_ids.index(bottom) > 30  # off screen before the scroll
        assert table.cell_text(bottom, "seen") == expected
