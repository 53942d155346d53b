"""Pruning in the background, so a branch box that runs for years keeps a file of the
same size: finished jobs' documents after ``job_document_retention_s`` (30 days), the
jobs and their history after ``job_retention_s`` (a year), printer status history
beyond ``printer_history_max_rows`` per printer (by age it goes with the link samples,
``pm_hub.health``), the agents' health reports, cleared alerts.

Each kind is pruned in batches of ``retention_batch_rows``, each batch its own small
write on the writer thread (never on the event loop), with the hub's other writes in
between. SQLite reuses the freed pages; a file made with ``auto_vacuum=INCREMENTAL``
(every file made since schema version 11) also gives back what is free beyond a reserve, a
few hundred pages at a time: no ``VACUUM``, no pause.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from pm_core.database import Database
from pm_core.sql import DatabaseUnavailable, Session
from pm_hub.config import HubSettings
from pm_hub.store import retention as retention_store

log = logging.getLogger(__name__)

#: Seconds after start before the first pruning run (the hub is busy starting).
FIRST_RUN_AFTER_S = 60.0
#: Free pages kept in the file for the next inserts (beyond: given back), and at least
#: this share of the file.
RESERVE_PAGES = 1024
RESERVE_SHARE = 0.10
#: Pages given back per write transaction.
PAGES_PER_STEP = 256


class RetentionKeeper:
    def __init__(self, settings: HubSettings, *, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._task: asyncio.Task[None] | None = None
        #: What the last run pruned, by kind (for the logs and the tests).
        self.last_run: dict[str, int] = {}

    def start(self, *, first_after: float = FIRST_RUN_AFTER_S) -> None:
        self._task = asyncio.create_task(self._loop(first_after))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self, first_after: float) -> None:
        await asyncio.sleep(first_after)
        while True:
            try:
                await self.run_once()
            except DatabaseUnavailable as exc:
                log.warning("pruning old data failed: %s", exc.message)
            except Exception:
                log.exception("pruning old data failed")
            await asyncio.sleep(self.settings.retention_interval_s)

    async def _batches(self, fn: Callable[[Session, int], int]) -> int:
        """``fn(session, limit)`` until it prunes fewer than ``limit`` rows."""
        limit = self.settings.retention_batch_rows
        total = 0
        while True:
            count = await self.db.write(lambda d: fn(d, limit))
            total += count
            if count < limit:
                return total
            await asyncio.sleep(0)  # the hub's own work goes first

    async def run_once(self, now: float | None = None) -> dict[str, int]:
        """Prune everything that is due at ``now``; returns rows pruned by kind."""
        s = self.settings
        at = time.time() if now is None else now
        documents_before = at - s.job_document_retention_s
        jobs_before = at - s.job_retention_s
        reports_before = at - s.health_report_retention_s
        alerts_before = at - s.alert_retention_s
        keep = s.printer_history_max_rows
        steps: dict[str, Callable[[Session, int], int]] = {
            "jobs": lambda d, n: retention_store.delete_jobs(d, before=jobs_before, limit=n),
            "documents": lambda d, n: retention_store.prune_documents(
                d, before=documents_before, limit=n
            ),
            "printer_history_over_cap": lambda d, n: retention_store.trim_printer_history(
                d, keep=keep, limit=n
            ),
            "health_reports": lambda d, n: retention_store.delete_health_reports(
                d, before=reports_before, limit=n
            ),
            "alerts": lambda d, n: retention_store.delete_cleared_alerts(
                d, before=alerts_before, limit=n
            ),
        }
        pruned = {kind: await self._batches(step) for kind, step in steps.items()}
        pruned["pages_returned"] = await self.give_back_pages()
        self.last_run = pruned
        if any(pruned.values()):
            log.info("pruned old data: %s", ", ".join(f"{k} {v}" for k, v in pruned.items() if v))
        return pruned

    async def give_back_pages(self) -> int:
        """Free pages beyond the reserve go back to the file system (SQLite files made
        with incremental auto-vacuum; older files keep and reuse them)."""
        returned = 0
        while True:
            pages, free, mode = await self.db.write(retention_store.free_pages)
            reserve = max(RESERVE_PAGES, int(pages * RESERVE_SHARE))
            if mode != 2 or free <= reserve:  # 2: INCREMENTAL
                return returned
            step = min(PAGES_PER_STEP, free - reserve)
            freed = await self.db.write(
                functools.partial(retention_store.give_back_pages, pages=step)
            )
            returned += freed
            if freed <= 0:
                return returned
            await asyncio.sleep(0)
