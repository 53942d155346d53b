"""Print jobs and their event trail.

Every status change is written with its time, actor and reason in the same
transaction as the job row, before anyone is told about it. Status only moves
forward: ``queued`` < ``dispatched`` < ``printing`` < a final state, and a final
state never changes, so late or repeated reports (redelivery after a crash) are
harmless no-ops.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pm_core.protocol.statuses import CANCELLABLE_JOB_STATUSES, FINAL_JOB_STATUSES
from pm_core.sql import Session

_RANK = {"queued": 0, "dispatched": 1, "printing": 2}


#: A job with its document, which lives in ``job_documents`` (pruned apart from the job,
#: so the pages it held are freed whole and used again: ``pm_hub.retention``).
WITH_DOCUMENT = (
    "SELECT jobs.*, job_documents.document, job_documents.sent_preview FROM jobs "
    "LEFT JOIN job_documents ON job_documents.job_id = jobs.id"
)


def rank(status: str) -> int:
    return 3 if status in FINAL_JOB_STATUSES else _RANK[status]


def find_by_idempotency_key(db: Session, company_id: int, key: str) -> dict[str, Any] | None:
    row = db.execute(
        WITH_DOCUMENT + " WHERE company_id = ? AND idempotency_key = ?", (company_id, key)
    ).fetchone()
    return dict(row) if row else None


def insert_job(
    db: Session,
    *,
    company_id: int,
    branch_id: int,
    printer_id: int | None,
    station: str | None,
    document: dict[str, Any],
    copies: int,
    idempotency_key: str | None,
    submitted_by: str,
    expires_at: float | None,
    reprint_of: int | None = None,
    failover_from: int | None = None,
    status: str = "queued",
    reason: str | None = None,
    offered: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Insert a job and its first event; returns (row, created). An existing job with
    the same idempotency key is returned instead of a new one (created=False)."""
    if idempotency_key is not None:
        existing = find_by_idempotency_key(db, company_id, idempotency_key)
        if existing is not None:
            return existing, False
    now = time.time()
    job_id = db.execute(
        """
        INSERT INTO jobs (company_id, branch_id, printer_id, station, status, copies,
                          idempotency_key, submitted_by, created_at, updated_at, expires_at,
                          reprint_of, failover_from, finished_at, error_code, error_message,
                          offered_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING id
        """,
        (
            company_id,
            branch_id,
            printer_id,
            station,
            status,
            copies,
            idempotency_key,
            submitted_by,
            now,
            now,
            expires_at,
            reprint_of,
            failover_from,
            now if status in FINAL_JOB_STATUSES else None,
            "no_printer" if status == "failed" else None,
            reason if status == "failed" else None,
            now if offered else None,
        ),
    ).fetchone()[0]
    document_json = json.dumps(document, separators=(",", ":"))
    db.execute(
        "INSERT INTO job_documents (job_id, document) VALUES (?, ?)", (job_id, document_json)
    )
    db.execute(
        "INSERT INTO job_events (job_id, at, status, actor, reason) VALUES (?, ?, ?, ?, ?)",
        (job_id, now, status, submitted_by, reason or "accepted"),
    )
    row = dict(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())
    row["document"] = document_json  # as written, without reading it back
    return row, True


