"""What the hub forgets, and when: each function prunes at most ``limit`` rows (one
small write transaction) and returns how many it pruned; the caller repeats while it
gets ``limit`` back (``pm_hub.retention``). The same SQL on both engines."""

from __future__ import annotations

import time
from typing import Any

from pm_core.sql import Session, is_sqlite


def _ids(rows: list[Any]) -> list[int]:
    return [int(r[0]) for r in rows]


def _marks(ids: list[int]) -> str:
    return ", ".join("?" for _ in ids)


def prune_documents(db: Session, *, before: float, limit: int) -> int:
    """Drop the documents of jobs that finished before ``before`` (the job stays)."""
    ids = _ids(
        db.execute(
            "SELECT id FROM jobs WHERE document_pruned_at IS NULL AND finished_at IS NOT NULL "
            "AND finished_at < ? ORDER BY finished_at LIMIT ?",
            (before, limit),
        ).fetchall()
    )
    if ids:
        marks = _marks(ids)
        db.execute(f"DELETE FROM job_documents WHERE job_id IN ({marks})", ids)
        db.execute(
            f"UPDATE jobs SET document_pruned_at = ? WHERE id IN ({marks})", (time.time(), *ids)
        )
    return len(ids)


def delete_jobs(db: Session, *, before: float, limit: int) -> int:
    """Delete jobs that finished before ``before``, with their events (a reprint of one
    keeps its own row; it no longer points at the original)."""
    ids = _ids(
        db.execute(
            "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? "
            "ORDER BY finished_at LIMIT ?",
            (before, limit),
        ).fetchall()
    )
    if ids:
        marks = _marks(ids)
        db.execute(f"UPDATE jobs SET reprint_of = NULL WHERE reprint_of IN ({marks})", ids)
        db.execute(f"DELETE FROM job_events WHERE job_id IN ({marks})", ids)
        db.execute(f"DELETE FROM job_documents WHERE job_id IN ({marks})", ids)
        db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
    return len(ids)


def _delete_where(db: Session, table: str, where: str, params: tuple[Any, ...], limit: int) -> int:
    return int(
        db.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT ?)",
            (*params, limit),
        ).rowcount
    )


def trim_printer_history(db: Session, *, keep: int, limit: int) -> int:
    """Each printer keeps its latest ``keep`` status changes."""
    removed = 0
    printers = db.execute(
        "SELECT printer_id, COUNT(*) FROM printer_events GROUP BY printer_id HAVING COUNT(*) > ?",
        (keep,),
    ).fetchall()
    for printer_id, _count in printers:
        if removed >= limit:
            break
        cutoff = db.execute(
            "SELECT id FROM printer_events WHERE printer_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (printer_id, keep - 1),
        ).fetchone()
        if cutoff is None:
            continue
        removed += _delete_where(
            db,
            "printer_events",
            "printer_id = ? AND id < ? ORDER BY id",
            (printer_id, cutoff[0]),
            limit - removed,
        )
    return removed


def delete_health_reports(db: Session, *, before: float, limit: int) -> int:
    return _delete_where(db, "health_reports", "at < ?", (before,), limit)


def delete_cleared_alerts(db: Session, *, before: float, limit: int) -> int:
    where = "state = 'cleared' AND cleared_at IS NOT NULL AND cleared_at < ?"
    return _delete_where(db, "alerts", where, (before,), limit)


def free_pages(db: Session) -> tuple[int, int, int]:
    """SQLite: (pages in the file, free pages, auto_vacuum mode); zeros on PostgreSQL."""
    if not is_sqlite(db):
        return 0, 0, 0
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    mode = int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
    return pages, free, mode


def give_back_pages(db: Session, *, pages: int) -> int:
    """SQLite with ``auto_vacuum=INCREMENTAL``: return up to ``pages`` free pages to the
    file system (each step of the pragma frees one page). Returns how many it freed."""
    before = free_pages(db)[1]
    for _ in range(pages):
        db.execute("PRAGMA incremental_vacuum(1)")
    return before - free_pages(db)[1]
