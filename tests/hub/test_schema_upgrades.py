"""Upgrades: a hub started on a database made by an earlier version migrates it and
serves what it held; a migration that fails leaves the file as it was.

The files come from ``tests/fixtures/schema/vN.sql``, made by the migrations of the
commit that shipped each version (``tools/make_schema_fixtures.py``), not by today's code.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from pm_core.database import connect
from pm_hub.server import start_hub
from pm_hub.store import CURRENT_VERSION, migrate, migrations
from pm_hub.store.migrations import MigrationFailed, schema_version
from tests.conftest import hub_settings
from tests.hub.test_http_api import request

FIXTURES = Path(__file__).parent.parent / "fixtures" / "schema"
VERSIONS = sorted(int(p.stem[1:]) for p in FIXTURES.glob("v*.sql"))


def load_fixture(version: int, data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "hub.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"v{version}.sql").read_text())
    conn.close()
    return path


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def columns(path: Path) -> dict[str, list[str]]:
    db = sqlite_utils.Database(sqlite3.connect(path))
    return {t: [c.name for c in db[t].columns] for t in sorted(db.table_names())}


def test_a_fixture_for_every_earlier_version() -> None:
    """Each schema version this program can meet in the field has a file to start from."""
    assert list(range(1, CURRENT_VERSION)) == VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
async def test_hub_upgrades_a_file_of_each_earlier_version(tmp_path: Path, version: int) -> None:
    """The hub starts on the old file, migrates it to the current schema, and serves its
    printers, jobs (documents included) and alerts; a copy of the old file stays beside."""
    data_dir = tmp_path / "hub"
    path = load_fixture(version, data_dir)
    before = dump(path)
    running = await start_hub(hub_settings(data_dir))
    try:
        assert running.hub.tokens is not None
        token = running.hub.tokens.create(role="admin", sub="test-admin")
        status, body = await request(running, "GET", "/api/v1/printers", token)
        assert status == 200
        assert sorted(p["name"] for p in body["printers"]) == ["Bar", "Kitchen-1"]
        status, body = await request(running, "GET", "/api/v1/jobs?limit=10", token)
        assert status == 200
        assert {j["id"]: j["status"] for j in body["jobs"]} == {
            1: "completed",
            2: "failed",
            3: "queued",
        }
        status, body = await request(running, "GET", "/api/v1/jobs/1?document=1", token)
        assert body["job"]["document"]["blocks"][1]["text"] == "2x Burger"
        if version >= 2:  # alerts came with version 2
            status, body = await request(running, "GET", "/api/v1/alerts", token)
            assert any(a["id"] == 1 and a["subject"] == "printer:2" for a in body["alerts"])
    finally:
        await running.stop()
    assert schema_version(sqlite_utils.Database(sqlite3.connect(path))) == CURRENT_VERSION
    fresh = tmp_path / "fresh.sqlite"
    migrate(sqlite_utils.Database(connect(fresh)))
    assert columns(path) == columns(fresh)
    copy = data_dir / f"hub.sqlite.v{version}.bak"
    assert dump(copy) == before  # the file as the earlier version left it


async def test_a_failed_migration_leaves_the_file_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations 8 to the last run on a version 7 file; the last fails half-way: the start
    is refused with one line that says so, the file is still version 7 byte for byte in
    its rows, and the hub starts on it once the cause is gone."""
    data_dir = tmp_path / "hub"
    path = load_fixture(7, data_dir)
    before = dump(path)
    real = list(migrations.MIGRATIONS)

    def half_then_fail(db: Any) -> None:
        db.execute("ALTER TABLE printers ADD COLUMN half_done REAL")
        raise sqlite3.OperationalError("disk I/O error")

    broken = [*real[:-1], (real[-1][0], real[-1][1], half_then_fail)]
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    failed = rf"migration {CURRENT_VERSION} .* failed: disk I/O error.*version 7"
    with pytest.raises(MigrationFailed, match=failed):
        await start_hub(hub_settings(data_dir))
    assert dump(path) == before
    assert schema_version(sqlite_utils.Database(sqlite3.connect(path))) == 7

    monkeypatch.setattr(migrations, "MIGRATIONS", real)
    running = await start_hub(hub_settings(data_dir))  # the lock was let go, too
    await running.stop()
    assert schema_version(sqlite_utils.Database(sqlite3.connect(path))) == CURRENT_VERSION