def transition(
    db: Session,
    job_id: int,
    status: str,
    *,
    actor: str,
    reason: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    attempts: int | None = None,
    printer_id: int | None = None,
    allowed_from: frozenset[str] | None = None,
) -> dict[str, Any] | None:
    """Move a job forward; returns the new row, or None when nothing changed."""
    row = db.execute(WITH_DOCUMENT + " WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    current = row["status"]
    if current in FINAL_JOB_STATUSES:
        return None
    if allowed_from is not None and current not in allowed_from:
        return None
    if allowed_from is None and rank(status) <= rank(current):
        return None
    now = time.time()
    final = status in FINAL_JOB_STATUSES
    db.execute(
        """
        UPDATE jobs SET status = ?, updated_at = ?, finished_at = ?,
               error_code = COALESCE(?, error_code), error_message = COALESCE(?, error_message),
               attempts = COALESCE(?, attempts), printer_id = COALESCE(?, printer_id)
        WHERE id = ?
        """,
        (
            status,
            now,
            now if final else None,
            error_code,
            error_message,
            attempts,
            printer_id,
            job_id,
        ),
    )
    db.execute(
        "INSERT INTO job_events (job_id, at, status, actor, reason) VALUES (?, ?, ?, ?, ?)",
        (job_id, now, status, actor, reason or error_message),
    )
    return dict(db.execute(WITH_DOCUMENT + " WHERE id = ?", (job_id,)).fetchone())


def reassign(
    db: Session,
    job_id: int,
    printer_id: int,
    *,
    failover_from: int | None,
    actor: str,
    reason: str,
    offered: bool = False,
) -> dict[str, Any] | None:
    """Failover: a waiting job goes back to ``queued`` on another printer.
    ``failover_from`` is the station primary it stands in for (printed on the ticket),
    or None when it lands on the primary itself."""
    row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None or row["status"] not in CANCELLABLE_JOB_STATUSES:
        return None
    now = time.time()
    db.execute(
        "UPDATE jobs SET status = 'queued', printer_id = ?, failover_from = ?, updated_at = ?, "
        "offered_at = ? WHERE id = ?",
        (printer_id, failover_from, now, now if offered else None, job_id),
    )
    db.execute(
        "INSERT INTO job_events (job_id, at, status, actor, reason) VALUES (?, ?, 'queued', ?, ?)",
        (job_id, now, actor, reason),
    )
    return dict(db.execute(WITH_DOCUMENT + " WHERE id = ?", (job_id,)).fetchone())


def mark_offered(db: Session, job_ids: list[int]) -> None:
    """Note that these jobs are about to be sent to an agent (see ``offered_at``)."""
    now = time.time()
    db.conn.executemany(
        "UPDATE jobs SET offered_at = ? WHERE id = ? AND offered_at IS NULL",
        [(now, job_id) for job_id in job_ids],
    )


def store_sent_preview(db: Session, job_id: int, preview_json: str) -> None:
    """What the job's printer was sent (``pm_core.sent_preview``, as JSON), beside its
    document (nothing is kept once the document was pruned)."""
    db.execute("UPDATE job_documents SET sent_preview = ? WHERE job_id = ?", (preview_json, job_id))


def get_job(db: Session, job_id: int) -> dict[str, Any] | None:
    row = db.execute(WITH_DOCUMENT + " WHERE id = ?", (job_id,)).fetchone()
    return dict(row) if row else None


def job_events(db: Session, job_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT at, status, actor, reason FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)
    ).fetchall()
    return [dict(r) for r in rows]


def list_jobs(
    db: Session,
    *,
    company_id: int,
    branch_ids: list[int] | None,
    statuses: list[str] | None = None,
    printer_id: int | None = None,
    station: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM jobs WHERE company_id = ?"
    params: list[Any] = [company_id]
    if branch_ids is not None:
        sql += f" AND branch_id IN ({','.join('?' * len(branch_ids))})"
        params.extend(branch_ids)
    if statuses:
        sql += f" AND status IN ({','.join('?' * len(statuses))})"
        params.extend(statuses)
    if printer_id is not None:
        sql += " AND printer_id = ?"
        params.append(printer_id)
    if station is not None:
        sql += " AND station = ?"
        params.append(station)
    if since is not None:
        sql += " AND created_at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND created_at < ?"
        params.append(until)
    if before_id is not None:
        sql += " AND id < ?"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [dict(r) for r in db.execute(sql, params).fetchall()]


def active_jobs(db: Session) -> list[dict[str, Any]]:
    """Every job not yet finished, oldest first (used at start and on agent reconnect)."""
    rows = db.execute(
        WITH_DOCUMENT + " WHERE status IN ('queued', 'dispatched', 'printing') ORDER BY id"
    ).fetchall()
    return [dict(r) for r in rows]


def active_jobs_for_printer(db: Session, printer_id: int) -> list[dict[str, Any]]:
    rows = db.execute(
        WITH_DOCUMENT + " WHERE printer_id = ? "
        "AND status IN ('queued', 'dispatched', 'printing') "
        "ORDER BY id",
        (printer_id,),
    ).fetchall()
    return [dict(r) for r in rows]


def count_by_status(db: Session) -> dict[str, int]:
    rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
    return {r[0]: r[1] for r in rows}
