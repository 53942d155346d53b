"""Ending jobs that waited past their expiry instead of printing them stale.

A job only the hub holds (never offered to an agent) is expired here. A job that may
be in an agent's spool is that agent's to expire (it never starts a job past its
expiry); the hub writes it off only when the agent has been gone past the expiry plus
a grace, or asks a connected agent that never acknowledged it whether it holds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pm_core.protocol import CANCELLABLE_JOB_STATUSES, HubEvent
from pm_core.sql import DatabaseUnavailable
from pm_hub.active_jobs import ActiveJobs
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import AgentLink, LiveState

log = logging.getLogger(__name__)

#: A dispatched job whose agent is gone is expired this long after its expiry
#: (the agent itself never starts a job past its expiry, so this is safe).
EXPIRY_GRACE_SECONDS = 30.0
#: Seconds between two looks for jobs past their expiry.
SWEEP_INTERVAL_S = 1.0


class JobExpiry:
    def __init__(self, *, state: LiveState, jobs: ActiveJobs, dispatcher: JobDispatcher) -> None:
        self.state = state
        self.jobs = jobs
        self.dispatcher = dispatcher
        #: Expired jobs the hub is asking their agent about.
        self._asking: set[int] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_expired())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        tasks = [t for t in (self._sweeper,) if t is not None]
        await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
        self._sweeper = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.expire_due()
            except DatabaseUnavailable as exc:
                log.warning("expiry sweep failed: %s", exc.message)
            except Exception:
                log.exception("expiry sweep failed")

    async def expire_due(self, now: float | None = None) -> int:
        """End jobs that waited past their expiry and that no agent holds."""
        now = time.time() if now is None else now
        due = []
        for job in list(self.jobs.active.values()):
            if job.expires_at is None or job.expires_at > now or job.status == "printing":
                # Printing has started (an agent's, or a CloudPRNT printer that fetched
                # it): its outcome comes from the printer, never from expiry.
                continue
            if not job.maybe_at_agent:
                # Still only the hub's (never offered to an agent): expire it here.
                due.append(job.id)
            elif job.status in CANCELLABLE_JOB_STATUSES:
                # Maybe in an agent's spool: that agent enforces expiry (and a connected
                # agent acknowledges or refuses it soon). Only when the agent has been gone
                # past expiry plus a grace is it written off here.
                printer = self.state.printers.get(job.printer_id) if job.printer_id else None
                link = self.state.agent_for_printer(printer) if printer is not None else None
                if job.expires_at + EXPIRY_GRACE_SECONDS > now:
                    continue
                if link is None:
                    due.append(job.id)
                elif job.status == "queued" and job.id not in self._asking:
                    # Offered long ago and never acknowledged although the agent is here
                    # (say the printer was paused since): ask whether it holds it.
                    self._asking.add(job.id)
                    self._spawn(self._expire_at_agent(link, job.id))
        for job_id in due:
            await self._expire(job_id)
        return len(due)

    async def _expire(self, job_id: int) -> None:
        await self.dispatcher.move(
            job_id,
            "expired",
            actor="hub",
            error_code="expired",
            error_message="waited longer than its expiry; not printed",
        )

    async def _expire_at_agent(self, link: AgentLink, job_id: int) -> None:
        try:
            ack = await self.dispatcher.ask_agent(
                link, HubEvent.JOB_CANCEL, {"job_id": job_id, "reason": "expired"}
            )
            if ack.get("ok") and (ack.get("cancelled") or ack.get("status") == "unknown"):
                await self._expire(job_id)
        finally:
            self._asking.discard(job_id)
