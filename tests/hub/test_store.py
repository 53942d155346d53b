"""The store on both engines: migrations, the group-committing writer, and the store's
functions (job state rules, tenants, credentials, printers, alerts, stations, the
company mirror), each test once on a SQLite file and once on a PostgreSQL schema of
its own (``store_target``, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from pm_core.database import Database, connect
from pm_core.sql import Session, is_sqlite
from pm_hub.global_ids import global_id
from pm_hub.store import CURRENT_VERSION, migrate, migrations_pg, prepare_hub_db, tenants
from pm_hub.store import alerts as alert_store
from pm_hub.store import credentials as credential_store
from pm_hub.store import jobs as job_store
from pm_hub.store import mirror as mirror_store
from pm_hub.store import printers as printer_store
from pm_hub.store import stations as station_store
from pm_hub.store.migrations import MIGRATIONS, MigrationFailed, schema_version
from tests.support.services import close, open_session

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
    "branch_links",
    "mirror_printers",
    "mirror_jobs",
    "mirror_alerts",
    "mirror_agents",
    "tokens",
}


@pytest.fixture
def session(store_target: str) -> Iterator[Session]:
    db = open_session(store_target)
    prepare_hub_db(db)
    yield db
    close(db)


def columns(db: Session) -> dict[str, list[str]]:
    """Every table's columns in order (SQLite's own bookkeeping left out)."""
    if is_sqlite(db):
        sdb: Any = db
        return {
            name: [c.name for c in sdb[name].columns]
            for name in sdb.table_names()
            if name != "sqlite_sequence"
        }
    rows = db.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return found


def committed(target: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """``sql`` on a new connection: what another process would see (committed data)."""
    db = open_session(target)
    try:
        return db.execute(sql, params).fetchone()
    finally:
        close(db)


# -- migrations --------------------------------------------------------------------------------


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
    assert migrate(old) == len([v for v, _n, _f in MIGRATIONS if v > start])
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
    with pytest.raises(MigrationFailed, match="newer than this program"):
        migrate(db)


def test_both_engines_have_the_same_tables_and_columns(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL's schema is SQLite's, column for column in the same order, at the
    same version: the store's SELECT * reads the same keys from both."""
    assert migrations_pg.CURRENT_VERSION == CURRENT_VERSION
    lite = sqlite_utils.Database(connect(tmp_path / "s.sqlite"))
    migrate(lite)
    pg = open_session(postgres_url)
    try:
        assert migrations_pg.migrate(pg) == len(migrations_pg.MIGRATIONS)
        assert columns(pg) == columns(lite)
        assert len(columns(pg)) == 23
    finally:
        close(pg)


#: Where a PostgreSQL schema may start: empty (0), or at each earlier version.
PG_STARTS = [0, *(v for v, _n, _f in migrations_pg.MIGRATIONS[:-1])]


@pytest.mark.parametrize("start", PG_STARTS)
def test_postgresql_schema_is_migrated_from_every_earlier_version(
    postgres_url: str, start: int
) -> None:
    """An empty schema, or one at an earlier version with rows in it, ends at the
    current version like a fresh one, keeping the rows; running again does nothing."""
    db = open_session(postgres_url)
    try:
        if start:
            migrations_pg.migrate(db, target=start)
            company_id, branch_id = tenants.ensure_default_tenant(db)
            db.execute(
                "INSERT INTO printers (company_id, branch_id, identity, name, address, "
                "created_at, updated_at) VALUES (?, ?, 'tcp://x', 'Kitchen-1', 'tcp://x', 0, 0)",
                (company_id, branch_id),
            )
        ran = migrations_pg.migrate(db)
        assert ran == sum(1 for v, _n, _f in migrations_pg.MIGRATIONS if v > start)
        assert migrations_pg.schema_version(db) == migrations_pg.CURRENT_VERSION
        assert set(columns(db)) >= EXPECTED_TABLES
        if start:
            assert [tuple(r) for r in db.execute("SELECT name FROM printers")] == [("Kitchen-1",)]
        assert migrations_pg.migrate(db) == 0  # on a current schema: nothing to do
    finally:
        close(db)


