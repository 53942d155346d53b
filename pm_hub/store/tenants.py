"""Companies, branches, licenses and agents."""

from __future__ import annotations

import time
from typing import Any

from pm_core.sql import Session


def ensure_default_tenant(db: Session) -> tuple[int, int]:
    """The first company and branch, created on first start; returns their ids."""
    row = db.execute("SELECT id FROM companies ORDER BY id LIMIT 1").fetchone()
    now = time.time()
    if row is None:
        company_id = db.execute(
            "INSERT INTO companies (name, created_at) VALUES (?, ?) RETURNING id",
            ("My restaurant", now),
        ).fetchone()[0]
    else:
        company_id = row[0]
    row = db.execute(
        "SELECT id FROM branches WHERE company_id = ? ORDER BY id LIMIT 1", (company_id,)
    ).fetchone()
    if row is None:
        branch_id = db.execute(
            "INSERT INTO branches (company_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            (company_id, "Main branch", now),
        ).fetchone()[0]
    else:
        branch_id = row[0]
    assert company_id is not None and branch_id is not None
    return int(company_id), int(branch_id)


def get_branch(db: Session, branch_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM branches WHERE id = ?", (branch_id,)).fetchone()
    return dict(row) if row else None


def list_branches(db: Session, company_id: int | None = None) -> list[dict[str, Any]]:
    if company_id is None:
        rows = db.execute("SELECT * FROM branches ORDER BY id").fetchall()
    else:
        rows = db.execute(
            "SELECT * FROM branches WHERE company_id = ? ORDER BY id", (company_id,)
        ).fetchall()
    return [dict(r) for r in rows]


def rename_branch(db: Session, branch_id: int, name: str) -> None:
    db.execute("UPDATE branches SET name = ? WHERE id = ?", (name, branch_id))


def insert_license(
    db: Session,
    *,
    key_hash: str,
    key_prefix: str,
    company_id: int,
    branch_id: int,
    label: str | None = None,
) -> int:
    row = db.execute(
        "INSERT INTO licenses (key_hash, key_prefix, company_id, branch_id, label, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (key_hash, key_prefix, company_id, branch_id, label, time.time()),
    ).fetchone()
    return int(row[0])


def find_license(db: Session, key_hash: str) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM licenses WHERE key_hash = ?", (key_hash,)).fetchone()
    return dict(row) if row else None


def bind_license(db: Session, license_id: int, device_id: str) -> bool:
    """Bind an unbound license to ``device_id``; False if it is bound to another device."""
    cur = db.execute(
        "UPDATE licenses SET device_id = ?, bound_at = ? WHERE id = ? AND device_id IS NULL",
        (device_id, time.time(), license_id),
    )
    if cur.rowcount:
        return True
    row = db.execute("SELECT device_id FROM licenses WHERE id = ?", (license_id,)).fetchone()
    return row is not None and row[0] == device_id


def agent_of_device(db: Session, device_id: str) -> dict[str, Any] | None:
    """The agent known by ``device_id`` with its license's company and revocation."""
    row = db.execute(
        "SELECT a.*, l.company_id AS license_company_id, l.revoked_at AS license_revoked_at "
        "FROM agents a LEFT JOIN licenses l ON l.id = a.license_id WHERE a.device_id = ?",
        (device_id,),
    ).fetchone()
    return dict(row) if row else None


def upsert_agent(
    db: Session,
    *,
    device_id: str,
    license_id: int,
    company_id: int,
    branch_id: int,
    name: str | None,
    version: str | None,
    hostname: str | None,
) -> dict[str, Any]:
    now = time.time()
    db.execute(
        """
        INSERT INTO agents (device_id, license_id, company_id, branch_id, name, version,
                            hostname, connected, first_seen, last_seen)
        VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET
            license_id = excluded.license_id, company_id = excluded.company_id,
            branch_id = excluded.branch_id, name = COALESCE(excluded.name, agents.name),
            version = excluded.version, hostname = excluded.hostname,
            connected = 1, last_seen = excluded.last_seen, retired_at = NULL
        """,
        (device_id, license_id, company_id, branch_id, name, version, hostname, now, now),
    )
    row = db.execute("SELECT * FROM agents WHERE device_id = ?", (device_id,)).fetchone()
    return dict(row)


def set_agent_disconnected(db: Session, agent_id: int) -> dict[str, Any] | None:
    now = time.time()
    db.execute(
        "UPDATE agents SET connected = 0, last_disconnect = ?, last_seen = ? WHERE id = ?",
        (now, now, agent_id),
    )
    row = db.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
    return dict(row) if row else None


def agents_to_watch(db: Session) -> list[dict[str, Any]]:
    """Agents whose absence matters: every known agent whose license is not revoked and
    that was not retired."""
    rows = db.execute(
        "SELECT a.* FROM agents a LEFT JOIN licenses l ON l.id = a.license_id "
        "WHERE l.revoked_at IS NULL AND a.retired_at IS NULL ORDER BY a.id"
    ).fetchall()
    return [dict(r) for r in rows]


def mark_all_agents_disconnected(db: Session) -> None:
    """At hub start nobody is connected yet, whatever the file says."""
    db.execute("UPDATE agents SET connected = 0 WHERE connected = 1")


def list_agents(
    db: Session, *, company_id: int, branch_ids: list[int] | None
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM agents WHERE company_id = ? AND retired_at IS NULL"
    params: list[Any] = [company_id]
    if branch_ids is not None:
        sql += f" AND branch_id IN ({','.join('?' * len(branch_ids))})"
        params.extend(branch_ids)
    return [dict(r) for r in db.execute(sql + " ORDER BY id", params).fetchall()]


def retire_agent(db: Session, agent_id: int) -> dict[str, Any] | None:
    """The agent is gone for good: retired, its license revoked (it cannot connect
    again; a new license brings the machine back). Returns its row."""
    now = time.time()
    row = db.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        return None
    db.execute(
        "UPDATE agents SET retired_at = COALESCE(retired_at, ?), connected = 0 WHERE id = ?",
        (now, agent_id),
    )
    if row["license_id"] is not None:
        db.execute(
            "UPDATE licenses SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            (now, row["license_id"]),
        )
    return dict(db.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone())
