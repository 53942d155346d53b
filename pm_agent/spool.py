"""The agent's job spool: every job the agent accepted, on disk before the hub hears "ok".

A job is printed from here, never straight from the socket. Finished job ids are
remembered (for ``retention`` seconds), so a job the hub sends again after a crash
or a reconnect is answered with its known outcome and not printed twice. What the
agent owes the hub (status changes, results) waits in an ``outbox`` table written
in the same transaction as the state change, and is delivered in order until the
hub acknowledges it.

The spool also remembers which hub printer id each printer (by identity) had, so a
restarted agent resumes printing the jobs already in its spool before the hub is
back (``printer_ids``).
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pm_core.database import Database
from pm_core.protocol import FINAL_JOB_STATUSES, AgentEvent
from pm_core.protocol.records import PrintJob, PrintJobResult, print_job_result
from pm_core.sql import Session

SPOOL_VERSION = 2
#: The final job states, in a stable order for SQL parameters.
FINAL_STATES = tuple(sorted(FINAL_JOB_STATUSES))


def _prepare(db: Session) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS spool_jobs (
            job_id INTEGER PRIMARY KEY,
            printer_id INTEGER NOT NULL,
            state TEXT NOT NULL,
            payload TEXT NOT NULL,
            received_at REAL NOT NULL,
            expires_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            started_at REAL,
            finished_at REAL,
            error_code TEXT,
            error_message TEXT
        )"""
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS spool_jobs_pending ON spool_jobs (printer_id, state, job_id)"
    )
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS printer_ids (
            identity TEXT PRIMARY KEY,
            printer_id INTEGER NOT NULL UNIQUE,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(f"PRAGMA user_version = {SPOOL_VERSION}")


@dataclass
class SpooledJob:
    job_id: int
    printer_id: int
    state: str
    payload: dict[str, Any]
    expires_at: float | None
    attempts: int
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> SpooledJob:
        return cls(
            job_id=row["job_id"],
            printer_id=row["printer_id"],
            state=row["state"],
            payload=json.loads(row["payload"]),
            expires_at=row["expires_at"],
            attempts=row["attempts"],
            error_code=row["error_code"],
            error_message=row["error_message"],
        )

    @property
    def correlation_id(self) -> str | None:
        """The hub's correlation id for this job (from its ``print:job``), if any."""
        value = self.payload.get("correlation_id")
        return value if isinstance(value, str) else None

    def result_payload(self) -> PrintJobResult:
        """The ``print:job:result`` of a finished job."""
        return print_job_result(
            job_id=self.job_id,
            status=self.state,
            attempts=self.attempts,
            correlation_id=self.correlation_id,
            error_code=self.error_code,
            error_message=self.error_message,
        )


@dataclass
class OutboxItem:
    id: int
    event: str
    payload: dict[str, Any]


def _outbox(db: Session, event: str, payload: Mapping[str, Any]) -> None:
    db.execute(
        "INSERT INTO outbox (event, payload, created_at) VALUES (?, ?, ?)",
        (event, json.dumps(payload), time.time()),
    )


def _get(db: Session, job_id: int) -> SpooledJob | None:
    row = db.execute("SELECT * FROM spool_jobs WHERE job_id = ?", (job_id,)).fetchone()
    return SpooledJob.from_row(row) if row else None


class JobSpool:
    def __init__(self, path: Path, *, synchronous: str = "FULL", retention: float = 7 * 86400):
        self.db = Database(path, synchronous=synchronous, readers=1)
        self.retention = retention

    def open(self) -> None:
        """Blocking: open the file (call from a thread or before the loop runs)."""
        self.db.start(_prepare)

    def close(self) -> None:
        self.db.close()

    async def accept(self, job: PrintJob) -> tuple[SpooledJob, bool]:
        """Store a job from the hub; returns (job as spooled, newly accepted)."""
        job_id = int(job["id"])

        def write(db: Session) -> tuple[SpooledJob, bool]:
            existing = _get(db, job_id)
            if existing is not None and existing.state == "released":
                # Handed back to the hub earlier (failover) and now sent again,
                # possibly for another printer: take it as new.
                db.execute(
                    "UPDATE spool_jobs SET state = 'pending', printer_id = ?, payload = ?, "
                    "expires_at = ?, received_at = ? WHERE job_id = ?",
                    (
                        int(job["printer_id"]),
                        json.dumps(job),
                        job.get("expires_at"),
                        time.time(),
                        job_id,
                    ),
                )
                spooled = _get(db, job_id)
                assert spooled is not None
                return spooled, True
            if existing is not None:
                return existing, False
            db.execute(
                "INSERT INTO spool_jobs (job_id, printer_id, state, payload, received_at, "
                "expires_at) VALUES (?, ?, 'pending', ?, ?, ?)",
                (
                    job_id,
                    int(job["printer_id"]),
                    json.dumps(job),
                    time.time(),
                    job.get("expires_at"),
                ),
            )
            spooled = _get(db, job_id)
            assert spooled is not None
            return spooled, True

        return await self.db.write(write)

    async def start_printing(self, job_id: int) -> SpooledJob | None:
        """pending -> printing (with the attempt counted); None if it is not pending."""
        return await self.db.write(functools.partial(_start_printing, job_id=job_id))

    def start_printing_now(self, job_id: int) -> SpooledJob | None:
        """:meth:`start_printing` from a printer's I/O thread (blocks until committed)."""
        return self.db.write_now(functools.partial(_start_printing, job_id=job_id))

    async def release(self, job_id: int) -> bool:
        """Give a job that has not started back to the hub (failover to another
        printer); nothing is reported for it, the hub already knows."""

        def write(db: Session) -> bool:
            cur = db.execute(
                "UPDATE spool_jobs SET state = 'released' WHERE job_id = ? AND state = 'pending'",
                (job_id,),
            )
            return bool(cur.rowcount)

        return await self.db.write(write)

    async def back_to_pending(self, job_id: int) -> None:
        """Nothing reached the printer: the job may be tried again."""
        await self.db.write(functools.partial(_back_to_pending, job_id=job_id))

    def back_to_pending_now(self, job_id: int) -> None:
        self.db.write_now(functools.partial(_back_to_pending, job_id=job_id))

    async def finish(
        self,
        job_id: int,
        state: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: tuple[str, ...] = ("pending", "printing"),
    ) -> SpooledJob | None:
        """End a job and queue its result for the hub; None if it was not in ``only_from``."""
        return await self.db.write(_finishing(job_id, state, error_code, error_message, only_from))

    def finish_now(
        self,
        job_id: int,
        state: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: tuple[str, ...] = ("printing",),
        sent_preview: dict[str, Any] | None = None,
    ) -> SpooledJob | None:
        """:meth:`finish` (of a job being printed) from a printer's I/O thread."""
        return self.finish_later(
            job_id,
            state,
            error_code=error_code,
            error_message=error_message,
            only_from=only_from,
            sent_preview=sent_preview,
        ).result()

    def finish_later(
        self,
        job_id: int,
        state: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        only_from: tuple[str, ...] = ("printing",),
        sent_preview: dict[str, Any] | None = None,
    ) -> concurrent.futures.Future[SpooledJob | None]:
        """:meth:`finish_now` without waiting: settled once committed (a crash before
        that leaves the job ``printing``, which a restart ends as outcome unknown).
        ``sent_preview`` (what the printer was sent) goes to the hub with the result."""
        return self.db.write_later(
            _finishing(job_id, state, error_code, error_message, only_from, sent_preview)
        )

    async def get(self, job_id: int) -> SpooledJob | None:
        return await self.db.read(lambda db: _get(db, job_id))

    async def pending(self, printer_id: int, limit: int) -> list[SpooledJob]:
        """The oldest ``limit`` jobs of this printer that still have to print, in order
        (a snapshot: :meth:`start_printing` says whether each is still to print)."""

        def read(db: Session) -> list[SpooledJob]:
            rows = db.execute(
                "SELECT * FROM spool_jobs WHERE printer_id = ? AND state = 'pending' "
                "ORDER BY job_id LIMIT ?",
                (printer_id, limit),
            ).fetchall()
            return [SpooledJob.from_row(row) for row in rows]

        return await self.db.read(read)

    async def pending_counts(self) -> dict[int, int]:
        def read(db: Session) -> dict[int, int]:
            rows = db.execute(
                "SELECT printer_id, COUNT(*) FROM spool_jobs "
                "WHERE state IN ('pending', 'printing') GROUP BY printer_id"
            ).fetchall()
            return {r[0]: r[1] for r in rows}

        return await self.db.read(read)

    async def recover_interrupted(self) -> list[SpooledJob]:
        """At start: a job left ``printing`` by a crash may or may not have come out.

        Printing it again could print it twice, so it ends ``failed`` with a reason an
        operator can act on (reprint if the ticket is missing)."""

        def write(db: Session) -> list[SpooledJob]:
            rows = db.execute("SELECT job_id FROM spool_jobs WHERE state = 'printing'").fetchall()
            ended = []
            for (job_id,) in rows:
                db.execute(
                    "UPDATE spool_jobs SET state = 'failed', finished_at = ?, "
                    "error_code = 'interrupted', error_message = ? WHERE job_id = ?",
                    (
                        time.time(),
                        "the agent stopped while this job was printing; check the printer "
                        "and reprint if the ticket is missing",
                        job_id,
                    ),
                )
                job = _get(db, job_id)
                assert job is not None
                _outbox(db, AgentEvent.PRINT_JOB_RESULT, job.result_payload())
                ended.append(job)
            return ended

        return await self.db.write(write)

    async def known_printer_ids(self) -> dict[str, int]:
        """The hub printer id of each printer identity, as the hub last said."""

        def read(db: Session) -> dict[str, int]:
            rows = db.execute("SELECT identity, printer_id FROM printer_ids").fetchall()
            return {r[0]: r[1] for r in rows}

        return await self.db.read(read)

    async def remember_printer_id(self, identity: str, printer_id: int) -> None:
        """The hub registered the printer ``identity`` as ``printer_id`` (an id the hub
        gave another identity before is that identity's no longer)."""

        def write(db: Session) -> None:
            db.execute(
                "DELETE FROM printer_ids WHERE printer_id = ? AND identity != ?",
                (printer_id, identity),
            )
            db.execute(
                "INSERT INTO printer_ids (identity, printer_id, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (identity) DO UPDATE SET printer_id = excluded.printer_id, "
                "updated_at = excluded.updated_at",
                (identity, printer_id, time.time()),
            )

        await self.db.write(write)

    async def outbox(self, limit: int = 200) -> list[OutboxItem]:
        def read(db: Session) -> list[OutboxItem]:
            rows = db.execute(
                "SELECT id, event, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
            return [OutboxItem(r[0], r[1], json.loads(r[2])) for r in rows]

        return await self.db.read(read)

    async def outbox_done(self, ids: list[int]) -> None:
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self.db.write(lambda db: db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids))

    async def prune(self, now: float | None = None) -> int:
        """Forget jobs that finished more than ``retention`` seconds ago and whose result
        the hub has acknowledged (it no longer sends them again), and jobs handed back
        to the hub that long ago. Returns how many rows went."""
        cutoff = (time.time() if now is None else now) - self.retention

        def write(db: Session) -> int:
            marks = ",".join("?" * len(FINAL_STATES))
            cur = db.execute(
                "DELETE FROM spool_jobs "
                f"WHERE ((state IN ({marks}) AND finished_at < ?) "
                "       OR (state = 'released' AND received_at < ?)) "
                "AND job_id NOT IN (SELECT json_extract(payload, '$.job_id') FROM outbox "
                "                   WHERE event = ?)",
                (*FINAL_STATES, cutoff, cutoff, AgentEvent.PRINT_JOB_RESULT),
            )
            return cur.rowcount

        return await self.db.write(write)

    async def expire_due(self, now: float | None = None) -> list[SpooledJob]:
        """End every waiting job whose expiry passed (whatever printer it is for)."""
        cutoff = time.time() if now is None else now

        def write(db: Session) -> list[SpooledJob]:
            rows = db.execute(
                "SELECT job_id FROM spool_jobs WHERE state = 'pending' AND expires_at IS NOT NULL "
                "AND expires_at <= ?",
                (cutoff,),
            ).fetchall()
            ended = []
            for (job_id,) in rows:
                db.execute(
                    "UPDATE spool_jobs SET state = 'expired', finished_at = ?, "
                    "error_code = 'expired', error_message = ? WHERE job_id = ?",
                    (time.time(), "not printed: waited past its expiry", job_id),
                )
                job = _get(db, job_id)
                assert job is not None
                _outbox(db, AgentEvent.PRINT_JOB_RESULT, job.result_payload())
                ended.append(job)
            return ended

        return await self.db.write(write)


def _start_printing(db: Session, *, job_id: int) -> SpooledJob | None:
    cur = db.execute(
        "UPDATE spool_jobs SET state = 'printing', attempts = attempts + 1, "
        "started_at = ? WHERE job_id = ? AND state = 'pending'",
        (time.time(), job_id),
    )
    if not cur.rowcount:
        return None
    job = _get(db, job_id)
    assert job is not None
    status: dict[str, Any] = {"job_id": job_id, "status": "printing", "attempts": job.attempts}
    if job.correlation_id is not None:
        status["correlation_id"] = job.correlation_id
    _outbox(db, AgentEvent.PRINT_JOB_STATUS, status)
    return job


def _back_to_pending(db: Session, *, job_id: int) -> None:
    db.execute(
        "UPDATE spool_jobs SET state = 'pending' WHERE job_id = ? AND state = 'printing'",
        (job_id,),
    )


def _finishing(
    job_id: int,
    state: str,
    error_code: str | None,
    error_message: str | None,
    only_from: tuple[str, ...],
    sent_preview: dict[str, Any] | None = None,
) -> Callable[[Session], SpooledJob | None]:
    """The write that ends a job (for the writer thread)."""
    assert state in FINAL_JOB_STATUSES
    return functools.partial(
        _finish,
        job_id=job_id,
        state=state,
        error_code=error_code,
        error_message=error_message,
        only_from=only_from,
        sent_preview=sent_preview,
    )


def _finish(
    db: Session,
    *,
    job_id: int,
    state: str,
    error_code: str | None,
    error_message: str | None,
    only_from: tuple[str, ...],
    sent_preview: dict[str, Any] | None = None,
) -> SpooledJob | None:
    marks = ",".join("?" * len(only_from))
    cur = db.execute(
        f"UPDATE spool_jobs SET state = ?, finished_at = ?, error_code = ?, "
        f"error_message = ? WHERE job_id = ? AND state IN ({marks})",
        (state, time.time(), error_code, error_message, job_id, *only_from),
    )
    if not cur.rowcount:
        return None
    job = _get(db, job_id)
    assert job is not None
    result = job.result_payload()
    if sent_preview is not None:
        result["sent_preview"] = sent_preview  # in the outbox only: the hub stores it
    _outbox(db, AgentEvent.PRINT_JOB_RESULT, result)
    return job