def test_postgresql_migrations_started_twice_at_once_run_once(postgres_url: str) -> None:
    """Two processes starting on the same empty schema: one migrates, the other waits
    for its lock, finds the work done and does nothing (no error either)."""
    sessions = [open_session(postgres_url), open_session(postgres_url)]
    results: list[Any] = [None, None]
    go = threading.Barrier(2)

    def run(i: int) -> None:
        go.wait()
        try:
            results[i] = migrations_pg.migrate(sessions[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for s in sessions:
        close(s)
    assert sorted(results) == [0, len(migrations_pg.MIGRATIONS)], results


def test_newer_postgresql_schema_is_refused(postgres_url: str) -> None:
    db = open_session(postgres_url)
    try:
        migrations_pg.migrate(db)
        db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
        with pytest.raises(MigrationFailed, match="newer than this program"):
            migrations_pg.migrate(db)
    finally:
        close(db)


def test_an_upstream_is_refused_on_postgresql(postgres_url: str) -> None:
    db = open_session(postgres_url)
    try:
        with pytest.raises(ValueError, match="SQLite"):
            prepare_hub_db(db, upstream=True)
    finally:
        close(db)


# -- the writer ------------------------------------------------------------------------------


async def started(target: str) -> Database:
    database = Database(target)
    await asyncio.to_thread(database.start, prepare_hub_db)
    return database


async def test_writes_are_committed_before_the_caller_hears_back(store_target: str) -> None:
    """Many concurrent writes commit together; each one is committed when awaited."""
    database = await started(store_target)
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
            found = await asyncio.to_thread(
                committed, store_target, "SELECT id FROM jobs WHERE id = ?", (row["id"],)
            )
            assert found is not None
            return int(row["id"])

        ids = await asyncio.gather(*(one(i) for i in range(200)))
        assert sorted(ids) == list(range(1, 201))
    finally:
        await asyncio.to_thread(database.close)


async def test_a_failing_write_does_not_undo_the_others(store_target: str) -> None:
    database = await started(store_target)
    try:

        def boom(d: Session) -> None:
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


async def test_bulk_write_behind_keeps_its_place_among_other_writes(store_target: str) -> None:
    """Rows appended with append_soon reach the database in one executemany per batch,
    yet a write queued between two appends lands between them (a status report after a
    re-registration must not be overwritten by it, nor overwrite it out of turn)."""
    database = await started(store_target)
    calls: list[list[tuple[str, str]]] = []

    def log_rows(d: Session, rows: list[tuple[str, str]]) -> None:
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
    store_target: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = await started(store_target)

    def broken(d: Session, rows: list[Any]) -> None:
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


async def test_a_printer_thread_can_write_and_wait_for_the_commit(store_target: str) -> None:
    """``write_now`` (a printer's I/O thread marking a job printing before its bytes go
    out) returns only once the write is committed, and raises what the write raised."""
    database = await started(store_target)

    def in_thread() -> tuple[int, str]:
        database.write_now(
            lambda d: d.execute("INSERT INTO companies (name, created_at) VALUES ('t', 0)")
        )
        count = committed(store_target, "SELECT COUNT(*) FROM companies")[0]
        try:
            database.write_now(lambda d: d.execute("INSERT INTO no_such_table VALUES (1)"))
        except Exception as exc:
            return count, str(exc)
        return count, "no error"

    try:
        count, error = await asyncio.to_thread(in_thread)
        assert count == 1 and "no_such_table" in error
    finally:
        await asyncio.to_thread(database.close)
    with pytest.raises(RuntimeError, match="closed"):
        database.write_now(lambda d: None)


# -- the store's functions ------------------------------------------------------------------------


def add_job(db: Session, company_id: int, branch_id: int, key: str | None) -> tuple[Any, bool]:
    return job_store.insert_job(
        db,
        company_id=company_id,
        branch_id=branch_id,
        printer_id=None,
        station=None,
        document={"blocks": [{"type": "cut"}]},
        copies=1,
        idempotency_key=key,
        submitted_by="t",
        expires_at=None,
    )


def test_job_status_only_moves_forward(session: Session) -> None:
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)
    row, created = add_job(db, company_id, branch_id, "same")
    assert created
    again, created_again = add_job(db, company_id, branch_id, "same")
    assert not created_again and again["id"] == row["id"]
    job_id = row["id"]
    assert job_store.transition(db, job_id, "printing", actor="a") is not None
    assert job_store.transition(db, job_id, "dispatched", actor="a") is None  # backwards
    assert job_store.transition(db, job_id, "completed", actor="a") is not None
    assert job_store.transition(db, job_id, "failed", actor="a") is None  # final stays final
    trail = [e["status"] for e in job_store.job_events(db, job_id)]
    assert trail == ["queued", "printing", "completed"]
    assert job_store.count_by_status(db) == {"completed": 1}
    listed = job_store.list_jobs(db, company_id=company_id, branch_ids=[branch_id], limit=5)
    assert [j["id"] for j in listed] == [job_id]


def test_tenants_licenses_and_agents(session: Session) -> None:
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)
    assert tenants.ensure_default_tenant(db) == (company_id, branch_id)
    license_id = tenants.insert_license(
        db, key_hash="h1", key_prefix="pmk_abc", company_id=company_id, branch_id=branch_id
    )
    assert tenants.bind_license(db, license_id, "dev-1")
    assert tenants.bind_license(db, license_id, "dev-1")  # the same device again
    assert not tenants.bind_license(db, license_id, "dev-2")
    agent = tenants.upsert_agent(
        db,
        device_id="dev-1",
        license_id=license_id,
        company_id=company_id,
        branch_id=branch_id,
        name="Kitchen box",
        version="1",
        hostname="k",
    )
    assert agent["connected"] == 1 and agent["name"] == "Kitchen box"
    again = tenants.upsert_agent(
        db,
        device_id="dev-1",
        license_id=license_id,
        company_id=company_id,
        branch_id=branch_id,
        name=None,
        version="2",
        hostname="k",
    )
    assert again["id"] == agent["id"] and again["name"] == "Kitchen box"
    assert again["version"] == "2"
    gone = tenants.set_agent_disconnected(db, agent["id"])
    assert gone is not None and gone["connected"] == 0
    known = tenants.agent_of_device(db, "dev-1")
    assert known is not None and known["license_revoked_at"] is None
    assert [a["id"] for a in tenants.agents_to_watch(db)] == [agent["id"]]
    assert [a["id"] for a in tenants.list_agents(db, company_id=1, branch_ids=[1])] == [1]
    assert tenants.list_agents(db, company_id=1, branch_ids=[7]) == []


