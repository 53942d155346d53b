"""Getting accepted jobs to the agent that owns their printer, and recording what
the agent reports back.

Jobs go out per agent through one queue and one sender task, in the order they
were accepted, so a printer receives its jobs in order. A job is ``dispatched``
once the agent acknowledged it (it is then in the agent's spool). When an agent
(re)registers a printer, every unfinished job of that printer is sent again; the
agent deduplicates by job id, so redelivery never prints twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pm_hub.protocol import (
    FINAL_JOB_STATUSES,
    ErrorCode,
    HubEvent,
    Namespace,
    ProtocolError,
    new_correlation_id,
    ok_ack,
)
from pm_hub.protocol.errors import error_of
from pm_hub.protocol.validation import get_int, get_str, require_object
from pm_hub.store import jobs as job_store

if TYPE_CHECKING:
    from pm_hub.hub import AgentLink, Hub

log = logging.getLogger(__name__)

#: A dispatched job whose agent is gone is expired this long after its expiry
#: (the agent itself never starts a job past its expiry, so this is safe).
EXPIRY_GRACE_SECONDS = 30.0


@dataclass
class ActiveJob:
    id: int
    printer_id: int | None
    company_id: int
    branch_id: int
    status: str
    expires_at: float | None


class JobDispatcher:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.active: dict[int, ActiveJob] = {}
        self._depth: Counter[int] = Counter()
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._attaching: dict[int, list[dict[str, Any]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- bookkeeping -------------------------------------------------------------------

    async def load(self) -> None:
        for row in await self.hub.db.read(job_store.active_jobs):
            self._track(row)

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_expired())

    async def stop(self) -> None:
        tasks = [t for t in (self._sweeper, *self._senders.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)

    def active_count(self) -> int:
        return len(self.active)

    def depth(self, printer_id: int) -> int:
        return self._depth.get(printer_id, 0)

    def _track(self, row: dict[str, Any]) -> None:
        job = self.active.get(row["id"])
        if row["status"] in FINAL_JOB_STATUSES:
            if job is not None:
                del self.active[row["id"]]
                if job.printer_id is not None:
                    self._depth[job.printer_id] -= 1
            return
        if job is None:
            self.active[row["id"]] = ActiveJob(
                id=row["id"],
                printer_id=row["printer_id"],
                company_id=row["company_id"],
                branch_id=row["branch_id"],
                status=row["status"],
                expires_at=row["expires_at"],
            )
            if row["printer_id"] is not None:
                self._depth[row["printer_id"]] += 1
        else:
            job.status = row["status"]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending -----------------------------------------------------------------------

    def submitted(self, row: dict[str, Any]) -> None:
        """A job was just written (call synchronously after the write, before any await,
        so jobs leave in the order they were accepted)."""
        self._track(row)
        if row["status"] in FINAL_JOB_STATUSES or row["printer_id"] is None:
            return
        buffered = self._attaching.get(row["printer_id"])
        if buffered is not None:
            buffered.append(row)
            return
        printer = self.hub.printers.get(row["printer_id"])
        link = self.hub.agent_for_printer(printer) if printer else None
        if link is not None:
            self._enqueue(link, row)

    def _enqueue(self, link: AgentLink, row: dict[str, Any]) -> None:
        queue = self._queues.get(link.sid)
        if queue is None:
            queue = asyncio.Queue()
            self._queues[link.sid] = queue
            self._senders[link.sid] = asyncio.create_task(self._send_loop(link, queue))
        document = row["document"]
        queue.put_nowait(
            {
                "correlation_id": new_correlation_id("job"),
                "job": {
                    "id": row["id"],
                    "printer_id": row["printer_id"],
                    "document": json.loads(document) if isinstance(document, str) else document,
                    "copies": row["copies"],
                    "created_at": row["created_at"],
                    "expires_at": row["expires_at"],
                    "header": _failover_header(self.hub, row),
                },
            }
        )

    async def _send_loop(self, link: AgentLink, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            payload = await queue.get()
            job_id = payload["job"]["id"]
            if job_id not in self.active:
                continue  # cancelled or expired while waiting to be sent
            try:
                await self.hub.sio.emit(
                    HubEvent.PRINT_JOB,
                    payload,
                    to=link.sid,
                    namespace=Namespace.AGENT,
                    callback=lambda ack=None, j=job_id, c=payload["correlation_id"]: self._spawn(
                        self._delivered(link, j, c, ack)
                    ),
                )
            except Exception:
                log.exception("could not send job %s to agent %s", job_id, link.agent_id)

    async def printer_attached(self, link: AgentLink, printer_id: int) -> None:
        """An agent registered ``printer_id``: send it every unfinished job, oldest first."""
        if printer_id in self._attaching:
            return
        self._attaching[printer_id] = []
        try:
            rows = await self.hub.db.read(
                lambda d: job_store.active_jobs_for_printer(d, printer_id)
            )
            seen = {r["id"] for r in rows}
            buffered = [r for r in self._attaching[printer_id] if r["id"] not in seen]
            for row in sorted(rows + buffered, key=lambda r: r["id"]):
                self._enqueue(link, row)
            if rows:
                log.info("redelivering %d unfinished jobs to printer %s", len(rows), printer_id)
        finally:
            self._attaching.pop(printer_id, None)

    def agent_detached(self, link: AgentLink) -> None:
        self._queues.pop(link.sid, None)
        sender = self._senders.pop(link.sid, None)
        if sender is not None:
            sender.cancel()

    # -- recording ---------------------------------------------------------------------

    async def move(
        self,
        job_id: int,
        status: str,
        *,
        actor: str,
        reason: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        attempts: int | None = None,
    ) -> dict[str, Any] | None:
        """Write a status change (if it moves the job forward), then tell operators."""
        row = await self.hub.db.write(
            lambda d: job_store.transition(
                d,
                job_id,
                status,
                actor=actor,
                reason=reason,
                error_code=error_code,
                error_message=error_message,
                attempts=attempts,
            )
        )
        if row is not None:
            self._track(row)
            await self.hub.job_changed(row)
            if row["status"] in FINAL_JOB_STATUSES:
                log.info(
                    "job %s %s%s",
                    job_id,
                    row["status"],
                    f" ({row['error_message']})" if row["error_message"] else "",
                )
        return row

    async def _delivered(self, link: AgentLink, job_id: int, cid: str, ack: Any) -> None:
        if not isinstance(ack, dict):
            log.warning("[%s] agent %s sent a malformed ack for job %s", cid, link.agent_id, job_id)
            return
        actor = f"agent:{link.agent_id}"
        if ack.get("ok"):
            state = ack.get("status") or "dispatched"
            if state in FINAL_JOB_STATUSES:
                await self._apply_result(link, job_id, ack, actor=actor)
            elif state == "printing":
                await self.move(job_id, "printing", actor=actor, reason="printing")
            else:
                await self.move(job_id, "dispatched", actor=actor, reason="in the agent's spool")
            return
        error = error_of(ack)
        code = str(error.get("code", "internal"))
        message = str(error.get("message", "agent refused the job"))[:500]
        log.warning("[%s] agent %s refused job %s: %s", cid, link.agent_id, job_id, message)
        if code == ErrorCode.INVALID_PAYLOAD:
            await self.move(job_id, "failed", actor=actor, error_code=code, error_message=message)

    def _owned(self, link: AgentLink, job_id: int) -> ActiveJob | None:
        job = self.active.get(job_id)
        if job is None:
            return None
        if job.company_id != link.company_id or job.branch_id != link.branch_id:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"job {job_id} is not this agent's")
        return job

    async def on_job_status(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        job_id = get_int(data, "job_id", required=True, minimum=1)
        assert job_id is not None
        status = get_str(data, "status", required=True, choices=("dispatched", "printing"))
        attempts = get_int(data, "attempts", minimum=0)
        if self._owned(link, job_id) is None:
            return ok_ack(duplicate=True)
        assert status is not None
        await self.move(
            job_id, status, actor=f"agent:{link.agent_id}", reason=status, attempts=attempts
        )
        return ok_ack()

    async def on_job_result(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        job_id = get_int(data, "job_id", required=True, minimum=1)
        assert job_id is not None
        if self._owned(link, job_id) is None:
            row = await self.hub.job_row(job_id)
            if row is None or row["branch_id"] != link.branch_id:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"job {job_id} not found")
            return ok_ack(duplicate=True)
        await self._apply_result(link, job_id, data, actor=f"agent:{link.agent_id}")
        return ok_ack()

    async def _apply_result(
        self, link: AgentLink, job_id: int, data: dict[str, Any], *, actor: str
    ) -> None:
        attempts = get_int(data, "attempts", minimum=0)
        if data.get("ok") and data.get("status", "completed") == "completed":
            await self.move(job_id, "completed", actor=actor, reason="printed", attempts=attempts)
            return
        status = data.get("status")
        if status not in ("failed", "expired", "cancelled"):
            status = "failed"
        error = error_of(data)
        code = str(error.get("code") or status)[:50]
        message = str(error.get("message") or f"job {status} at the agent")[:500]
        await self.move(
            job_id,
            status,
            actor=actor,
            error_code=code,
            error_message=message,
            attempts=attempts,
        )

    # -- expiry -----------------------------------------------------------------------

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.expire_due()
            except Exception:
                log.exception("expiry sweep failed")

    async def expire_due(self, now: float | None = None) -> int:
        """End jobs that waited past their expiry and that no agent holds."""
        now = time.time() if now is None else now
        due = []
        for job in list(self.active.values()):
            if job.expires_at is None or job.expires_at > now:
                continue
            printer = self.hub.printers.get(job.printer_id) if job.printer_id else None
            agent_here = printer is not None and self.hub.agent_for_printer(printer) is not None
            if agent_here:
                continue  # the agent enforces expiry for jobs it holds
            grace = EXPIRY_GRACE_SECONDS if job.status == "dispatched" else 0.0
            if job.status in ("queued", "dispatched") and job.expires_at + grace <= now:
                due.append(job.id)
        for job_id in due:
            await self.move(
                job_id,
                "expired",
                actor="hub",
                error_code="expired",
                error_message="waited longer than its expiry; not printed",
            )
        return len(due)


def _failover_header(hub: Hub, row: dict[str, Any]) -> str | None:
    primary = row.get("failover_from")
    if primary is None:
        return None
    printer = hub.printers.get(primary)
    return f"BACKUP FROM {printer['name'] if printer else f'printer {primary}'}"
