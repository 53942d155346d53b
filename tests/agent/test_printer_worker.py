"""A printer worker prints its spooled jobs in order, several in one go on the printer's
thread, and stops that run when an older job turns up or the printer needs a look."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pm_agent.open_port import open_port
from pm_agent.printer_uri import parse_printer_uri
from pm_agent.printer_worker import PrinterWorker
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.spool import JobSpool
from tests.support.helpers import eventually, receipt_doc


@contextlib.asynccontextmanager
async def printing_to(
    tmp_path: Path, printer: SimulatedPrinter
) -> AsyncIterator[tuple[PrinterWorker, JobSpool]]:
    """A started simulated printer, a spool and a worker printing from it to it."""
    await printer.start()
    spool = JobSpool(tmp_path / "spool.sqlite", synchronous="NORMAL")
    await asyncio.to_thread(spool.open)
    spec = parse_printer_uri(printer.address, name=printer.name)

    async def on_status(worker: PrinterWorker) -> None:
        return None

    worker = PrinterWorker(
        spec, open_port(spec), spool, on_status=on_status, on_outbox=lambda: None
    )
    worker.printer_id = 1
    worker.start()
    try:
        yield worker, spool
    finally:
        await worker.stop()
        await asyncio.to_thread(spool.close)
        await printer.stop()


def job(job_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "printer_id": 1, "document": receipt_doc(f"J{job_id}"), **extra}


def printed(printer: SimulatedPrinter) -> list[str]:
    return [re.findall(r"\bJ\d+\b", r.text)[0] for r in printer.receipts]


def states(tmp_path: Path) -> dict[int, tuple[str, str | None]]:
    with sqlite3.connect(tmp_path / "spool.sqlite") as conn:
        rows = conn.execute("SELECT job_id, state, error_code FROM spool_jobs").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


async def test_an_older_job_arriving_mid_run_prints_before_the_newer_ones(tmp_path: Path) -> None:
    printer = SimulatedPrinter("Slow", print_delay=0.15)
    async with printing_to(tmp_path, printer) as (worker, spool):
        for job_id in range(10, 15):
            await spool.accept(job(job_id))
        worker.wake()
        await printer.wait_for_receipts(1)  # J10 is out, J11 is on its way
        spooled, new = await spool.accept(job(5))  # redelivered after a reconnect, say
        assert new
        worker.wake(spooled.job_id)
        await printer.wait_for_receipts(6)
        order = printed(printer)
        assert sorted(order) == sorted(f"J{i}" for i in (5, 10, 11, 12, 13, 14))
        assert order.index("J5") <= 2, order  # not after the rest of the run
        await eventually(
            lambda: {s for s, _ in states(tmp_path).values()} == {"completed"}, timeout=5
        )


async def test_a_run_skips_expired_jobs_fails_unprintable_ones_and_prints_the_rest(
    tmp_path: Path,
) -> None:
    printer = SimulatedPrinter("Fast")
    async with printing_to(tmp_path, printer) as (worker, spool):
        await spool.accept(job(1))
        await spool.accept(job(2, expires_at=time.time() - 1))
        await spool.accept({**job(3), "document": {"blocks": [{"type": "image", "data": "%%"}]}})
        await spool.accept(job(4))
        worker.wake()
        await printer.wait_for_receipts(2)

        await eventually(lambda: states(tmp_path)[4][0] == "completed", timeout=5)
        assert printed(printer) == ["J1", "J4"]
        assert states(tmp_path) == {
            1: ("completed", None),
            2: ("expired", "expired"),
            3: ("failed", "render_error"),
            4: ("completed", None),
        }


async def test_paper_out_mid_run_stops_it_and_the_rest_wait_unmarked(tmp_path: Path) -> None:
    """The printer is asked before every ticket: once it is out of paper, the jobs left
    stay pending (the hub can move them) instead of being marked printing."""
    printer = SimulatedPrinter("Paper", print_delay=0.1)
    async with printing_to(tmp_path, printer) as (worker, spool):
        for job_id in range(1, 6):
            await spool.accept(job(job_id))
        worker.wake()
        await printer.wait_for_receipts(1)
        await printer.set_state("paper_out")
        await asyncio.sleep(0.5)
        now = [states(tmp_path)[j][0] for j in range(1, 6)]
        assert now.count("pending") >= 3, now
        assert "printing" not in now[2:], now
        await printer.set_state("online")
        await printer.wait_for_receipts(5)
        assert printed(printer) == [f"J{i}" for i in range(1, 6)]