def test_tokens_and_licenses_are_listed_and_revoked(session: Session) -> None:
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)
    now = 2_000_000_000
    first = {"jti": "t1", "sub": "ana", "role": "admin", "company_id": 1, "iat": 1, "exp": now}
    refreshed = {**first, "jti": "t2", "sess": "t1", "branch_ids": [1, 2]}
    for claims in (first, refreshed, first):  # noting one twice keeps one row
        credential_store.record_token(db, claims)
    listed = credential_store.list_tokens(db)
    assert sorted(t["jti"] for t in listed) == ["t1", "t2"]
    assert next(t for t in listed if t["jti"] == "t2")["branch_ids"] == [1, 2]
    assert credential_store.revoke_token(db, "t1") == 2  # the session's tokens too
    assert credential_store.revoke_token(db, "t1") == 0
    assert credential_store.revoked_token_ids(db) == {"t1", "t2"}
    assert credential_store.list_tokens(db) == []
    assert len(credential_store.list_tokens(db, include_ended=True)) == 2

    for key in ("pmk_aaaa", "pmk_bbbb"):
        tenants.insert_license(
            db, key_hash=key, key_prefix=key, company_id=company_id, branch_id=branch_id
        )
    revoked = credential_store.revoke_license(db, "pmk_bbbb-and-the-rest")  # by prefix
    assert revoked is not None and revoked["key_prefix"] == "pmk_bbbb" and revoked["revoked_at"]
    assert credential_store.revoke_license(db, "999") is None
    assert credential_store.revoked_license_ids(db) == {revoked["id"]}
    assert [k["key_prefix"] for k in credential_store.list_licenses(db)] == ["pmk_aaaa", "pmk_bbbb"]


