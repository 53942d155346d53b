"""Creating license keys from the command line, with or without a running hub."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlite_utils

from pm_hub import auth
from pm_hub.store import Database, prepare_hub_db, tenants


async def _create(db: Database, branch_id: int | None, label: str | None) -> str:
    key = auth.new_license_key()

    def write(d: sqlite_utils.Database) -> None:
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

    await db.write(write)
    return key


def create_license_offline(
    data_dir: Path, *, branch_id: int | None = None, label: str | None = None
) -> str:
    """Open the hub's database file (safe while the hub runs: SQLite WAL) and add a key."""
    db = Database(data_dir / "hub.sqlite")
    db.start(prepare_hub_db)
    try:
        return asyncio.run(_create(db, branch_id, label))
    finally:
        db.close()
