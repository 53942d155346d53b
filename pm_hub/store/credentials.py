"""SQL for the credentials an operator can list and take back: the tokens the hub's
key signed and the agents' license keys (their creation is in ``tenants``)."""

from __future__ import annotations

import json
import time
from typing import Any

from pm_core.sql import Session


def record_token(db: Session, claims: dict[str, Any]) -> None:
    """Note a token just signed (its claims), so it can be listed and revoked."""
    branch_ids = claims.get("branch_ids")
    db.execute(
        "INSERT INTO tokens (jti, session, sub, role, company_id, branch_ids, "
        "issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        (
            claims["jti"],
            claims.get("sess", claims["jti"]),
            claims["sub"],
            claims["role"],
            claims["company_id"],
            json.dumps(branch_ids) if branch_ids is not None else None,
            claims["iat"],
            claims["exp"],
        ),
    )


def list_tokens(db: Session, *, include_ended: bool = False) -> list[dict[str, Any]]:
    """Tokens newest first; without ``include_ended`` only those still usable."""
    where = "" if include_ended else "WHERE revoked_at IS NULL AND expires_at > ?"
    params: tuple[Any, ...] = () if include_ended else (time.time(),)
    rows = db.execute(f"SELECT * FROM tokens {where} ORDER BY issued_at DESC", params)
    out = []
    for row in rows.fetchall():
        record = dict(row)
        record["branch_ids"] = json.loads(record["branch_ids"]) if record["branch_ids"] else None
        out.append(record)
    return out


def revoke_token(db: Session, token_id: str) -> int:
    """Revoke the token ``token_id`` (a jti) and, when it began a session, every token
    refreshed from it. Returns how many were revoked now (0: unknown or already)."""
    cur = db.execute(
        "UPDATE tokens SET revoked_at = ? WHERE (jti = ? OR session = ?) AND revoked_at IS NULL",
        (time.time(), token_id, token_id),
    )
    return int(cur.rowcount or 0)


def token_known(db: Session, token_id: str) -> bool:
    return db.execute("SELECT 1 FROM tokens WHERE jti = ?", (token_id,)).fetchone() is not None


def revoked_token_ids(db: Session) -> set[str]:
    """Ids of revoked tokens that have not expired yet (an expired token is refused
    anyway): the hub refuses a token whose id or session is among them (a session's id
    is its first token's, so revoking that one ends every token refreshed from it)."""
    rows = db.execute(
        "SELECT jti FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > ?",
        (time.time(),),
    ).fetchall()
    return {r["jti"] for r in rows}


def list_licenses(db: Session) -> list[dict[str, Any]]:
    """Every license key (never the key itself: its prefix), oldest first."""
    rows = db.execute(
        "SELECT l.id, l.key_prefix, l.company_id, l.branch_id, l.device_id, l.label, "
        "l.created_at, l.bound_at, l.revoked_at, a.id AS agent_id, a.name AS agent_name, "
        "a.last_seen AS agent_last_seen FROM licenses l "
        "LEFT JOIN agents a ON a.license_id = l.id ORDER BY l.id"
    )
    return [dict(r) for r in rows.fetchall()]


def find_license(db: Session, which: str) -> dict[str, Any] | None:
    """The license with id or key prefix ``which`` (or the key itself), with its agent;
    ValueError when a prefix matches several."""
    if which.isdigit():
        rows = [r for r in list_licenses(db) if r["id"] == int(which)]
    else:
        rows = [
            r for r in list_licenses(db)
            if which == r["key_prefix"] or which.startswith(r["key_prefix"])
        ]  # fmt: skip
        if len({r["id"] for r in rows}) > 1:
            raise ValueError(f"{which!r} matches {len(rows)} licenses: give the id")
    if not rows:
        return None
    row = dict(rows[-1])
    agent = None
    if row["agent_id"] is not None:
        agent = db.execute(
            "SELECT connected, retired_at, hostname, version, first_seen FROM agents WHERE id = ?",
            (row["agent_id"],),
        ).fetchone()
    row["agent"] = dict(agent) if agent else None
    return row


def revoke_license(db: Session, which: str) -> dict[str, Any] | None:
    """Revoke the license with id or key prefix ``which``; the license row (None when
    there is no such license). Revoking twice keeps the first time."""
    if which.isdigit():
        row = db.execute("SELECT * FROM licenses WHERE id = ?", (int(which),)).fetchone()
    else:
        rows = db.execute(
            "SELECT * FROM licenses WHERE key_prefix = ? OR ? LIKE key_prefix || '%'",
            (which, which),
        ).fetchall()
        if len(rows) > 1:
            raise ValueError(f"{which!r} matches {len(rows)} licenses: give the id")
        row = rows[0] if rows else None
    if row is None:
        return None
    db.execute(
        "UPDATE licenses SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (time.time(), row["id"]),
    )
    updated = db.execute("SELECT * FROM licenses WHERE id = ?", (row["id"],)).fetchone()
    return dict(updated)


def revoked_license_ids(db: Session) -> set[int]:
    rows = db.execute("SELECT id FROM licenses WHERE revoked_at IS NOT NULL").fetchall()
    return {int(r["id"]) for r in rows}