def test_printers_status_settings_and_history(session: Session) -> None:
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)
    printer = printer_store.upsert_printer(
        db,
        company_id=company_id,
        branch_id=branch_id,
        agent_id=None,
        identity="tcp://10.0.0.5:9100",
        name="Kitchen-1",
        address="tcp://10.0.0.5:9100",
        kind="network",
        model=None,
        station="kitchen",
        status_supported=True,
    )
    assert printer["status"] == "unknown" and printer["status_supported"] == 1
    renamed = printer_store.upsert_printer(  # it told its serial: the same record
        db,
        company_id=company_id,
        branch_id=branch_id,
        agent_id=None,
        identity="serial:ABC",
        name="Kitchen-1",
        address="tcp://10.0.0.5:9100",
        kind="network",
        model="TM-T20",
        station=None,
        status_supported=True,
        serial="ABC",
        capabilities={"profile": "TM-T20", "cut": True},
        previous_identity="tcp://10.0.0.5:9100",
    )
    assert renamed["id"] == printer["id"] and renamed["identity"] == "serial:ABC"
    assert renamed["profile"] == "TM-T20" and renamed["station"] == "kitchen"
    pid = printer["id"]
    changed = printer_store.set_printer_status(db, pid, "paper_out", {"paper_out": True}, at=10.0)
    assert changed is not None and changed["status"] == "paper_out"
    printer_store.record_status_changes(db, [(pid, "online", "{}", 20.0)])
    printer_store.mark_seen(db, {pid: 30.0})
    printer_store.mark_seen(db, {pid: 25.0})  # older than what is known: kept
    row = next(p for p in printer_store.all_printers(db) if p["id"] == pid)
    assert row["status"] == "online" and row["last_seen"] == 30.0
    history = printer_store.printer_history(db, pid)
    assert [h["status"] for h in history] == ["online", "paper_out"]
    paused = printer_store.update_printer_settings(
        db, pid, {"paused": True, "name": "Hot line", "not_a_setting": 1}
    )
    assert paused is not None and paused["paused"] == 1 and paused["name"] == "Hot line"
    # When it was paused: kept by a second pause and by other settings, cleared on resume.
    assert isinstance(paused["paused_at"], float)
    again = printer_store.update_printer_settings(db, pid, {"paused": True})
    renamed_paused = printer_store.update_printer_settings(db, pid, {"name": "Hot line"})
    assert again is not None and renamed_paused is not None
    assert again["paused_at"] == renamed_paused["paused_at"] == paused["paused_at"]
    resumed = printer_store.update_printer_settings(db, pid, {"paused": False})
    assert resumed is not None and resumed["paused"] == 0 and resumed["paused_at"] is None
    paused = printer_store.update_printer_settings(db, pid, {"paused": True})
    assert paused is not None and isinstance(paused["paused_at"], float)
    caps = printer_store.set_printer_capabilities(db, pid, {"profile": "simple"})
    assert caps is not None and caps["profile"] == "simple"
    station, moved = station_store.configure_station(
        db,
        company_id=company_id,
        branch_id=branch_id,
        name="bar",
        printer_ids=[pid],
        default_expiry_s=30.0,
        set_expiry=True,
    )
    assert station["default_expiry_s"] == 30.0 and moved[0]["station"] == "bar"
    assert (
        station_store.ensure_station(db, company_id=company_id, branch_id=branch_id, name="bar")[
            "id"
        ]
        == station["id"]
    )
    assert {s["name"] for s in station_store.all_stations(db)} == {"bar"}


