"""On a company hub: each branch's link state and the mirror of its printers, jobs,
alerts and agents.

Mirror rows hold the record as the company shows it (ids made global, see
``pm_hub.global_ids``) and ``version``: the outbox sequence number of the branch
change it came from (or of the snapshot). A change is applied only when its
sequence number is above the branch's ``last_seq`` (so a batch delivered twice is
applied once) and above the row's version (so an entry older than a snapshot
cannot roll the mirror back). ``last_seq`` moves in the same transaction as the
rows it covers.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from pm_core.sql import Session
from pm_hub.global_ids import global_id, globalize

TABLES = {
    "printer": "mirror_printers",
    "job": "mirror_jobs",
    "alert": "mirror_alerts",
    "agent": "mirror_agents",
}

Record = dict[str, Any]
#: (kind, new record or None when removed, previous record or None)
Applied = tuple[str, Record | None, Record | None]


class BranchConflict(Exception):
    """The branch id belongs to another company on this hub."""


def _dumps(record: Record) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


# -- links -------------------------------------------------------------------------------


def open_link(
    db: Session,
    *,
    branch_id: int,
    company_id: int,
    stream_id: str,
    name: str,
    version: str | None,
) -> dict[str, Any]:
    """A branch hub connected: make its company and branch rows if new, note the link,
    and start its mirror afresh when its outbox stream is a new one."""
    now = time.time()
    branch = db.execute("SELECT company_id FROM branches WHERE id = ?", (branch_id,)).fetchone()
    if branch is not None and branch["company_id"] != company_id:
        raise BranchConflict(f"branch {branch_id} belongs to another company on this hub")
    if db.execute("SELECT 1 FROM companies WHERE id = ?", (company_id,)).fetchone() is None:
        db.execute(
            "INSERT INTO companies (id, name, created_at) VALUES (?, ?, ?)",
            (company_id, f"Company {company_id}", now),
        )
    if branch is None:
        db.execute(
            "INSERT INTO branches (id, company_id, name, created_at) VALUES (?, ?, ?, ?)",
            (branch_id, company_id, name, now),
        )
    else:
        db.execute("UPDATE branches SET name = ? WHERE id = ?", (name, branch_id))
    link = db.execute("SELECT * FROM branch_links WHERE branch_id = ?", (branch_id,)).fetchone()
    reset = False
    if link is None:
        db.execute(
            "INSERT INTO branch_links (branch_id, company_id, stream_id, last_seq, hub_version, "
            "first_seen, connected_at) VALUES (?, ?, ?, 0, ?, ?, ?)",
            (branch_id, company_id, stream_id, version, now, now),
        )
    else:
        reset = link["stream_id"] != stream_id
        if reset:
            for table in TABLES.values():
                db.execute(f"DELETE FROM {table} WHERE branch_id = ?", (branch_id,))
        db.execute(
            "UPDATE branch_links SET company_id = ?, stream_id = ?, hub_version = ?, "
            "connected_at = ?, disconnected_at = NULL, "
            "last_seq = CASE WHEN ? = 1 THEN 0 ELSE last_seq END WHERE branch_id = ?",
            (company_id, stream_id, version, now, int(reset), branch_id),
        )
    row = dict(
        db.execute("SELECT * FROM branch_links WHERE branch_id = ?", (branch_id,)).fetchone()
    )
    row["reset"] = reset
    return row


def close_link(db: Session, branch_id: int, connected_at: float | None, at: float) -> None:
    """The connection that opened at ``connected_at`` ended (a newer one, perhaps on
    another process, is left as it is)."""
    db.execute(
        "UPDATE branch_links SET disconnected_at = ? WHERE branch_id = ? AND connected_at = ?",
        (at, branch_id, connected_at),
    )


def note_sync(db: Session, branch_id: int, at: float) -> None:
    db.execute("UPDATE branch_links SET last_sync_at = ? WHERE branch_id = ?", (at, branch_id))


def all_links(db: Session) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT l.*, b.name AS name FROM branch_links l JOIN branches b ON b.id = l.branch_id "
        "ORDER BY l.branch_id"
    ).fetchall()
    return [dict(r) for r in rows]


# -- applying what a branch sends -------------------------------------------------------------


def _columns(kind: str, record: Record) -> dict[str, Any]:
    if kind == "job":
        return {
            "status": record.get("status"),
            "printer_id": record.get("printer_id"),
            "station": record.get("station"),
            "created_at": record.get("created_at"),
        }
    if kind == "alert":
        return {"state": record.get("state"), "opened_at": record.get("opened_at")}
    return {}


def _put(
    db: Session,
    kind: str,
    record: Record,
    text: str,
    version: int,
) -> None:
    values = {
        "id": record["id"],
        "branch_id": record["branch_id"],
        "company_id": record["company_id"],
        "version": version,
        "record": text,
        **_columns(kind, record),
    }
    db.execute(_put_sql(kind, tuple(values)), list(values.values()))


@functools.lru_cache(maxsize=16)
def _put_sql(kind: str, names: tuple[str, ...]) -> str:
    """Insert the row, or replace every column of the one with its id."""
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
    return (
        f"INSERT INTO {TABLES[kind]} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def _current(db: Session, kind: str, gid: int) -> tuple[int, str] | None:
    row = db.execute(f"SELECT version, record FROM {TABLES[kind]} WHERE id = ?", (gid,)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _upsert(
    db: Session,
    kind: str,
    record: Record | None,
    gid: int,
    version: int,
    *,
    branch_id: int,
    company_id: int,
) -> Applied | None:
    """Store one object at ``version`` unless the mirror already has it at a newer one.
    Returns what changed (None when nothing visible did)."""
    current = _current(db, kind, gid)
    if current is not None and current[0] > version:
        return None
    previous = json.loads(current[1]) if current is not None else None
    if record is None:
        if current is None:
            return None
        db.execute(f"DELETE FROM {TABLES[kind]} WHERE id = ?", (gid,))
        return (kind, None, previous)
    shown = globalize(kind, record, branch_id=branch_id, company_id=company_id)
    text = _dumps(shown)
    if current is not None and current[1] == text:
        db.execute(f"UPDATE {TABLES[kind]} SET version = ? WHERE id = ?", (version, gid))
        return None
    _put(db, kind, shown, text, version)
    return (kind, shown, previous)


def apply_changes(
    db: Session,
    *,
    branch_id: int,
    company_id: int,
    entries: list[dict[str, Any]],
) -> tuple[list[Applied], int, int]:
    """Apply outbox entries in order; returns (what changed, the branch's last applied
    sequence number, how many entries were repeats and skipped).

    The branch's link row is locked first (an update that changes nothing): two
    company-hub processes that both hold a batch of the same branch for a moment (its
    link moving from one to the other) apply it one after the other, the second
    skipping what the first applied."""
    row = db.execute(
        "UPDATE branch_links SET last_seq = last_seq WHERE branch_id = ? RETURNING last_seq",
        (branch_id,),
    ).fetchone()
    last = int(row[0]) if row else 0
    applied: list[Applied] = []
    repeats = 0
    for entry in entries:
        seq = entry["seq"]
        if seq <= last:
            repeats += 1
            continue
        last = seq
        gid = global_id(branch_id, entry["id"])
        change = _upsert(
            db,
            entry["kind"],
            entry["record"],
            gid,
            seq,
            branch_id=branch_id,
            company_id=company_id,
        )
        if change is not None:
            applied.append(change)
    now = time.time()
    db.execute(
        "UPDATE branch_links SET last_seq = ?, last_sync_at = ? WHERE branch_id = ?",
        (last, now, branch_id),
    )
    return applied, last, repeats


def apply_snapshot(
    db: Session,
    *,
    branch_id: int,
    company_id: int,
    kind: str,
    seq: int,
    records: list[Record],
) -> list[Applied]:
    """Part of a branch's snapshot: the state of these objects as of outbox ``seq``."""
    applied: list[Applied] = []
    for record in records:
        gid = global_id(branch_id, record["id"])
        change = _upsert(db, kind, record, gid, seq, branch_id=branch_id, company_id=company_id)
        if change is not None:
            applied.append(change)
    return applied


