"""What the hub asks of the agent's printers: ``print:job`` (into the spool, on disk
before the ack), ``job:cancel`` and ``job:release`` (only for a job that has not
started printing), ``printer:test`` (answered at once, the result sent later) and
``printer:configure`` (an operator chose a capability profile).

Each answers through the Socket.IO ack. A job is printed from the spool, never from
the socket; one delivered again is answered from the spool (its outcome when it has
one), so it never prints twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pm_agent.hub_connection import HubConnection
from pm_agent.printer_registry import PrinterRegistry
from pm_agent.printer_worker import PrinterWorker
from pm_agent.spool import JobSpool
from pm_agent.task_control import BackgroundTasks
from pm_core.logs import correlation, wire_correlation_id
from pm_core.protocol import (
    FINAL_JOB_STATUSES,
    AgentEvent,
    ErrorCode,
    ProtocolError,
    error_ack,
    ok_ack,
)
from pm_core.protocol.languages import check_text_mode_field
from pm_core.protocol.records import PrintJob, read_print_job

log = logging.getLogger(__name__)


class JobIntake:
    def __init__(
        self,
        *,
        spool: JobSpool,
        printers: PrinterRegistry,
        connection: HubConnection,
        on_outbox: Callable[[], None],
        tasks: BackgroundTasks,
    ) -> None:
        self.spool = spool
        self.printers = printers
        self.connection = connection
        self.on_outbox = on_outbox
        self.tasks = tasks

    async def accept_job(self, data: Any) -> dict[str, Any]:
        """``print:job``: spool the job for its printer (ack once it is on disk)."""
        try:
            message = read_print_job(data)
        except ProtocolError as exc:
            return exc.to_ack()
        job: PrintJob = message["job"]
        worker = self.printers.by_printer_id.get(job["printer_id"])
        if worker is None:
            return error_ack(ErrorCode.NOT_FOUND, f"this agent has no printer {job['printer_id']}")
        cid = wire_correlation_id(message)
        if cid is not None:
            job["correlation_id"] = cid  # kept in the spool: later lines carry it
        spooled, new = await self.spool.accept(job)
        if new:
            log.debug("job %s accepted into the spool for %s", job["id"], worker.spec.name)
            worker.wake(spooled.job_id)
        elif spooled.state in FINAL_JOB_STATUSES:
            # Already done: answer with the outcome so the hub can close the job.
            log.debug("job %s delivered again; already %s", job["id"], spooled.state)
            outcome: dict[str, Any] = dict(spooled.result_payload())
            outcome["ok"] = True  # the delivery is fine; "status" carries the outcome
            return outcome
        else:
            log.debug("job %s delivered again; already in the spool", job["id"])
        return ok_ack(status="dispatched" if spooled.state == "pending" else spooled.state)

    async def cancel_job(self, data: Any) -> dict[str, Any]:
        """``job:cancel``: only a job that has not started printing is cancelled."""
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), int):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "job_id is required")
        job = await self.spool.finish(
            data["job_id"],
            "cancelled",
            error_code="cancelled",
            error_message=str(data.get("reason") or "cancelled by an operator")[:300],
            only_from=("pending",),
        )
        if job is not None:
            self.on_outbox()
            log.info("job %s cancelled before printing", data["job_id"])
            return ok_ack(cancelled=True, status="cancelled")
        current = await self.spool.get(data["job_id"])
        return ok_ack(cancelled=False, status=current.state if current else "unknown")

    async def release_job(self, data: Any) -> dict[str, Any]:
        """``job:release``: hand a job that has not started back to the hub (failover)."""
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), int):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "job_id is required")
        released = await self.spool.release(data["job_id"])
        current = await self.spool.get(data["job_id"])
        if released:
            log.info("job %s handed back to the hub", data["job_id"])
        return ok_ack(released=released, status=current.state if current else "unknown")

    def test_printer(self, data: Any) -> dict[str, Any]:
        """``printer:test``: acked at once; ``printer:test:result`` follows."""
        if not isinstance(data, dict) or not isinstance(data.get("correlation_id"), str):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "correlation_id is required")
        worker = self.printers.by_printer_id.get(data.get("printer_id"))  # type: ignore[arg-type]
        if worker is None:
            return error_ack(ErrorCode.NOT_FOUND, "this agent has no such printer")
        with correlation(wire_correlation_id(data)):
            log.debug("test print on %s", worker.spec.name)
            self.tasks.spawn(self._run_test(worker, data["correlation_id"]))
        return ok_ack()

    async def _run_test(self, worker: PrinterWorker, correlation_id: str) -> None:
        try:
            result = await worker.print_test_page()
        except Exception as exc:
            log.exception("[%s] test print failed", correlation_id)
            result = {"ok": False, "error": {"code": "internal", "message": str(exc)}}
        result.update(correlation_id=correlation_id, printer_id=worker.printer_id)
        try:
            await self.connection.emit(AgentEvent.PRINTER_TEST_RESULT, result)
        except Exception as exc:
            log.warning("[%s] test result not delivered: %s", correlation_id, exc)

    async def configure_printer(self, data: Any) -> dict[str, Any]:
        """``printer:configure {printer_id, profile?, language?, text_mode?}`` from the
        hub: an operator chose the printer's capability profile or command language
        (None: automatic again) and, when given, how its text goes out
        (``auto``/``raster``; None: ``auto``)."""
        if not isinstance(data, dict) or not isinstance(data.get("printer_id"), int):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "printer_id is required")
        for key in ("profile", "language"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                return error_ack(ErrorCode.INVALID_PAYLOAD, f"{key} must be a name or null")
        try:
            text_mode = check_text_mode_field(data.get("text_mode"))
        except ProtocolError as exc:
            return exc.to_ack()
        worker = self.printers.by_printer_id.get(data["printer_id"])
        if worker is None:
            return error_ack(ErrorCode.NOT_FOUND, "this agent has no such printer")
        changed = False
        try:
            if "profile" in data:
                changed = worker.use_profile(data["profile"]) or changed
            if "language" in data:
                changed = worker.use_language(data["language"]) or changed
        except ValueError as exc:
            return error_ack(ErrorCode.INVALID_PAYLOAD, str(exc))
        if "text_mode" in data and worker.use_text_mode(text_mode):
            await self.printers.remember(worker)
        if changed:
            self.tasks.spawn(self.printers.printer_changed(worker))
        return ok_ack(capabilities=worker.capabilities.to_json())
