"""What a branch hub owes its company hub: the upstream outbox.

Only when the hub has an upstream, :func:`install_triggers` puts TEMP triggers on the
writer's connection. Every change to a printer, job, alert or agent then also writes
``(kind, id)`` into ``upstream_outbox`` inside the same transaction, so the outbox
can never miss a change nor hold one that was rolled back, and its ``seq`` order is
the commit order. A newer change of the same object replaces its unsent row (a new,
higher ``seq``): the outbox holds at most one row per object, the latest state, which
is read when the row is sent. Without an upstream there are no triggers and the hot
path pays nothing.

SQLite only: the outbox is a branch hub's, and a branch box keeps SQLite. A company
hub, the one that may run on PostgreSQL, has no upstream (``pm hub`` refuses
``--upstream`` with a PostgreSQL database), so these functions take a
:class:`~pm_core.sql.Session` and refuse any other engine.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlite_utils

from pm_core.protocol.records import AgentRecord, AlertRecord, JobRecord, PrinterRecord
from pm_core.sql import Session, as_sqlite
from pm_hub.store.records import agent_record, alert_record, job_record, printer_record

#: Kinds of objects the outbox carries, and the table each lives in.
OUTBOX_TABLES = {"printer": "printers", "job": "jobs", "alert": "alerts", "agent": "agents"}

_NOW = "(julianday('now') - 2440587.5) * 86400.0"

#: Printer columns whose change the company hub must hear about (not last_seen).
_PRINTER_COLUMNS = (
    "name",
    "address",
    "kind",
    "model",
    "status",
    "flags",
    "status_supported",
    "paused",
    "paused_at",
    "station",
    "station_priority",
    "identity",
    "serial",
    "mac",
    "profile",
    "profile_override",
    "language_override",
    "text_mode",
    "capabilities",
    "default_expiry_s",
    "agent_id",
    "branch_id",
    "retired_at",
)
_JOB_COLUMNS = (
    "status",
    "printer_id",
    "station",
    "attempts",
    "error_code",
    "error_message",
    "failover_from",
    "finished_at",
    "expires_at",
)
_AGENT_COLUMNS = (
    "connected",
    "name",
    "version",
    "hostname",
    "branch_id",
    "last_disconnect",
    "retired_at",
)


def _trigger(name: str, event: str, table: str, kind: str, when: str = "") -> str:
    # DELETE then INSERT rather than INSERT OR REPLACE: the conflict clause of the
    # statement that fires a trigger (an upsert's ON CONFLICT) overrides the body's.
    return (
        f"CREATE TEMP TRIGGER IF NOT EXISTS {name} AFTER {event} ON main.{table} {when} "
        f"BEGIN DELETE FROM upstream_outbox WHERE kind = '{kind}' AND object_id = NEW.id; "
        f"INSERT INTO upstream_outbox (kind, object_id, at) "
        f"VALUES ('{kind}', NEW.id, {_NOW}); END"
    )


def _changed(columns: tuple[str, ...]) -> str:
    return "WHEN " + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


def install_triggers(session: Session) -> None:
    """Make this connection record every upstream-worthy change (call on the writer's)."""
    db = as_sqlite(session)
    for kind, table in OUTBOX_TABLES.items():
        db.execute(_trigger(f"outbox_{kind}_insert", "INSERT", table, kind))
    db.execute(
        _trigger(
            "outbox_printer_update", "UPDATE", "printers", "printer", _changed(_PRINTER_COLUMNS)
        )
    )
    db.execute(_trigger("outbox_job_update", f"UPDATE OF {', '.join(_JOB_COLUMNS)}", "jobs", "job"))
    db.execute(_trigger("outbox_alert_update", "UPDATE", "alerts", "alert"))
    db.execute(
        _trigger("outbox_agent_update", "UPDATE", "agents", "agent", _changed(_AGENT_COLUMNS))
    )


def stream_id(db: Session) -> str:
    """This database's outbox stream: a random id made once. A company hub that sees a
    new stream id for a branch knows its sequence numbers start over."""
    row = db.execute("SELECT stream_id FROM upstream_state WHERE id = 1").fetchone()
    if row is not None:
        return str(row[0])
    value = secrets.token_hex(8)
    db.execute(
        "INSERT INTO upstream_state (id, stream_id, created_at) VALUES (1, ?, ?)",
        (value, time.time()),
    )
    return value


def _record(
    kind: str, row: dict[str, Any]
) -> PrinterRecord | JobRecord | AlertRecord | AgentRecord:
    if kind == "printer":
        return printer_record(row)
    if kind == "job":
        return job_record(row)
    if kind == "alert":
        return alert_record(row)
    return agent_record(row)


#: What the company hub no longer sees (its mirror drops an object sent as gone).
_GONE = {"printers": " AND retired_at IS NULL", "agents": " AND retired_at IS NULL"}


def _rows(db: Session, table: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    live = _GONE.get(table, "")
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT * FROM {table} WHERE id IN ({marks}){live}"
        for row in db.execute(sql, chunk).fetchall():
            found[row["id"]] = dict(row)
    return found


class _ReadTransaction:
    """One consistent view of the file (WAL snapshot) for several SELECTs."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.conn = db.conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")


def read_batch(session: Session, after: int, limit: int) -> dict[str, Any]:
    """The next ``limit`` entries after ``seq``, each with the object's current state
    (``record`` None if it is gone), plus how many remain and the age of the oldest."""
    db = as_sqlite(session)
    with _ReadTransaction(db):
        rows = db.execute(
            "SELECT seq, kind, object_id, at FROM upstream_outbox WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        objects: dict[str, dict[int, dict[str, Any]]] = {}
        for kind, table in OUTBOX_TABLES.items():
            ids = [r["object_id"] for r in rows if r["kind"] == kind]
            objects[kind] = _rows(db, table, ids) if ids else {}
        entries = []
        for r in rows:
            row = objects.get(r["kind"], {}).get(r["object_id"])
            entries.append(
                {
                    "seq": r["seq"],
                    "kind": r["kind"],
                    "id": r["object_id"],
                    "at": r["at"],
                    "record": _record(r["kind"], row) if row is not None else None,
                }
            )
        last = entries[-1]["seq"] if entries else after
        count, oldest = db.execute(
            "SELECT COUNT(*), MIN(at) FROM upstream_outbox WHERE seq > ?", (last,)
        ).fetchone()
        first_at = min((e["at"] for e in entries), default=oldest)
    return {"entries": entries, "remaining": int(count), "oldest_at": first_at}


def pending(db: Session, after: int = 0) -> tuple[int, float | None]:
    """How many entries are waiting after ``after``, and when the oldest was written."""
    count, oldest = db.execute(
        "SELECT COUNT(*), MIN(at) FROM upstream_outbox WHERE seq > ?", (after,)
    ).fetchone()
    return int(count), oldest


def read_snapshot(
    session: Session,
    *,
    recent_jobs: int = 200,
    max_active_jobs: int = 2000,
    recent_alerts: int = 100,
) -> dict[str, Any]:
    """Everything the company hub's mirror needs to be right now, and the outbox
    sequence it corresponds to: every entry up to ``seq`` is already reflected in it."""
    db = as_sqlite(session)
    with _ReadTransaction(db):
        row = db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'upstream_outbox'"
        ).fetchone()
        seq = int(row[0]) if row else 0
        printers = [
            printer_record(dict(r))
            for r in db.execute("SELECT * FROM printers WHERE retired_at IS NULL")
        ]
        agents = [
            agent_record(dict(r))
            for r in db.execute("SELECT * FROM agents WHERE retired_at IS NULL")
        ]
        alerts = [
            alert_record(dict(r))
            for r in db.execute("SELECT * FROM alerts WHERE state != 'cleared' ORDER BY id")
        ]
        alerts += [
            alert_record(dict(r))
            for r in db.execute(
                "SELECT * FROM alerts WHERE state = 'cleared' ORDER BY id DESC LIMIT ?",
                (recent_alerts,),
            )
        ]
        active = db.execute(
            "SELECT * FROM jobs WHERE status IN ('queued', 'dispatched', 'printing') "
            "ORDER BY id LIMIT ?",
            (max_active_jobs + 1,),
        ).fetchall()
        finished = db.execute(
            "SELECT * FROM jobs WHERE status NOT IN ('queued', 'dispatched', 'printing') "
            "ORDER BY id DESC LIMIT ?",
            (recent_jobs,),
        ).fetchall()
    jobs = [job_record(dict(r)) for r in active[:max_active_jobs]]
    jobs += [job_record(dict(r)) for r in finished]
    return {
        "seq": seq,
        "printers": printers,
        "agents": agents,
        "alerts": alerts,
        "jobs": jobs,
        # False when there were more unfinished jobs than fit: the company hub must then
        # not conclude that an unfinished job it holds but did not get here has ended.
        "complete": len(active) <= max_active_jobs,
    }


def delete_through(db: Session, seq: int) -> int:
    """Forget what the company hub acknowledged."""
    return db.execute("DELETE FROM upstream_outbox WHERE seq <= ?", (seq,)).rowcount


def trim(db: Session, limit: int) -> int:
    """Keep at most ``limit`` entries (the newest); returns how many were dropped."""
    (count,) = db.execute("SELECT COUNT(*) FROM upstream_outbox").fetchone()
    extra = int(count) - limit
    if extra <= 0:
        return 0
    return db.execute(
        "DELETE FROM upstream_outbox WHERE seq IN "
        "(SELECT seq FROM upstream_outbox ORDER BY seq LIMIT ?)",
        (extra,),
    ).rowcount
