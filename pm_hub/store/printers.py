"""Printers and their status history."""

from __future__ import annotations

import json
import time
from typing import Any

from pm_core.sql import Session


def upsert_printer(
    db: Session,
    *,
    company_id: int,
    branch_id: int,
    agent_id: int | None,
    identity: str,
    name: str,
    address: str,
    kind: str,
    model: str | None,
    station: str | None,
    status_supported: bool,
    serial: str | None = None,
    mac: str | None = None,
    capabilities: dict[str, Any] | None = None,
    previous_identity: str | None = None,
) -> dict[str, Any]:
    """Create the printer or refresh the one with the same identity in the branch.

    A printer found again (reconnect, new address) keeps its id, station, name given
    by the user and history; only where it is reached and by which agent change.
    ``previous_identity`` is what the agent called it before it learned better
    (its address, before the printer told its serial): that record is renamed
    rather than a second one made, unless the new identity already has one.
    """
    now = time.time()
    row = db.execute(
        "SELECT * FROM printers WHERE branch_id = ? AND identity = ?", (branch_id, identity)
    ).fetchone()
    renamable = previous_identity and not previous_identity.startswith(
        ("serial:", "mac:", "cloudprnt:")
    )
    if row is None and renamable and previous_identity != identity:
        old = db.execute(
            "SELECT id FROM printers WHERE branch_id = ? AND identity = ?",
            (branch_id, previous_identity),
        ).fetchone()
        if old is not None:
            db.execute("UPDATE printers SET identity = ? WHERE id = ?", (identity, old["id"]))
            row = db.execute("SELECT * FROM printers WHERE id = ?", (old["id"],)).fetchone()
    if row is None:
        printer_id = db.execute(
            """
            INSERT INTO printers (company_id, branch_id, agent_id, identity, name, address, kind,
                                  model, station, status, flags, status_supported, last_seen,
                                  created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown', '{}', ?, ?, ?, ?)
            RETURNING id
            """,
            (
                company_id,
                branch_id,
                agent_id,
                identity,
                name,
                address,
                kind,
                model,
                station,
                int(status_supported),
                now,
                now,
                now,
            ),
        ).fetchone()[0]
    else:
        printer_id = row["id"]
        db.execute(
            """
            UPDATE printers SET agent_id = ?, address = ?, kind = ?, model = COALESCE(?, model),
                   station = COALESCE(station, ?), status_supported = ?, last_seen = ?,
                   updated_at = ?, retired_at = NULL, retired_by = NULL
            WHERE id = ?
            """,
            (
                agent_id,
                address,
                kind,
                model,
                station,
                int(status_supported),
                now,
                now,
                printer_id,
            ),
        )
    if serial is not None or mac is not None or capabilities is not None:
        profile = (capabilities or {}).get("profile")
        db.execute(
            "UPDATE printers SET serial = COALESCE(?, serial), mac = COALESCE(?, mac), "
            "profile = COALESCE(?, profile), capabilities = COALESCE(?, capabilities) "
            "WHERE id = ?",
            (
                serial,
                mac,
                profile if isinstance(profile, str) else None,
                json.dumps(capabilities, sort_keys=True) if capabilities is not None else None,
                printer_id,
            ),
        )
    return dict(db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone())


def set_printer_status(
    db: Session,
    printer_id: int,
    status: str,
    flags: dict[str, bool],
    *,
    at: float | None = None,
) -> dict[str, Any] | None:
    """Record a status report; a change is also appended to the printer's history."""
    now = time.time() if at is None else at
    row = db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone()
    if row is None:
        return None
    flags_json = json.dumps(flags, sort_keys=True)
    changed = row["status"] != status or row["flags"] != flags_json
    if changed:
        db.execute(
            "UPDATE printers SET status = ?, flags = ?, last_seen = ?, status_changed_at = ?, "
            "updated_at = ? WHERE id = ?",
            (status, flags_json, now, now, now, printer_id),
        )
        db.execute(
            "INSERT INTO printer_events (printer_id, at, status, flags) VALUES (?, ?, ?, ?)",
            (printer_id, now, status, flags_json),
        )
    else:
        db.execute("UPDATE printers SET last_seen = ? WHERE id = ?", (now, printer_id))
    return dict(db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone())


def record_status_changes(db: Session, changes: list[tuple[Any, ...]]) -> None:
    """Status changes the hub already holds in memory, as (printer_id, status, flags_json,
    at) in the order they happened: each printer's row and one history entry per change
    (write-behind from the status handler, in bulk; no reads)."""
    db.conn.executemany(
        "UPDATE printers SET status = ?, flags = ?, last_seen = ?, status_changed_at = ?, "
        "updated_at = ? WHERE id = ?",
        [(status, flags, at, at, at, pid) for pid, status, flags, at in changes],
    )
    db.conn.executemany(
        "INSERT INTO printer_events (printer_id, at, status, flags) VALUES (?, ?, ?, ?)",
        [(pid, at, status, flags) for pid, status, flags, at in changes],
    )


def mark_seen(db: Session, seen: dict[int, float]) -> None:
    """Printers that reported an unchanged status: when they were last heard from."""
    db.conn.executemany(
        "UPDATE printers SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)",
        [(at, printer_id, at) for printer_id, at in seen.items()],
    )


