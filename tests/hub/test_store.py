"""The SQLite store: migrations, the group-committing writer, job state rules."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from pm_core.database import connect
from pm_hub.store import CURRENT_VERSION, Database, migrate, tenants
from pm_hub.store import jobs as job_store
from pm_hub.store.migrations import MIGRATIONS, schema_version

EXPECTED_TABLES = {
    "companies",
    "branches",
    "licenses",
    "agents",
    "printers",
    "jobs",
    "job_events",
    "alerts",
    "health_samples",
    "printer_events",
    "stations",
}


def columns(db: sqlite_utils.Database) -> dict[str, list[str]]:
    return {name: [c.name for c in db[name].columns] for name in db.table_names()}


def test_fresh_file_ends_at_current_schema(tmp_path: Path) -> None:
    db = sqlite_utils.Database(connect(tmp_path / "fresh.sqlite"))
    assert migrate(db) == len(MIGRATIONS)
    assert schema_version(db) == CURRENT_VERSION
    assert set(db.table_names()) >= EXPECTED_TABLES
    assert migrate(db) == 0  # idempotent


@pytest.mark.parametrize("start", [v for v, _n, _f in MIGRATIONS[:-1]])
def test_older_file_is_upgraded_with_its_data(tmp_path: Path, start: int) -> None:
    """A file left at an older version keeps its rows and ends like a fresh one."""
    old = sqlite_utils.Database(connect(tmp_path / "old.sqlite"))
    migrate(old, target=start)
    company_id, branch_id = tenants.ensure_default_tenant(old)
    old.execute(
        "INSERT INTO printers (company_id, branch_id, identity, name, address, station, "
        "created_at, updated_at) VALUES (?, ?, 'tcp://x:9100', 'Kitchen-1', 'tcp://x:9100', "
        "'kitchen', 0, 0)",
        (company_id, branch_id),
    )
    assert migrate(old) == CURRENT_VERSION - start
    fresh = sqlite_utils.Database(connect(tmp_path / "fresh.sqlite"))
    migrate(fresh)
    assert columns(old) == columns(fresh)
    assert [tuple(r) for r in old.execute("SELECT name FROM printers")] == [("Kitchen-1",)]
    if start < 3:  # migration 3 turns the station a printer names into a row
        assert [tuple(r) for r in old.execute("SELECT name FROM stations")] == [("kitchen",)]


def test_newer_file_is_refused(tmp_path: Path) -> None:
    db = sqlite_utils.Database(connect(tmp_path / "new.sqlite"))
    migrate(db)
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    with pytest.raises(RuntimeError, match="newer than this program"):
        migrate(db)


async def test_writes_are_committed_before_the_caller_hears_back(tmp_path: Path) -> None:
    """Many concurrent writes commit together; each one is on disk when awaited."""
    database = Database(tmp_path / "hub.sqlite")
    await asyncio.to_thread(database.start, migrate)
    try:
        company_id, branch_id = await database.write(tenants.ensure_default_tenant)

        async def one(i: int) -> int:
            row, _ = await database.write(
                lambda d: job_store.insert_job(
                    d,
                    company_id=company_id,
                    branch_id=branch_id,
                    printer_id=None,
                    station="kitchen",
                    document={"blocks": [{"type": "cut"}]},
                    copies=1,
                    idempotency_key=f"k{i}",
                    submitted_by="t",
                    expires_at=None,
                )
            )
            # Another connection sees it right away: it is committed.
            other = sqlite3.connect(tmp_path / "hub.sqlite")
            try:
                found = other.execute("SELECT id FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            finally:
                other.close()
            assert found is not None
            return int(row["id"])

        ids = await asyncio.gather(*(one(i) for i in range(200)))
        assert sorted(ids) == list(range(1, 201))
    finally:
        await asyncio.to_thread(database.close)


async def test_a_failing_write_does_not_undo_the_others(tmp_path: Path) -> None:
    database = Database(tmp_path / "hub.sqlite")
    await asyncio.to_thread(database.start, migrate)
    try:

        def boom(d: sqlite_utils.Database) -> None:
            d.execute("INSERT INTO companies (name, created_at) VALUES ('half', 0)")
            raise ValueError("nope")

        results = await asyncio.gather(
            database.write(tenants.ensure_default_tenant),
            database.write(boom),
            database.write(lambda d: tenants.ensure_default_tenant(d)),
            return_exceptions=True,
        )
        assert isinstance(results[1], ValueError)
        names = await database.read(
            lambda d: [r[0] for r in d.execute("SELECT name FROM companies").fetchall()]
        )
        assert names == ["My restaurant"]  # the failed write left nothing behind
    finally:
        await asyncio.to_thread(database.close)


def test_job_status_only_moves_forward(tmp_path: Path) -> None:
    db = sqlite_utils.Database(connect(tmp_path / "j.sqlite"))
    migrate(db)
    company_id, branch_id = tenants.ensure_default_tenant(db)
    row, created = job_store.insert_job(
        db,
        company_id=company_id,
        branch_id=branch_id,
        printer_id=None,
        station=None,
        document={"blocks": [{"type": "cut"}]},
        copies=1,
        idempotency_key="same",
        submitted_by="t",
        expires_at=None,
    )
    assert created
    again, created_again = job_store.insert_job(
        db,
        company_id=company_id,
        branch_id=branch_id,
        printer_id=None,
        station=None,
        document={"blocks": [{"type": "cut"}]},
        copies=1,
        idempotency_key="same",
        submitted_by="t",
        expires_at=None,
    )
    assert not created_again and again["id"] == row["id"]
    job_id = row["id"]
    assert job_store.transition(db, job_id, "printing", actor="a") is not None
    assert job_store.transition(db, job_id, "dispatched", actor="a") is None  # backwards
    assert job_store.transition(db, job_id, "completed", actor="a") is not None
    assert job_store.transition(db, job_id, "failed", actor="a") is None  # final stays final
    trail = [e["status"] for e in job_store.job_events(db, job_id)]
    assert trail == ["queued", "printing", "completed"]


async def test_bulk_write_behind_keeps_its_place_among_other_writes(tmp_path: Path) -> None:
    """Rows appended with append_soon reach the file in one executemany per batch, yet
    a write queued between two appends lands between them (a status report after a
    re-registration must not be overwritten by it, nor overwrite it out of turn)."""
    database = Database(tmp_path / "hub.sqlite")
    await asyncio.to_thread(database.start, migrate)
    calls: list[list[tuple[str, str]]] = []

    def log_rows(d: sqlite_utils.Database, rows: list[tuple[str, str]]) -> None:
        calls.append(list(rows))
        d.conn.executemany("INSERT INTO companies (name, created_at) VALUES (?, 0)", rows)

    def one(name: str) -> Any:
        sql = "INSERT INTO companies (name, created_at) VALUES (?, 0)"
        return lambda d: d.execute(sql, (name,))

    try:
        for name in ("a1", "a2", "a3"):
            database.append_soon("test", log_rows, (name,))
        database.write_soon(one("between"), what="between")
        for name in ("b1", "b2"):
            database.append_soon("test", log_rows, (name,))
        awaited = asyncio.ensure_future(database.write(one("awaited")))
        await asyncio.sleep(0)  # the write is queued once its coroutine runs
        database.append_soon("test", log_rows, ("c1",))
        await awaited
        await database.write(one("last"))
        names = await database.read(
            lambda d: [r[0] for r in d.execute("SELECT name FROM companies ORDER BY id")]
        )
        assert names == ["a1", "a2", "a3", "between", "b1", "b2", "awaited", "c1", "last"]
        assert [len(c) for c in calls] == [3, 2, 1]  # one call per batch, not one per row
    finally:
        await asyncio.to_thread(database.close)


async def test_a_failing_bulk_write_is_logged_and_later_writes_still_commit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(tmp_path / "hub.sqlite")
    await asyncio.to_thread(database.start, migrate)

    def broken(d: sqlite_utils.Database, rows: list[Any]) -> None:
        d.conn.executemany("INSERT INTO no_such_table VALUES (?)", rows)

    try:
        database.append_soon("broken", broken, (1,))
        await database.write(tenants.ensure_default_tenant)
        names = await database.read(
            lambda d: [r[0] for r in d.execute("SELECT name FROM companies")]
        )
        assert names == ["My restaurant"]
        assert any("broken" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    finally:
        await asyncio.to_thread(database.close)


async def test_a_printer_thread_can_write_and_wait_for_the_commit(tmp_path: Path) -> None:
    """``write_now`` (a printer's I/O thread marking a job printing before its bytes go
    out) returns only once the write is committed, and raises what the write raised."""
    database = Database(tmp_path / "hub.sqlite")
    await asyncio.to_thread(database.start, migrate)

    def in_thread() -> tuple[int, str]:
        database.write_now(
            lambda d: d.execute("INSERT INTO companies (name, created_at) VALUES ('t', 0)")
        )
        other = sqlite3.connect(tmp_path / "hub.sqlite")  # committed: visible to others
        try:
            count = other.execute("SELECT COUNT(*) FROM companies").fetchone()[0]
        finally:
            other.close()
        try:
            database.write_now(lambda d: d.execute("INSERT INTO no_such_table VALUES (1)"))
        except sqlite3.OperationalError as exc:
            return count, str(exc)
        return count, "no error"

    try:
        count, error = await asyncio.to_thread(in_thread)
        assert count == 1 and "no_such_table" in error
    finally:
        await asyncio.to_thread(database.close)
    with pytest.raises(RuntimeError, match="closed"):
        database.write_now(lambda d: None)
