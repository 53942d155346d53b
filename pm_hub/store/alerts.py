"""Alerts: at most one open alert per (kind, subject); open -> acknowledged -> cleared."""

from __future__ import annotations

import json
import time
from typing import Any

from pm_core.sql import Session


def _row(db: Session, alert_id: int) -> dict[str, Any]:
    return dict(db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())


def open_alert(
    db: Session,
    *,
    company_id: int,
    branch_id: int | None,
    kind: str,
    severity: str,
    subject: str,
    message: str,
    details: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Open an alert, or refresh the one already open for (kind, subject).

    Returns (alert, what) where what is ``opened``, ``updated`` or ``unchanged``."""
    current = db.execute(
        "SELECT * FROM alerts WHERE kind = ? AND subject = ? AND state != 'cleared'",
        (kind, subject),
    ).fetchone()
    details_json = json.dumps(details, sort_keys=True)
    if current is not None:
        if current["message"] == message and current["details"] == details_json:
            return dict(current), "unchanged"
        db.execute(
            "UPDATE alerts SET message = ?, details = ?, severity = ? WHERE id = ?",
            (message, details_json, severity, current["id"]),
        )
        return _row(db, current["id"]), "updated"
    row = db.execute(
        """
        INSERT INTO alerts (company_id, branch_id, kind, severity, subject, message, state,
                            details, opened_at)
        VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)
        RETURNING id
        """,
        (company_id, branch_id, kind, severity, subject, message, details_json, time.time()),
    ).fetchone()
    return _row(db, row[0]), "opened"


def clear_alert(db: Session, kind: str, subject: str, *, by: str) -> dict[str, Any] | None:
    current = db.execute(
        "SELECT id FROM alerts WHERE kind = ? AND subject = ? AND state != 'cleared'",
        (kind, subject),
    ).fetchone()
    if current is None:
        return None
    db.execute(
        "UPDATE alerts SET state = 'cleared', cleared_at = ?, cleared_by = ? WHERE id = ?",
        (time.time(), by, current["id"]),
    )
    return _row(db, current["id"])


def acknowledge_alert(db: Session, alert_id: int, *, by: str) -> tuple[dict[str, Any], bool] | None:
    """open -> acknowledged; returns (alert, whether this call changed it), or None if
    there is no such alert. An alert already acknowledged (or cleared) stays as it is."""
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    if row["state"] != "open":
        return dict(row), False
    db.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? "
        "WHERE id = ?",
        (time.time(), by, alert_id),
    )
    return _row(db, alert_id), True


def get_alert(db: Session, alert_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    return dict(row) if row else None


def list_alerts(
    db: Session,
    *,
    company_id: int,
    branch_ids: list[int] | None,
    states: list[str] | None = None,
    since: float | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM alerts WHERE company_id = ?"
    params: list[Any] = [company_id]
    if branch_ids is not None:
        sql += f" AND (branch_id IS NULL OR branch_id IN ({','.join('?' * len(branch_ids))}))"
        params.extend(branch_ids)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(states)
    if since is not None:
        sql += " AND opened_at >= ?"
        params.append(since)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [dict(r) for r in db.execute(sql, params).fetchall()]


def open_alerts(db: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in db.execute("SELECT * FROM alerts WHERE state != 'cleared'")]