def test_alerts_open_once_then_acknowledged_then_cleared(session: Session) -> None:
    db = session
    company_id, branch_id = tenants.ensure_default_tenant(db)

    def open_one(message: str) -> tuple[dict[str, Any], str]:
        return alert_store.open_alert(
            db,
            company_id=company_id,
            branch_id=branch_id,
            kind="paper_out",
            severity="critical",
            subject="printer:1",
            message=message,
            details={"printer_id": 1},
        )

    alert, what = open_one("Kitchen-1 is out of paper")
    assert what == "opened"
    assert open_one("Kitchen-1 is out of paper") == (alert, "unchanged")
    assert open_one("Kitchen-1: still no paper")[1] == "updated"
    acked = alert_store.acknowledge_alert(db, alert["id"], by="ana")
    assert acked is not None and acked[1] and acked[0]["state"] == "acknowledged"
    again = alert_store.acknowledge_alert(db, alert["id"], by="ana")
    assert again is not None and not again[1]
    cleared = alert_store.clear_alert(db, "paper_out", "printer:1", by="hub")
    assert cleared is not None and cleared["state"] == "cleared"
    assert alert_store.open_alerts(db) == []
    assert open_one("out of paper again")[1] == "opened"  # a new one after clearing
    listed = alert_store.list_alerts(db, company_id=company_id, branch_ids=[branch_id])
    assert [a["state"] for a in listed] == ["open", "cleared"]


def printer_entry(seq: int, local_id: int, status: str) -> dict[str, Any]:
    record = {"id": local_id, "name": f"P{local_id}", "status": status, "branch_id": 2}
    return {"seq": seq, "kind": "printer", "id": local_id, "record": record}


def test_the_mirror_applies_each_change_once_and_keeps_the_sync_position(
    session: Session,
) -> None:
    db = session
    tenants.ensure_default_tenant(db)
    link = mirror_store.open_link(
        db, branch_id=2, company_id=1, stream_id="s1", name="Harbour", version="1"
    )
    assert link["last_seq"] == 0 and not link["reset"]
    entries = [printer_entry(1, 7, "online"), printer_entry(2, 8, "online")]
    applied, last, repeats = mirror_store.apply_changes(
        db, branch_id=2, company_id=1, entries=entries
    )
    assert (len(applied), last, repeats) == (2, 2, 0)
    applied, last, repeats = mirror_store.apply_changes(  # the same batch again
        db, branch_id=2, company_id=1, entries=[*entries, printer_entry(3, 7, "paper_out")]
    )
    assert (len(applied), last, repeats) == (1, 3, 2)
    shown = mirror_store.get(db, "printer", global_id(2, 7))
    assert shown is not None and shown["status"] == "paper_out"
    assert shown["id"] == global_id(2, 7)
    # A snapshot older than what the mirror holds changes nothing.
    stale = [{**printer_entry(0, 7, "online")["record"]}]
    assert (
        mirror_store.apply_snapshot(
            db, branch_id=2, company_id=1, kind="printer", seq=1, records=stale
        )
        == []
    )
    removed = mirror_store.finish_snapshot(db, branch_id=2, kind="printer", kept={global_id(2, 7)})
    assert [r[2]["id"] for r in removed if r[2]] == [global_id(2, 8)]
    again = mirror_store.open_link(
        db, branch_id=2, company_id=1, stream_id="s1", name="Harbour", version="1"
    )
    assert again["last_seq"] == 3  # where it left off
    assert [b["name"] for b in tenants.list_branches(db)] == ["Main branch", "Harbour"]
    # A new stream (the branch's database replaced) starts afresh.
    fresh = mirror_store.open_link(
        db, branch_id=2, company_id=1, stream_id="s2", name="Harbour", version="1"
    )
    assert fresh["reset"] and fresh["last_seq"] == 0
    assert mirror_store.load(db)["printers"] == []
    with pytest.raises(mirror_store.BranchConflict):
        mirror_store.open_link(db, branch_id=2, company_id=5, stream_id="s", name="x", version=None)
    # A branch id given by a branch does not block the ids the hub makes itself.
    company, branch = tenants.ensure_default_tenant(db)
    assert (company, branch) == (1, 1)
    new_branch = db.execute(
        "INSERT INTO branches (company_id, name, created_at) VALUES (1, 'third', 0) RETURNING id"
    ).fetchone()[0]
    assert new_branch == 3


