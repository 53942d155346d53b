"""Credentials from the command line, with or without a running hub: license keys
and operator tokens are created, listed and revoked in the hub's database (safe
while the hub runs: SQLite WAL, or PostgreSQL with ``--database postgresql://...``).
A running hub notices a revocation within a second and closes the connections that
used it. Tokens are signed with the secret in the data dir either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pm_core.sql import Session
from pm_hub import auth
from pm_hub.config import HubSettings
from pm_hub.store import Database, prepare_hub_db, tenants
from pm_hub.store import credentials as credential_store

T = TypeVar("T")


def _with_db(data_dir: Path, write: Callable[[Session], T], database: str | None = None) -> T:
    """Run ``write`` in the hub's store: ``database`` (a ``postgresql://`` URL or a
    path), else the SQLite file in ``data_dir``."""
    db = Database(database or data_dir / "hub.sqlite")
    db.start(prepare_hub_db)
    try:
        return asyncio.run(db.write(write))
    finally:
        db.close()


def create_license_offline(
    data_dir: Path,
    *,
    branch_id: int | None = None,
    label: str | None = None,
    database: str | None = None,
) -> str:
    """A new license key for an agent of ``branch_id`` (default: the first branch)."""
    key = auth.new_license_key()

    def write(d: Session) -> None:
        _company, default_branch = tenants.ensure_default_tenant(d)
        branch = branch_id or default_branch
        row = tenants.get_branch(d, branch)
        if row is None:
            raise ValueError(f"branch {branch} does not exist")
        tenants.insert_license(
            d,
            key_hash=auth.hash_license_key(key),
            key_prefix=auth.license_prefix(key),
            company_id=row["company_id"],
            branch_id=branch,
            label=label,
        )

    _with_db(data_dir, write, database)
    return key


def list_licenses(data_dir: Path, *, database: str | None = None) -> list[dict[str, Any]]:
    return _with_db(data_dir, credential_store.list_licenses, database)


def show_license(data_dir: Path, which: str, *, database: str | None = None) -> dict[str, Any]:
    """One license by id or key prefix, with its agent; ValueError when unknown."""
    row = _with_db(data_dir, lambda d: credential_store.find_license(d, which), database)
    if row is None:
        raise ValueError(f"no license {which!r} (see pm license list)")
    return row


def revoke_license(data_dir: Path, which: str, *, database: str | None = None) -> dict[str, Any]:
    """Revoke a license by id or key prefix; ValueError when there is no such license."""
    row = _with_db(data_dir, lambda d: credential_store.revoke_license(d, which), database)
    if row is None:
        raise ValueError(f"no license {which!r} (see pm license list)")
    return row


def issuer_for(settings: HubSettings) -> auth.TokenIssuer:
    """The token issuer of the hub with these settings (its key, its lifetimes)."""
    return auth.TokenIssuer(
        auth.load_or_create_secret(settings.data_dir),
        max_ttl_s=settings.token_max_ttl_s,
        branch_max_ttl_s=settings.branch_token_max_ttl_s,
    )


def issue_token(settings: HubSettings, **claims: Any) -> auth.IssuedToken:
    """Sign a token (``TokenIssuer.issue`` arguments) and note it in the register, so
    ``pm token list`` shows it and ``pm token revoke`` can take it back."""
    issued = issuer_for(settings).issue(**claims)
    _with_db(
        settings.data_dir,
        lambda d: credential_store.record_token(d, issued.claims),
        settings.database_url,
    )
    return issued


def list_tokens(
    data_dir: Path, *, include_ended: bool = False, database: str | None = None
) -> list[dict[str, Any]]:
    return _with_db(
        data_dir, lambda d: credential_store.list_tokens(d, include_ended=include_ended), database
    )


def revoke_token(data_dir: Path, token_id: str, *, database: str | None = None) -> int:
    """Revoke a token (and the tokens refreshed from it); ValueError when unknown."""

    def write(d: Session) -> int:
        if not credential_store.token_known(d, token_id):
            raise ValueError(f"no token {token_id!r} (see pm token list)")
        return credential_store.revoke_token(d, token_id)

    return _with_db(data_dir, write, database)
