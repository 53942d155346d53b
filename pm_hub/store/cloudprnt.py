"""Star CloudPRNT printers: enrolled by MAC with a per-printer secret (only its hash
is kept), each tied to a printer row the hub shows like any other (no agent drives
it: ``agent_id`` NULL, ``kind`` ``cloudprnt``)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from pm_core.sql import Session
from pm_hub.store import tenants
from pm_hub.store.printers import upsert_printer

CLOUDPRNT_TABLE = """
    CREATE TABLE cloudprnt_printers (
        mac TEXT PRIMARY KEY,
        printer_id BIGINT NOT NULL REFERENCES printers(id),
        branch_id BIGINT NOT NULL,
        secret_hash TEXT NOT NULL,
        dots INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )"""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def enroll(
    db: Session,
    *,
    mac: str,
    name: str,
    secret: str,
    dots: int,
    station: str | None = None,
    branch_id: int | None = None,
) -> dict[str, Any]:
    """Enroll (or re-key) the printer with this MAC; returns its printer row. A MAC
    enrolled before keeps its printer record and history and gets the new secret."""
    company_default, branch_default = tenants.ensure_default_tenant(db)
    branch = tenants.get_branch(db, branch_id or branch_default)
    if branch is None:
        raise ValueError(f"branch {branch_id} does not exist")
    capabilities = {
        "language": "cloudprnt",
        "paper_width_dots": dots,
        "columns": max(16, dots // 12),
        "media_types": ["image/png"],
    }
    row = upsert_printer(
        db,
        company_id=branch["company_id"] or company_default,
        branch_id=branch["id"],
        agent_id=None,
        identity=f"cloudprnt:{mac}",
        name=name,
        address=f"cloudprnt://{mac}",
        kind="cloudprnt",
        model="Star CloudPRNT",
        station=station,
        status_supported=True,
        mac=mac,
        capabilities=capabilities,
    )
    db.execute("UPDATE printers SET name = ?, capabilities = ? WHERE id = ?",
               (name, json.dumps(capabilities, sort_keys=True), row["id"]))  # fmt: skip
    db.execute("DELETE FROM cloudprnt_printers WHERE mac = ?", (mac,))
    db.execute(
        "INSERT INTO cloudprnt_printers (mac, printer_id, branch_id, secret_hash, dots, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (mac, row["id"], branch["id"], hash_secret(secret), dots, time.time()),
    )
    return dict(db.execute("SELECT * FROM printers WHERE id = ?", (row["id"],)).fetchone())


def enrolled(db: Session, mac: str) -> dict[str, Any] | None:
    """The enrollment of ``mac`` with its printer row (``printer``), or None."""
    found = db.execute("SELECT * FROM cloudprnt_printers WHERE mac = ?", (mac,)).fetchone()
    if found is None:
        return None
    printer = db.execute("SELECT * FROM printers WHERE id = ?", (found["printer_id"],)).fetchone()
    if printer is None:
        return None
    return {**dict(found), "printer": dict(printer)}


def list_enrolled(db: Session) -> list[dict[str, Any]]:
    """The enrolled printers; ``last_seen`` is their last poll since they were enrolled
    (None before the first: enrolling stamps the printer record, not a poll)."""
    rows = db.execute(
        "SELECT c.mac, c.printer_id, c.dots, c.created_at, p.name, p.status, "
        "CASE WHEN p.last_seen > c.created_at THEN p.last_seen END AS last_seen "
        "FROM cloudprnt_printers c JOIN printers p ON p.id = c.printer_id ORDER BY c.mac"
    ).fetchall()
    return [dict(r) for r in rows]


def remove(db: Session, mac: str) -> bool:
    """Take the printer's enrollment back (its record and history stay)."""
    return db.execute("DELETE FROM cloudprnt_printers WHERE mac = ?", (mac,)).rowcount > 0