def test_mirror_jobs_are_listed_and_pruned(session: Session) -> None:
    db = session
    mirror_store.open_link(db, branch_id=3, company_id=1, stream_id="s", name="B", version=None)
    entries = [
        {
            "seq": i,
            "kind": "job",
            "id": i,
            "record": {
                "id": i,
                "status": "completed" if i <= 8 else "queued",
                "printer_id": None,
                "station": "kitchen",
                "created_at": float(i),
                "branch_id": 3,
            },
        }
        for i in range(1, 11)
    ]
    mirror_store.apply_changes(db, branch_id=3, company_id=1, entries=entries)
    listed = mirror_store.list_jobs(db, company_id=1, branch_ids=[3], statuses=["queued"])
    assert [j["id"] for j in listed] == [global_id(3, 10), global_id(3, 9)]
    assert mirror_store.prune_jobs(db, keep_per_branch=4) == 6
    assert len(mirror_store.list_jobs(db, company_id=1, branch_ids=None, limit=100)) == 4
    links = mirror_store.all_links(db)
    assert [(link["branch_id"], link["name"], link["last_seq"]) for link in links] == [(3, "B", 10)]


async def test_two_processes_applying_one_batch_of_a_branch_apply_it_once(
    postgres_url: str,
) -> None:
    """A branch's link moving between company-hub processes can leave a batch with
    both for a moment: applied by both at once, one applies every entry and the other
    counts them all as repeats (the branch's link row is locked first)."""
    first, second = await started(postgres_url), await started(postgres_url)
    try:
        await first.write(
            lambda d: mirror_store.open_link(
                d, branch_id=2, company_id=1, stream_id="s1", name="Harbour", version="1"
            )
        )
        entries = [printer_entry(n, 7, "online" if n % 2 else "paper_out") for n in range(1, 301)]
        results = await asyncio.gather(
            *(
                db.write(
                    lambda d: mirror_store.apply_changes(
                        d, branch_id=2, company_id=1, entries=entries
                    )
                )
                for db in (first, second)
            )
        )
        assert sorted((last, repeats) for _, last, repeats in results) == [(300, 0), (300, 300)]
        assert sum(len(applied) for applied, _, _ in results) == 300
    finally:
        first.close()
        second.close()


async def test_calls_written_together_each_get_their_own_answer(store_target: str) -> None:
    """Calls of one function queued while the writer is busy are one call with every
    argument; each caller hears its own result, and a bad argument fails its caller
    alone (the others are written again one by one)."""
    database = await started(store_target)
    calls: list[int] = []

    def names(d: Session, args: list[str]) -> list[int]:
        calls.append(len(args))
        ids = []
        for name in args:
            if name == "bad":
                raise ValueError("no bad names")
            row = d.execute(
                "INSERT INTO companies (name, created_at) VALUES (?, 0) RETURNING id", (name,)
            ).fetchone()
            ids.append(int(row[0]))
        return ids

    try:

        def hold(d: Session) -> None:
            time.sleep(0.2)  # the writer is busy: the calls below queue up together

        busy = asyncio.ensure_future(database.write(hold))
        await asyncio.sleep(0.05)
        good = [database.write_together("names", names, f"c{n}") for n in range(5)]
        results = await asyncio.gather(*good)
        await busy
        assert len(set(results)) == 5 and calls[-1] == 5, (results, calls)
        listed = await database.read(
            lambda d: [r[0] for r in d.execute("SELECT name FROM companies ORDER BY id")]
        )
        assert listed[-5:] == [f"c{n}" for n in range(5)]

        busy = asyncio.ensure_future(database.write(hold))
        await asyncio.sleep(0.05)
        mixed = [database.write_together("names", names, n) for n in ("d1", "bad", "d2")]
        outcomes = await asyncio.gather(*mixed, return_exceptions=True)
        await busy
        assert isinstance(outcomes[1], ValueError)
        assert isinstance(outcomes[0], int) and isinstance(outcomes[2], int)
        listed = await database.read(
            lambda d: [r[0] for r in d.execute("SELECT name FROM companies ORDER BY id")]
        )
        assert listed[-2:] == ["d1", "d2"] and "bad" not in listed
    finally:
        await asyncio.to_thread(database.close)