def mark_agent_printers_offline(
    db: Session, agent_id: int, *, planned: bool = False
) -> list[dict[str, Any]]:
    """When an agent goes away its printers can no longer be reached: status offline.
    ``planned``: it stopped on purpose (flag ``agent_stopped``: no alert for it)."""
    now = time.time()
    flags = {"agent_disconnected": True, **({"agent_stopped": True} if planned else {})}
    rows = db.execute(
        "SELECT id FROM printers WHERE agent_id = ? AND status != 'offline' AND retired_at IS NULL",
        (agent_id,),
    ).fetchall()
    changed = []
    for (printer_id,) in rows:
        db.execute(
            "UPDATE printers SET status = 'offline', flags = ?, status_changed_at = ?, "
            "updated_at = ? WHERE id = ?",
            (json.dumps(flags), now, now, printer_id),
        )
        db.execute(
            "INSERT INTO printer_events (printer_id, at, status, flags) "
            "VALUES (?, ?, 'offline', ?)",
            (printer_id, now, json.dumps(flags)),
        )
        changed.append(
            dict(db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone())
        )
    return changed


def mark_all_agent_printers_offline(db: Session) -> int:
    """At hub start no agent is connected: every agent-driven printer is unreachable."""
    agent_ids = [r[0] for r in db.execute("SELECT DISTINCT agent_id FROM printers").fetchall()]
    return sum(len(mark_agent_printers_offline(db, a)) for a in agent_ids if a is not None)


def update_printer_settings(
    db: Session, printer_id: int, changes: dict[str, Any]
) -> dict[str, Any] | None:
    allowed = {
        "name",
        "station",
        "station_priority",
        "paused",
        "default_expiry_s",
        "profile_override",
        "language_override",
        "text_mode",
    }
    sets = {k: v for k, v in changes.items() if k in allowed}
    if sets:
        now = time.time()
        assignments = ", ".join(f"{k} = ?" for k in sets)
        params: list[Any] = [*sets.values()]
        if "paused" in sets:
            # When it was paused: kept while it stays paused (a second pause changes
            # nothing), cleared on resume. The right side reads the row as it was.
            assignments += (
                ", paused_at = CASE WHEN ? = 0 THEN NULL "
                "WHEN paused = 1 AND paused_at IS NOT NULL THEN paused_at ELSE ? END"
            )
            params += [int(bool(sets["paused"])), now]
        db.execute(
            f"UPDATE printers SET {assignments}, updated_at = ? WHERE id = ?",
            (*params, now, printer_id),
        )
    row = db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone()
    return dict(row) if row else None


def set_printer_capabilities(
    db: Session, printer_id: int, capabilities: dict[str, Any]
) -> dict[str, Any] | None:
    """What the agent says the printer can do now (after a profile change)."""
    profile = capabilities.get("profile")
    db.execute(
        "UPDATE printers SET profile = COALESCE(?, profile), capabilities = ?, updated_at = ? "
        "WHERE id = ?",
        (
            profile if isinstance(profile, str) else None,
            json.dumps(capabilities, sort_keys=True),
            time.time(),
            printer_id,
        ),
    )
    row = db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone()
    return dict(row) if row else None


def get_printer(db: Session, printer_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM printers WHERE id = ?", (printer_id,)).fetchone()
    return dict(row) if row else None


def all_printers(db: Session) -> list[dict[str, Any]]:
    """Every printer the hub serves (retired ones left out)."""
    rows = db.execute("SELECT * FROM printers WHERE retired_at IS NULL ORDER BY id").fetchall()
    return [dict(r) for r in rows]


#: ``retired_by`` of a printer an operator removed (the others come back when their
#: agent registers them again).
REMOVED_BY_OPERATOR = "operator"


def retire_printers(db: Session, printer_ids: list[int], *, by: str) -> list[dict[str, Any]]:
    """The hub no longer serves these printers (the rows stay for the jobs' history):
    ``by`` is ``operator:NAME`` (removed), ``agent`` (dropped from its agent's
    configuration) or ``agent-retired``."""
    if not printer_ids:
        return []
    now = time.time()
    marks = ", ".join("?" for _ in printer_ids)
    db.execute(
        f"UPDATE printers SET retired_at = ?, retired_by = ?, updated_at = ? "
        f"WHERE id IN ({marks}) AND retired_at IS NULL",
        (now, by, now, *printer_ids),
    )
    rows = db.execute(f"SELECT * FROM printers WHERE id IN ({marks})", printer_ids).fetchall()
    return [dict(r) for r in rows]


def removed_by_operator(
    db: Session, branch_id: int, identities: list[str]
) -> dict[str, Any] | None:
    """The printer an operator removed that has one of these identities, if any."""
    identities = [i for i in identities if i]
    if not identities:
        return None
    marks = ", ".join("?" for _ in identities)
    row = db.execute(
        f"SELECT * FROM printers WHERE branch_id = ? AND identity IN ({marks}) "
        "AND retired_at IS NOT NULL AND retired_by LIKE ?",
        (branch_id, *identities, REMOVED_BY_OPERATOR + "%"),
    ).fetchone()
    return dict(row) if row else None


def printer_history(db: Session, printer_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT at, status, flags FROM printer_events WHERE printer_id = ? "
        "ORDER BY id DESC LIMIT ?",
        (printer_id, limit),
    ).fetchall()
    return [{"at": r["at"], "status": r["status"], "flags": json.loads(r["flags"])} for r in rows]
