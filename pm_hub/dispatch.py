"""Getting accepted jobs to the agent that owns their printer, and recording what
the agent reports back.

Jobs go out per agent through one queue and one sender task, in the order they
were accepted, so a printer receives its jobs in order. A job is ``dispatched``
once the agent acknowledged it (it is then in the agent's spool). When an agent
(re)registers a printer, every unfinished job of that printer is sent again; the
agent deduplicates by job id, so redelivery never prints twice.

The unfinished jobs themselves are followed in ``pm_hub.active_jobs``; ending those
that waited too long is ``pm_hub.job_expiry``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from pm_core.database import Database
from pm_core.logs import correlation, start_background
from pm_core.protocol import (
    CANCELLABLE_JOB_STATUSES,
    FINAL_JOB_STATUSES,
    ErrorCode,
    HubEvent,
    Namespace,
    ProtocolError,
    job_correlation_id,
    ok_ack,
)
from pm_core.protocol.errors import error_of, known_code
from pm_core.protocol.records import PrintJobMessage, print_job_message
from pm_core.protocol.validation import get_int, get_str, require_object
from pm_core.sent_preview import validate_sent_preview
from pm_hub.active_jobs import ActiveJob, ActiveJobs
from pm_hub.alerts import AlertBook
from pm_hub.broadcast import Broadcaster
from pm_hub.live_state import AgentLink, LiveState
from pm_hub.metrics import HubMetrics
from pm_hub.store import jobs as job_store

log = logging.getLogger(__name__)

#: Final statuses of a job that did not print (an agent's result names one of these).
UNPRINTED_FINAL_STATUSES = FINAL_JOB_STATUSES - {"completed"}
#: What an agent may report about a job still under way (``print:job:status``).
PROGRESS_STATUSES = ("dispatched", "printing")
#: Job outcomes that open an alert about their printer (a completed job clears them).
OUTCOME_ALERTS = {"failed": "job_failed", "expired": "job_expired"}


class JobDispatcher:
    def __init__(
        self,
        *,
        db: Database,
        state: LiveState,
        jobs: ActiveJobs,
        broadcaster: Broadcaster,
        alerts: AlertBook,
        metrics: HubMetrics,
    ) -> None:
        self.db = db
        self.state = state
        self.jobs = jobs
        self.broadcaster = broadcaster
        self.alerts = alerts
        self.metrics = metrics
        self._queues: dict[str, asyncio.Queue[PrintJobMessage]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._attaching: dict[int, list[dict[str, Any]]] = {}
        #: Jobs sent to an agent whose delivery ack has not come back yet.
        self._in_flight: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- bookkeeping -------------------------------------------------------------------

    async def stop(self) -> None:
        tasks = list(self._senders.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)

    def in_flight_count(self) -> int:
        """Jobs sent to an agent whose delivery ack has not come back yet."""
        return sum(1 for flight in self._in_flight.values() if not flight.done())

    async def _job_row(self, job_id: int) -> dict[str, Any] | None:
        return await self.db.read(lambda d: job_store.get_job(d, job_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending -----------------------------------------------------------------------

    def submitted(self, row: dict[str, Any]) -> None:
        """A job was just written (call synchronously after the write, before any await,
        so jobs leave in the order they were accepted)."""
        self.jobs.track(row)
        if row["status"] in FINAL_JOB_STATUSES or row["printer_id"] is None:
            return
        buffered = self._attaching.get(row["printer_id"])
        if buffered is not None:
            buffered.append(row)
            return
        link = self._sender_for(row["printer_id"])
        if link is not None:
            self._enqueue(link, row)

    def _sender_for(self, printer_id: int | None) -> AgentLink | None:
        """The connected agent a job for ``printer_id`` would be sent to right now."""
        printer = self.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None or printer["paused"]:
            return None
        return self.state.agent_for_printer(printer)

    def will_offer(self, printer_id: int | None) -> bool:
        """Whether a job accepted now for ``printer_id`` goes straight to an agent (the
        store then notes the offer in the same write as the job)."""
        return self._sender_for(printer_id) is not None

    def _enqueue(self, link: AgentLink, row: dict[str, Any]) -> None:
        queue = self._queues.get(link.sid)
        if queue is None:
            queue = asyncio.Queue()
            self._queues[link.sid] = queue
            # Lives as long as the agent's link: none of the request's id that made it.
            self._senders[link.sid] = start_background(self._send_loop(link, queue))
        document = row["document"]
        job = self.jobs.active.get(row["id"])
        queue.put_nowait(
            print_job_message(
                correlation_id=job.correlation_id
                if job is not None and job.correlation_id
                else job_correlation_id(row["id"], row["created_at"]),
                job_id=row["id"],
                printer_id=row["printer_id"],
                document=json.loads(document) if isinstance(document, str) else document,
                copies=row["copies"],
                created_at=row["created_at"],
                expires_at=row["expires_at"],
                header=_failover_header(self.state, row),
            )
        )

    async def _send_loop(self, link: AgentLink, queue: asyncio.Queue[PrintJobMessage]) -> None:
        while True:
            payload = await queue.get()
            job_id = payload["job"]["id"]
            if job_id not in self.jobs.active:
                continue  # cancelled or expired while waiting to be sent
            flight = self._in_flight.get(job_id)
            if flight is None or flight.done():
                flight = self._in_flight[job_id] = asyncio.get_running_loop().create_future()
            cid = payload["correlation_id"]
            sent_at = time.monotonic()
            with correlation(cid):
                log.debug("job %s sent to agent %s", job_id, link.agent_id)
                try:
                    await self.broadcaster.emit(
                        HubEvent.PRINT_JOB,
                        payload,
                        to=link.sid,
                        namespace=Namespace.AGENT,
                        callback=lambda ack=None, j=job_id, c=cid, t=sent_at: self._spawn(
                            self._delivered(link, j, c, t, ack)
                        ),
                    )
                except Exception:
                    log.exception("could not send job %s to agent %s", job_id, link.agent_id)
                    if self._in_flight.get(job_id) is flight:
                        del self._in_flight[job_id]
                    if not flight.done():
                        flight.set_result(None)

    async def printer_attached(self, link: AgentLink, printer_id: int) -> None:
        """An agent registered ``printer_id``: send it every unfinished job, oldest first."""
        printer = self.state.printers.get(printer_id)
        if printer_id in self._attaching or printer is None or printer["paused"]:
            return
        self._attaching[printer_id] = []
        try:
            rows = await self.db.read(lambda d: job_store.active_jobs_for_printer(d, printer_id))
            seen = {r["id"] for r in rows}
            unoffered = [r["id"] for r in rows if r["offered_at"] is None]
            if unoffered:
                await self.db.write(lambda d: job_store.mark_offered(d, unoffered))
                for job_id in unoffered:
                    if job_id in self.jobs.active:
                        self.jobs.active[job_id].offered = True
            buffered = [r for r in self._attaching[printer_id] if r["id"] not in seen]
            for row in sorted(rows + buffered, key=lambda r: r["id"]):
                self._enqueue(link, row)
            if rows:
                log.info("redelivering %d unfinished jobs to printer %s", len(rows), printer_id)
        finally:
            self._attaching.pop(printer_id, None)

    def agent_detached(self, link: AgentLink) -> None:
        for job_id, flight in list(self._in_flight.items()):
            job = self.jobs.active.get(job_id)
            if job is not None and job.printer_id in link.printer_ids and not flight.done():
                flight.set_result(None)  # that ack will never come
                del self._in_flight[job_id]
        self._queues.pop(link.sid, None)
        sender = self._senders.pop(link.sid, None)
        if sender is not None:
            sender.cancel()

    # -- recording ---------------------------------------------------------------------

    async def ask_agent(
        self,
        link: AgentLink,
        event: str,
        payload: dict[str, Any],
        timeout: float = 5.0,
        *,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """A request to an agent (``job:cancel``, ``job:release``, ``printer:configure``);
        an error ack if it does not answer. For a job, its correlation id goes along (and
        into the logs)."""
        cid = correlation_id or self.jobs.correlation_id_of(payload.get("job_id", 0))
        if cid is not None:
            payload = {**payload, "correlation_id": cid}
        started = time.monotonic()
        with correlation(cid):
            try:
                ack = await self.broadcaster.call(
                    event, payload, to=link.sid, namespace=Namespace.AGENT, timeout=timeout
                )
            except Exception as exc:
                log.warning("agent %s did not answer %s: %s", link.agent_id, event, exc)
                return {"ok": False, "error": {"code": "offline", "message": f"agent: {exc}"}}
            self.metrics.observe_roundtrip(event, time.monotonic() - started)
            log.debug("agent %s answered %s: %s", link.agent_id, event, ack)
        if isinstance(ack, dict) and isinstance(ack.get("ok"), bool):
            return ack
        log.warning("agent %s answered %s with %r", link.agent_id, event, ack)
        message = f"agent {link.agent_id} sent an answer to {event} that is not understood"
        return {"ok": False, "error": {"code": "offline", "message": message}}

    async def cancel(self, job_id: int, *, actor: str, reason: str) -> dict[str, Any]:
        """Stop a job that has not started printing; returns the job row.

        Raises ProtocolError ``conflict`` when it is printing or finished, ``offline``
        when the job sits in the spool of an agent that is not connected."""
        await self.settle_in_flight(job_id)
        job = self.jobs.active.get(job_id)
        if job is None:
            row = await self._job_row(job_id)
            status = row["status"] if row else "unknown"
            raise ProtocolError(ErrorCode.CONFLICT, f"job {job_id} is already {status}")
        if job.status == "printing":
            raise ProtocolError(ErrorCode.CONFLICT, f"job {job_id} is printing; too late to cancel")
        if job.maybe_at_agent:
            printer = self.state.printers.get(job.printer_id) if job.printer_id else None
            link = self.state.agent_for_printer(printer) if printer else None
            if link is None:
                raise ProtocolError(
                    ErrorCode.OFFLINE,
                    f"job {job_id} may be in the spool of an agent that is not connected; "
                    "it cannot be stopped until the agent is back",
                )
            ack = await self.ask_agent(
                link, HubEvent.JOB_CANCEL, {"job_id": job_id, "reason": reason}
            )
            if not ack.get("ok"):
                raise ProtocolError(
                    known_code(error_of(ack).get("code"), ErrorCode.OFFLINE),
                    f"the agent could not cancel job {job_id}: {error_of(ack).get('message')}",
                )
            # "unknown": the agent never had it, so the hub alone decides.
            if not ack.get("cancelled") and ack.get("status") != "unknown":
                raise ProtocolError(
                    ErrorCode.CONFLICT,
                    f"job {job_id} is already {ack.get('status', 'printing')} at the agent",
                )
        row = await self.move(
            job_id,
            "cancelled",
            actor=actor,
            error_code="cancelled",
            error_message=reason,
        )
        if row is None:
            row = await self._job_row(job_id)
            assert row is not None
            if row["status"] != "cancelled":
                raise ProtocolError(ErrorCode.CONFLICT, f"job {job_id} is already {row['status']}")
        return row

    async def reassign(
        self, job_id: int, printer_id: int, *, failover_from: int | None, actor: str, reason: str
    ) -> dict[str, Any] | None:
        """Move a waiting job to another printer (failover); it starts again as queued."""
        await self.settle_in_flight(job_id)
        job = self.jobs.active.get(job_id)
        if job is None or job.status not in CANCELLABLE_JOB_STATUSES:
            return None
        if job.maybe_at_agent:
            printer = self.state.printers.get(job.printer_id) if job.printer_id else None
            link = self.state.agent_for_printer(printer) if printer else None
            if link is None:
                return None  # maybe in the spool of an unreachable agent: it stays there
            ack = await self.ask_agent(link, HubEvent.JOB_RELEASE, {"job_id": job_id})
            if not ack.get("released") and not (ack.get("ok") and ack.get("status") == "unknown"):
                return None  # started printing meanwhile, or the agent did not answer
        offered = self.will_offer(printer_id)
        row = await self.db.write(
            lambda d: job_store.reassign(
                d,
                job_id,
                printer_id,
                failover_from=failover_from,
                actor=actor,
                reason=reason,
                offered=offered,
            )
        )
        if row is None:
            return None
        self.jobs.track(row)
        await self.broadcaster.job_changed(row)
        self.submitted(row)
        return row

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
        sent_preview: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Write a status change (if it moves the job forward), with what the printer
        was sent (a checked ``sent_preview``) if given, then tell operators."""
        preview_json = (
            json.dumps(sent_preview, separators=(",", ":"), ensure_ascii=False)
            if sent_preview is not None
            else None
        )

        def write(d: Any) -> dict[str, Any] | None:
            moved = job_store.transition(
                d,
                job_id,
                status,
                actor=actor,
                reason=reason,
                error_code=error_code,
                error_message=error_message,
                attempts=attempts,
            )
            if moved is not None and preview_json is not None:
                job_store.store_sent_preview(d, job_id, preview_json)
            return moved

        row = await self.db.write(write)
        if row is not None:
            self.jobs.track(row)
            await self.broadcaster.job_changed(row)
            if row["status"] in FINAL_JOB_STATUSES:
                # A job that printed is routine (debug); anything else is worth a line.
                level = logging.DEBUG if row["status"] == "completed" else logging.INFO
                with correlation(job_correlation_id(row["id"], row["created_at"])):
                    log.log(
                        level,
                        "job %s %s%s",
                        job_id,
                        row["status"],
                        f" ({row['error_message']})" if row["error_message"] else "",
                    )
                    await self._job_outcome_alerts(row)
            elif log.isEnabledFor(logging.DEBUG):
                with correlation(job_correlation_id(row["id"], row["created_at"])):
                    log.debug("job %s %s (by %s)", job_id, row["status"], actor)
        return row

    async def _job_outcome_alerts(self, row: dict[str, Any]) -> None:
        printer = self.state.printers.get(row["printer_id"]) if row["printer_id"] else None
        if printer is None:
            return
        subject = f"printer:{printer['id']}"
        alerts = self.alerts
        if row["status"] == "completed":
            for kind in OUTCOME_ALERTS.values():
                await alerts.clear(kind, subject)
        elif row["status"] in OUTCOME_ALERTS:
            kind = OUTCOME_ALERTS[row["status"]]
            await alerts.raise_alert(
                kind,
                subject,
                f"job {row['id']} {row['status']} on {printer['name']}: {row['error_message']}",
                company_id=row["company_id"],
                branch_id=row["branch_id"],
                details={"job_id": row["id"], "printer_id": printer["id"]},
            )

    async def _delivered(
        self, link: AgentLink, job_id: int, cid: str, sent_at: float, ack: Any
    ) -> None:
        self.metrics.observe_roundtrip("job", time.monotonic() - sent_at)
        try:
            with correlation(cid):
                await self._record_delivery(link, job_id, cid, ack)
        finally:
            flight = self._in_flight.pop(job_id, None)
            if flight is not None and not flight.done():
                flight.set_result(None)

    async def settle_in_flight(self, job_id: int, timeout: float = 5.0) -> None:
        """Wait until a job on its way to an agent has been acknowledged (or given up)."""
        flight = self._in_flight.get(job_id)
        if flight is not None and not flight.done():
            try:
                await asyncio.wait_for(asyncio.shield(flight), timeout)
            except TimeoutError:
                self._in_flight.pop(job_id, None)

    async def _record_delivery(self, link: AgentLink, job_id: int, cid: str, ack: Any) -> None:
        if not isinstance(ack, dict):
            log.warning("[%s] agent %s sent a malformed ack for job %s", cid, link.agent_id, job_id)
            return
        actor = f"agent:{link.agent_id}"
        if ack.get("ok") and job_id not in self.jobs.active and ack.get("status") == "dispatched":
            # Cancelled or expired while it was on its way: take it back from the spool.
            await self.ask_agent(
                link,
                HubEvent.JOB_CANCEL,
                {"job_id": job_id, "reason": "cancelled"},
                correlation_id=cid,
            )
            return
        if ack.get("ok"):
            state = ack.get("status") or "dispatched"
            log.debug("job %s in the spool of agent %s (%s)", job_id, link.agent_id, state)
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
        """The unfinished job ``job_id`` if ``link``'s agent holds it: the job's printer
        is driven by that agent (a result from any other agent, even of the same
        branch, would end a job that never printed). None when it is finished."""
        job = self.jobs.active.get(job_id)
        if job is None:
            return None
        printer = self.state.printers.get(job.printer_id) if job.printer_id else None
        if (
            job.company_id != link.company_id
            or job.branch_id != link.branch_id
            or printer is None
            or printer["agent_id"] != link.agent_id
        ):
            log.warning("agent %s reported on job %s it does not hold", link.agent_id, job_id)
            raise ProtocolError(ErrorCode.FORBIDDEN, f"job {job_id} is not this agent's")
        return job

    async def on_job_status(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        job_id = get_int(data, "job_id", required=True, minimum=1)
        assert job_id is not None
        status = get_str(data, "status", required=True, choices=PROGRESS_STATUSES)
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
            row = await self._job_row(job_id)
            if row is None or row["branch_id"] != link.branch_id:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"job {job_id} not found")
            return ok_ack(duplicate=True)
        preview, refused = _checked_preview(job_id, data.get("sent_preview"))
        await self._apply_result(
            link, job_id, data, actor=f"agent:{link.agent_id}", sent_preview=preview
        )
        return ok_ack(sent_preview_refused=refused) if refused else ok_ack()

    async def _apply_result(
        self,
        link: AgentLink,
        job_id: int,
        data: dict[str, Any],
        *,
        actor: str,
        sent_preview: dict[str, Any] | None = None,
    ) -> None:
        attempts = get_int(data, "attempts", minimum=0)
        if data.get("ok") and data.get("status", "completed") == "completed":
            await self.move(
                job_id,
                "completed",
                actor=actor,
                reason="printed",
                attempts=attempts,
                sent_preview=sent_preview,
            )
            return
        status = data.get("status")
        if status not in UNPRINTED_FINAL_STATUSES:
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
            sent_preview=sent_preview,
        )


def _checked_preview(job_id: int, value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A result's ``sent_preview``: (the checked preview, None), or (None, why it was
    refused). A bad preview never holds up the job's result: it is dropped, with a
    line in the log."""
    if value is None:
        return None, None
    try:
        return validate_sent_preview(value), None
    except ValueError as exc:
        log.warning("job %s: sent preview dropped: %s", job_id, exc)
        return None, str(exc)


def _failover_header(state: LiveState, row: dict[str, Any]) -> str | None:
    primary = row.get("failover_from")
    if primary is None:
        return None
    printer = state.printers.get(primary)
    return f"BACKUP FROM {printer['name'] if printer else f'printer {primary}'}"