def finish_snapshot(
    db: Session,
    *,
    branch_id: int,
    kind: str,
    kept: set[int],
    complete: bool = True,
) -> list[Applied]:
    """After the last part of a snapshot: drop the mirror's objects of this kind the
    branch no longer has. Printers and agents: any not sent. Alerts: not-cleared ones
    not sent (the snapshot holds every alert not cleared). Jobs: unfinished ones not
    sent, if the snapshot held every unfinished job. Finished jobs and cleared alerts
    are history and stay. Pending outbox entries bring back anything still current."""
    table = TABLES[kind]
    sql = f"SELECT id, record FROM {table} WHERE branch_id = ?"
    if kind == "alert":
        sql += " AND state != 'cleared'"
    elif kind == "job":
        if not complete:
            return []
        sql += " AND status IN ('queued', 'dispatched', 'printing')"
    removed: list[Applied] = []
    for row in db.execute(sql, (branch_id,)).fetchall():
        if row["id"] not in kept:
            db.execute(f"DELETE FROM {table} WHERE id = ?", (row["id"],))
            removed.append((kind, None, json.loads(row["record"])))
    return removed


# -- reading -------------------------------------------------------------------------------


def load(db: Session, branch_id: int | None = None) -> dict[str, list[Record]]:
    """What the company hub keeps in memory: printers, agents, alerts not cleared,
    unfinished jobs (of every branch, or of one)."""
    where, params = ("", ()) if branch_id is None else (" AND branch_id = ?", (branch_id,))

    def records(sql: str) -> list[Record]:
        return [json.loads(r[0]) for r in db.execute(sql + where, params)]

    return {
        "printers": records("SELECT record FROM mirror_printers WHERE 1 = 1"),
        "agents": records("SELECT record FROM mirror_agents WHERE 1 = 1"),
        "alerts": records("SELECT record FROM mirror_alerts WHERE state != 'cleared'"),
        "jobs": records(
            "SELECT record FROM mirror_jobs WHERE status IN ('queued', 'dispatched', 'printing')"
        ),
    }


