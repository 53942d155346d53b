"""Agent link samples: raw for a recent window, then per minute, then per hour,
then gone. The table stays small however long the branch runs."""

from __future__ import annotations

from typing import Any

from pm_core.sql import Session

MINUTE = 60
HOUR = 3600


def insert_samples(db: Session, rows: list[tuple[int, float, float | None, float]]) -> None:
    """(agent_id, at, latency_ms, loss) raw samples."""
    db.conn.executemany(
        "INSERT INTO health_samples (agent_id, at, resolution, latency_ms, latency_max_ms, loss, "
        "samples) VALUES (?, ?, 'raw', ?, ?, ?, 1)",
        [(a, at, lat, lat, loss) for a, at, lat, loss in rows],
    )


def _roll_up(db: Session, source: str, target: str, bucket: int, cutoff: float) -> int:
    cutoff = (cutoff // bucket) * bucket  # never split a bucket in two rows
    db.execute(
        f"""
        INSERT INTO health_samples (agent_id, at, resolution, latency_ms, latency_max_ms, loss,
                                    samples)
        SELECT agent_id, CAST(FLOOR(at / {bucket}) AS BIGINT) * {bucket}, ?,
               SUM(latency_ms * samples) / NULLIF(SUM(CASE WHEN latency_ms IS NULL THEN 0
                                                          ELSE samples END), 0),
               MAX(latency_max_ms),
               SUM(loss * samples) / SUM(samples),
               SUM(samples)
        FROM health_samples
        WHERE resolution = ? AND at < ?
        GROUP BY agent_id, CAST(FLOOR(at / {bucket}) AS BIGINT)
        """,
        (target, source, cutoff),
    )
    cur = db.execute("DELETE FROM health_samples WHERE resolution = ? AND at < ?", (source, cutoff))
    return cur.rowcount


def downsample(
    db: Session,
    *,
    now: float,
    raw_window: float,
    minute_window: float,
    retention: float,
) -> dict[str, int]:
    """Raw older than ``raw_window`` -> minutes; minutes older than ``minute_window`` ->
    hours; anything older than ``retention`` is deleted. Returns rows folded/removed."""
    folded_raw = _roll_up(db, "raw", "minute", MINUTE, now - raw_window)
    folded_minutes = _roll_up(db, "minute", "hour", HOUR, now - minute_window)
    removed = db.execute("DELETE FROM health_samples WHERE at < ?", (now - retention,)).rowcount
    return {"raw": folded_raw, "minute": folded_minutes, "removed": removed}


def series(
    db: Session, agent_id: int, *, since: float, bucket: int = MINUTE
) -> list[dict[str, Any]]:
    """One point per ``bucket`` seconds since ``since``, from whatever resolution holds it."""
    rows = db.execute(
        f"""
        SELECT CAST(FLOOR(at / {bucket}) AS BIGINT) * {bucket} AS t,
               SUM(latency_ms * samples) / NULLIF(SUM(CASE WHEN latency_ms IS NULL THEN 0
                                                          ELSE samples END), 0) AS latency,
               SUM(loss * samples) / SUM(samples) AS loss
        FROM health_samples
        WHERE agent_id = ? AND at >= ?
        GROUP BY t ORDER BY t
        """,
        (agent_id, since),
    ).fetchall()
    return [
        {
            "at": r["t"],
            "latency_ms": round(r["latency"], 2) if r["latency"] is not None else None,
            "loss": round(r["loss"] or 0.0, 4),
        }
        for r in rows
    ]


def count(db: Session) -> dict[str, int]:
    rows = db.execute(
        "SELECT resolution, COUNT(*) FROM health_samples GROUP BY resolution"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def insert_reports(db: Session, rows: list[tuple[int, float, str]]) -> None:
    """(agent_id, at, report JSON) 5-minute health reports."""
    db.conn.executemany("INSERT INTO health_reports (agent_id, at, report) VALUES (?, ?, ?)", rows)


def latest_reports(db: Session) -> list[dict[str, Any]]:
    """Each agent's latest health report, with its company and branch."""
    rows = db.execute(
        """
        SELECT r.agent_id, r.at, r.report, a.company_id, a.branch_id
        FROM health_reports r JOIN agents a ON a.id = r.agent_id
        WHERE r.id IN (SELECT MAX(id) FROM health_reports GROUP BY agent_id)
        ORDER BY r.agent_id
        """
    ).fetchall()
    return [dict(r) for r in rows]


def reports(db: Session, agent_id: int, *, since: float) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT at, report FROM health_reports WHERE agent_id = ? AND at >= ? ORDER BY at",
        (agent_id, since),
    ).fetchall()
    return [{"at": r["at"], "report": r["report"]} for r in rows]
