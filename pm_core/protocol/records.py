"""Typed shapes of what crosses the wire: the records the hub sends (printer, job,
alert, agent) and the two messages of a print job between hub and agent
(``print:job`` and ``print:job:result``).

Both ends build and read these through the functions below, so a field renamed on
one side is a type error on the other (mypy checks hub, agent and dashboard against
the same definitions). On the wire they stay plain JSON objects; the fields listed
here are the contract in docs/protocol.md.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from pm_core.protocol.errors import ErrorCode, ProtocolError
from pm_core.protocol.statuses import FINAL_JOB_STATUSES


class JobError(TypedDict):
    code: str
    message: str


class PrinterRecord(TypedDict):
    """A printer as the hub shows it (``printers:list``, ``printer:update``, ...)."""

    id: int
    name: str
    address: str
    kind: str
    model: str | None
    status: str
    flags: dict[str, bool]
    status_supported: bool
    paused: bool
    #: When it was paused (None: not paused; also from a hub that keeps no pause time).
    paused_at: NotRequired[float | None]
    station: str | None
    station_priority: int | None
    identity: str | None
    serial: str | None
    mac: str | None
    profile: str | None
    profile_override: str | None
    #: The command language an operator chose (None: from the printer's identity).
    language_override: NotRequired[str | None]
    #: How the printer's text goes out (``auto``/``raster``; None: auto).
    text_mode: NotRequired[str | None]
    capabilities: dict[str, Any]
    default_expiry_s: float | None
    branch_id: int
    company_id: int
    agent_id: int | None
    last_seen: float | None
    status_changed_at: float | None
    created_at: float
    #: Live figures the hub adds when it sends the printer (not stored).
    queue: NotRequired[int]
    agent_connected: NotRequired[bool]


class PrinterStatusEntry(TypedDict):
    """A ``printers:update`` entry for a change of status alone (no ``name``): a
    dashboard merges it into the printer it already has."""

    id: int
    status: str
    flags: dict[str, bool]
    last_seen: float | None
    status_changed_at: float | None
    queue: int
    agent_connected: bool


class JobRecord(TypedDict):
    """A job as the hub shows it (``jobs:list``, ``job:update``, the ``job:submit`` ack)."""

    id: int
    printer_id: int | None
    station: str | None
    status: str
    branch_id: int
    company_id: int
    copies: int
    idempotency_key: str | None
    submitted_by: str | None
    attempts: int
    error: JobError | None
    created_at: float
    updated_at: float
    expires_at: float | None
    finished_at: float | None
    reprint_of: int | None
    failover_from: int | None
    correlation_id: str
    #: Only in ``job:get`` with ``document: true``.
    document: NotRequired[dict[str, Any]]
    #: What the printer was sent (``pm_core.sent_preview``), when the agent or the
    #: CloudPRNT server made one; with ``document`` only.
    sent_preview: NotRequired[dict[str, Any]]
    #: When the hub dropped the job's document (``job_document_retention_s``), if it did.
    document_pruned_at: NotRequired[float]
    #: Only in ``job:get``: the job's trail.
    events: NotRequired[list[dict[str, Any]]]


class AgentRecord(TypedDict):
    id: int
    device_id: str
    name: str | None
    version: str | None
    hostname: str | None
    branch_id: int
    company_id: int
    connected: bool
    first_seen: float | None
    last_seen: float | None
    last_disconnect: float | None
    #: ``agents:list`` adds the ids of the printers the agent drives.
    printers: NotRequired[list[int]]
    #: When an admin retired it (``agent:retire``), in the ``agent:update`` that says so.
    retired_at: NotRequired[float]


class AlertRecord(TypedDict):
    id: int
    kind: str
    severity: str
    subject: str
    message: str | None
    state: str
    details: dict[str, Any]
    branch_id: int | None
    company_id: int
    opened_at: float
    acknowledged_at: float | None
    acknowledged_by: str | None
    cleared_at: float | None


# -- print:job (hub -> agent) -------------------------------------------------------


class PrintJob(TypedDict):
    """The job inside a ``print:job``: what the agent spools and prints."""

    id: int
    printer_id: int
    document: dict[str, Any]
    copies: int
    created_at: float
    expires_at: float | None
    #: A line printed above the ticket (``BACKUP FROM Kitchen-1`` after a failover).
    header: str | None
    #: Set by the agent from the message's correlation id (kept in its spool).
    correlation_id: NotRequired[str]


class PrintJobMessage(TypedDict):
    """``print:job``: one job for one of the agent's printers; the ack confirms delivery."""

    correlation_id: str
    job: PrintJob