def _tenant(sql: str, params: list[Any], company_id: int, branch_ids: list[int] | None) -> str:
    sql += " WHERE company_id = ?"
    params.append(company_id)
    if branch_ids is not None:
        sql += f" AND branch_id IN ({','.join('?' * len(branch_ids))})"
        params.extend(branch_ids)
    return sql


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
) -> list[Record]:
    params: list[Any] = []
    sql = _tenant("SELECT record FROM mirror_jobs", params, company_id, branch_ids)
    if statuses:
        sql += f" AND status IN ({','.join('?' * len(statuses))})"
        params.extend(statuses)
    for column, op, value in (
        ("printer_id", "=", printer_id),
        ("station", "=", station),
        ("created_at", ">=", since),
        ("created_at", "<", until),
        ("id", "<", before_id),
    ):
        if value is not None:
            sql += f" AND {column} {op} ?"
            params.append(value)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return [json.loads(r[0]) for r in db.execute(sql, params).fetchall()]


def list_alerts(
    db: Session,
    *,
    company_id: int,
    branch_ids: list[int] | None,
    states: list[str] | None = None,
    since: float | None = None,
    limit: int = 200,
) -> list[Record]:
    params: list[Any] = []
    sql = _tenant("SELECT record FROM mirror_alerts", params, company_id, branch_ids)
    if states:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params.extend(states)
    if since is not None:
        sql += " AND opened_at >= ?"
        params.append(since)
    sql += " ORDER BY opened_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return [json.loads(r[0]) for r in db.execute(sql, params).fetchall()]


def get(db: Session, kind: str, gid: int) -> Record | None:
    row = db.execute(f"SELECT record FROM {TABLES[kind]} WHERE id = ?", (gid,)).fetchone()
    return json.loads(row[0]) if row else None


def prune_jobs(db: Session, keep_per_branch: int) -> int:
    """Keep the newest ``keep_per_branch`` finished jobs of each branch (and every
    unfinished one); returns how many were removed."""
    removed = 0
    for (branch_id,) in db.execute("SELECT DISTINCT branch_id FROM mirror_jobs").fetchall():
        removed += db.execute(
            "DELETE FROM mirror_jobs WHERE branch_id = ? "
            "AND status NOT IN ('queued', 'dispatched', 'printing') AND id NOT IN "
            "(SELECT id FROM mirror_jobs WHERE branch_id = ? ORDER BY id DESC LIMIT ?)",
            (branch_id, branch_id, keep_per_branch),
        ).rowcount
    return removed
