"""The unfinished jobs in memory: their status, printer and expiry, and how many wait
on each printer (the ``queue`` figure of every printer update).

The dispatcher tells it every row it writes (:meth:`ActiveJobs.track`); a job leaves
when it reaches a final status, and that is counted in the metrics.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pm_core.database import Database
from pm_core.protocol import FINAL_JOB_STATUSES, job_correlation_id
from pm_hub.metrics import HubMetrics
from pm_hub.store import jobs as job_store

log = logging.getLogger(__name__)


@dataclass
class ActiveJob:
    id: int
    printer_id: int | None
    company_id: int
    branch_id: int
    status: str
    expires_at: float | None
    station: str | None = None
    #: The job's correlation id (the same for every delivery): its log lines carry it.
    correlation_id: str | None = None
    printing_since: float | None = None
    #: The hub has offered it to an agent: even while ``queued`` (the ack may have been
    #: lost with the link, or with a hub crash), that agent may hold it in its spool.
    offered: bool = False

    @property
    def maybe_at_agent(self) -> bool:
        return self.status == "dispatched" or (self.status == "queued" and self.offered)


class ActiveJobs:
    def __init__(self, metrics: HubMetrics) -> None:
        self.metrics = metrics
        self.active: dict[int, ActiveJob] = {}
        self._depth: Counter[int] = Counter()
        #: Called with a printer's id when its count of unfinished jobs changes (the
        #: broadcaster then tells operators the printer's new ``queue``).
        self.on_depth_change: Callable[[int], None] | None = None

    async def load(self, db: Database) -> None:
        for row in await db.read(job_store.active_jobs):
            self.track(row)

    def count(self) -> int:
        return len(self.active)

    def correlation_id_of(self, job_id: int) -> str | None:
        job = self.active.get(job_id)
        return job.correlation_id if job is not None else None

    def depth(self, printer_id: int) -> int:
        """Unfinished jobs of a printer."""
        return self._depth.get(printer_id, 0)

    def held_by(self, printer_ids: set[int]) -> int:
        """Unfinished jobs of these printers that their agent holds in its spool (it
        took them: ``dispatched`` or ``printing``)."""
        return sum(
            1
            for j in self.active.values()
            if j.printer_id in printer_ids and j.status in ("dispatched", "printing")
        )

    def _depth_changed(self, printer_id: int) -> None:
        if self.on_depth_change is not None:
            try:
                self.on_depth_change(printer_id)
            except Exception:  # telling operators must never break the job's own path
                log.exception("announcing the queue of printer %s failed", printer_id)

    def waiting_on(self, printer_id: int) -> list[ActiveJob]:
        """Unfinished jobs of a printer, oldest first."""
        return sorted(
            (j for j in self.active.values() if j.printer_id == printer_id), key=lambda j: j.id
        )

    def track(self, row: dict[str, Any]) -> None:
        """Follow a job row just written (new, moved on, moved to another printer, ended)."""
        job = self.active.get(row["id"])
        if row["status"] in FINAL_JOB_STATUSES:
            if job is not None:
                metrics = self.metrics
                metrics.jobs_finished.labels(row["status"]).inc()
                if row["status"] == "completed" and job.printing_since is not None:
                    metrics.print_duration.observe(time.monotonic() - job.printing_since)
                del self.active[row["id"]]
                if job.printer_id is not None:
                    self._depth[job.printer_id] -= 1
                    self._depth_changed(job.printer_id)
            return
        if job is None:
            self.active[row["id"]] = ActiveJob(
                id=row["id"],
                printer_id=row["printer_id"],
                company_id=row["company_id"],
                branch_id=row["branch_id"],
                status=row["status"],
                expires_at=row["expires_at"],
                station=row["station"],
                correlation_id=job_correlation_id(row["id"], row["created_at"]),
                offered=row.get("offered_at") is not None,
            )
            if row["printer_id"] is not None:
                self._depth[row["printer_id"]] += 1
                self._depth_changed(row["printer_id"])
        else:
            if row["status"] == "printing" and job.status != "printing":
                job.printing_since = time.monotonic()
            job.status = row["status"]
            job.offered = row.get("offered_at") is not None
            if job.printer_id != row["printer_id"]:  # moved to another printer
                if job.printer_id is not None:
                    self._depth[job.printer_id] -= 1
                    self._depth_changed(job.printer_id)
                if row["printer_id"] is not None:
                    self._depth[row["printer_id"]] += 1
                    self._depth_changed(row["printer_id"])
                job.printer_id = row["printer_id"]