def print_job_message(
    *,
    correlation_id: str,
    job_id: int,
    printer_id: int,
    document: dict[str, Any],
    copies: int,
    created_at: float,
    expires_at: float | None,
    header: str | None = None,
) -> PrintJobMessage:
    """The ``print:job`` the hub sends for one job."""
    return {
        "correlation_id": correlation_id,
        "job": {
            "id": job_id,
            "printer_id": printer_id,
            "document": document,
            "copies": copies,
            "created_at": created_at,
            "expires_at": expires_at,
            "header": header,
        },
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_print_job(data: Any) -> PrintJobMessage:
    """A ``print:job`` as the agent receives it, checked field by field; raises
    ``ProtocolError(invalid_payload)`` naming the first bad field."""

    def bad(message: str) -> ProtocolError:
        return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)

    if not isinstance(data, dict) or not isinstance(data.get("job"), dict):
        raise bad("job is required")
    job = data["job"]
    job_id, printer_id = job.get("id"), job.get("printer_id")
    if (
        isinstance(job_id, bool)
        or isinstance(printer_id, bool)
        or not isinstance(job_id, int)
        or not isinstance(printer_id, int)
    ):
        raise bad("job.id and job.printer_id are required")
    if not isinstance(job.get("document"), dict):
        raise bad("job.document is required")
    copies = job.get("copies", 1)
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 10:
        raise bad("job.copies must be an integer from 1 to 10")
    created_at = job.get("created_at")
    if not _number(created_at):
        raise bad("job.created_at must be a number")
    expires_at = job.get("expires_at")
    if expires_at is not None and not _number(expires_at):
        raise bad("job.expires_at must be a number or null")
    header = job.get("header")
    if header is not None and not isinstance(header, str):
        raise bad("job.header must be a string or null")
    cid = data.get("correlation_id")
    return {
        "correlation_id": cid if isinstance(cid, str) else "",
        "job": {
            "id": job_id,
            "printer_id": printer_id,
            "document": job["document"],
            "copies": copies,
            "created_at": float(created_at),
            "expires_at": float(expires_at) if expires_at is not None else None,
            "header": header,
        },
    }


# -- print:job:result (agent -> hub) ------------------------------------------------


class PrintJobResult(TypedDict):
    """``print:job:result``: how a job ended at the agent (also the answer to a
    redelivery of a job the agent already finished)."""

    job_id: int
    ok: bool
    #: ``completed``, ``failed``, ``expired`` or ``cancelled``.
    status: str
    attempts: int
    correlation_id: NotRequired[str]
    #: Present unless the job completed.
    error: NotRequired[JobError]
    #: What the printer was sent, read back from the bytes (``pm_core.sent_preview``);
    #: optional, a hub drops one that fails its check and still takes the result.
    sent_preview: NotRequired[dict[str, Any]]


def print_job_result(
    *,
    job_id: int,
    status: str,
    attempts: int,
    correlation_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> PrintJobResult:
    """The ``print:job:result`` for a job that reached a final status at the agent."""
    if status not in FINAL_JOB_STATUSES:
        raise ValueError(f"{status!r} is not a final job status")
    result: PrintJobResult = {
        "job_id": job_id,
        "ok": status == "completed",
        "status": status,
        "attempts": attempts,
    }
    if correlation_id is not None:
        result["correlation_id"] = correlation_id
    if status != "completed":
        result["error"] = {"code": error_code or status, "message": error_message or status}
    return result
