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
from dataclasses import dataclass, field
from typing import Any

from pm_core.sql import Cursor, Session, pipelined
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


def _row(kind: str, record: Record, text: str, version: int) -> dict[str, Any]:
    return {
        "id": record["id"],
        "branch_id": record["branch_id"],
        "company_id": record["company_id"],
        "version": version,
        "record": text,
        **_columns(kind, record),
    }


@functools.lru_cache(maxsize=16)
def _put_sql(kind: str, names: tuple[str, ...]) -> str:
    """Insert the row, or replace every column of the one with its id."""
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "id")
    return (
        f"INSERT INTO {TABLES[kind]} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


#: Ids asked for in one ``IN (...)``.
_IDS_PER_QUERY = 500

#: (kind, the branch's record or None when removed, global id, version)
_Item = tuple[str, Record | None, int, int]


def _ask_current(db: Session, items: list[_Item]) -> list[Cursor]:
    """Ask for the (version, record text) of every object ``items`` touch: one query
    per kind (and per 500 ids), not one per object; read with :func:`_current`."""
    wanted: dict[str, set[int]] = {}
    for kind, _record, gid, _version in items:
        wanted.setdefault(kind, set()).add(gid)
    cursors = []
    for kind, gids in wanted.items():
        ids = sorted(gids)
        for at in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[at : at + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            cursors.append(
                db.execute(
                    f"SELECT '{kind}', id, version, record FROM {TABLES[kind]} "
                    f"WHERE id IN ({marks})",
                    chunk,
                )
            )
    return cursors


def _current(cursors: list[Cursor]) -> dict[tuple[str, int], tuple[int, str]]:
    return {
        (str(row[0]), int(row[1])): (int(row[2]), str(row[3]))
        for cursor in cursors
        for row in cursor.fetchall()
    }


@dataclass
class _Writes:
    puts: dict[tuple[str, int], tuple[Record, str, int]] = field(default_factory=dict)
    bumps: dict[tuple[str, int], int] = field(default_factory=dict)
    deletes: set[tuple[str, int]] = field(default_factory=set)

    def send(self, db: Session) -> None:
        """One statement per kind and kind of write (``executemany``)."""
        for kind in TABLES:
            gone = [(gid,) for k, gid in self.deletes if k == kind]
            if gone:
                db.conn.executemany(f"DELETE FROM {TABLES[kind]} WHERE id = ?", gone)
            rows = [_row(kind, *put) for (k, _gid), put in self.puts.items() if k == kind]
            if rows:
                db.conn.executemany(
                    _put_sql(kind, tuple(rows[0])), [tuple(row.values()) for row in rows]
                )
            moved = [(version, gid) for (k, gid), version in self.bumps.items() if k == kind]
            if moved:
                db.conn.executemany(f"UPDATE {TABLES[kind]} SET version = ? WHERE id = ?", moved)


def _plan(
    writes: _Writes,
    items: list[_Item],
    current: dict[tuple[str, int], tuple[int, str]],
    *,
    branch_id: int,
    company_id: int,
) -> list[Applied]:
    """Each object at its version unless the mirror has it at a newer one, in order:
    what changed (nothing for an object whose record is unchanged); what to write
    joins ``writes``."""
    applied: list[Applied] = []
    for kind, record, gid, version in items:
        key = (kind, gid)
        known = current.get(key)
        if known is not None and known[0] > version:
            continue  # older than what the mirror has (a snapshot overtook it)
        previous = json.loads(known[1]) if known is not None else None
        if record is None:
            if known is None:
                continue
            current.pop(key)
            writes.puts.pop(key, None)
            writes.bumps.pop(key, None)
            writes.deletes.add(key)
            applied.append((kind, None, previous))
            continue
        shown = globalize(kind, record, branch_id=branch_id, company_id=company_id)
        text = _dumps(shown)
        current[key] = (version, text)
        if known is not None and known[1] == text:
            if key in writes.puts:
                writes.puts[key] = (writes.puts[key][0], text, version)
            else:
                writes.bumps[key] = version
            continue
        writes.deletes.discard(key)
        writes.bumps.pop(key, None)
        writes.puts[key] = (shown, text, version)
        applied.append((kind, shown, previous))
    return applied


#: What :func:`apply_changes` returns: (what changed, the branch's last applied
#: sequence number, how many entries were repeats and skipped).
Outcome = tuple[list[Applied], int, int]


def apply_changes(
    db: Session,
    *,
    branch_id: int,
    company_id: int,
    entries: list[dict[str, Any]],
) -> Outcome:
    """Apply a branch's outbox entries in order (see :func:`apply_changes_many`)."""
    batch = {"branch_id": branch_id, "company_id": company_id, "entries": entries}
    return apply_changes_many(db, [batch])[0]


def apply_changes_many(db: Session, batches: list[dict[str, Any]]) -> list[Outcome]:
    """Apply the outbox batches of many branches (``{branch_id, company_id,
    entries}``, each in order), one :data:`Outcome` per batch.

    The branches' link rows are locked first (an update that changes nothing): two
    company-hub processes that both hold a batch of the same branch for a moment (its
    link moving from one to the other) apply it one after the other, the second
    skipping what the first applied. However many batches, it is two rounds of
    statements (on PostgreSQL two round trips): the locks and what the mirror holds
    of every object, then every write."""
    branch_ids = sorted({int(b["branch_id"]) for b in batches})
    items = [
        [
            (e["kind"], e["record"], global_id(b["branch_id"], e["id"]), e["seq"])
            for e in b["entries"]
        ]
        for b in batches
    ]
    marks = ", ".join("?" * len(branch_ids))
    with pipelined(db):
        locked = db.execute(
            f"UPDATE branch_links SET last_seq = last_seq WHERE branch_id IN ({marks}) "
            "RETURNING branch_id, last_seq",
            branch_ids,
        )
        asked = _ask_current(db, [item for batch in items for item in batch])
    last = {int(row[0]): int(row[1]) for row in locked.fetchall()}
    current = _current(asked)
    writes = _Writes()
    outcomes: list[Outcome] = []
    for batch, batch_items in zip(batches, items, strict=True):
        branch_id = int(batch["branch_id"])
        seen = last.get(branch_id, 0)
        fresh: list[_Item] = []
        repeats = 0
        for item in batch_items:
            if item[3] <= seen:
                repeats += 1
                continue
            seen = item[3]
            fresh.append(item)
        if branch_id in last:
            last[branch_id] = seen
        applied = _plan(writes, fresh, current, branch_id=branch_id, company_id=batch["company_id"])
        outcomes.append((applied, seen, repeats))
    now = time.time()
    with pipelined(db):
        writes.send(db)
        db.conn.executemany(
            "UPDATE branch_links SET last_seq = ?, last_sync_at = ? WHERE branch_id = ?",
            [(seq, now, branch_id) for branch_id, seq in last.items()],
        )
    return outcomes


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
    items: list[_Item] = [(kind, r, global_id(branch_id, r["id"]), seq) for r in records]
    with pipelined(db):
        asked = _ask_current(db, items)
    writes = _Writes()
    applied = _plan(writes, items, _current(asked), branch_id=branch_id, company_id=company_id)
    with pipelined(db):
        writes.send(db)
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
