"""The upstream outbox on a real SQLite file: written with the change, coalesced per
object, nothing at all without an upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from pm_core.database import connect
from pm_hub.store import outbox, tenants
from pm_hub.store import printers as printer_store
from pm_hub.store.migrations import prepare_hub_db


def open_db(path: Path, *, upstream: bool) -> sqlite_utils.Database:
    db = sqlite_utils.Database(connect(path, synchronous="NORMAL"))
    prepare_hub_db(db, upstream=upstream)
    return db


def add_agent_and_printer(db: sqlite_utils.Database) -> tuple[int, int]:
    company_id, branch_id = tenants.ensure_default_tenant(db)
    license_id = tenants.insert_license(
        db, key_hash="h", key_prefix="pmk_", company_id=company_id, branch_id=branch_id
    )
    agent = tenants.upsert_agent(
        db,
        device_id="box-1",
        license_id=license_id,
        company_id=company_id,
        branch_id=branch_id,
        name="agent",
        version="1",
        hostname="box",
    )
    printer = printer_store.upsert_printer(
        db,
        company_id=company_id,
        branch_id=branch_id,
        agent_id=agent["id"],
        identity="tcp://127.0.0.1:9100",
        name="Kitchen-1",
        address="tcp://127.0.0.1:9100",
        kind="network",
        model=None,
        station="kitchen",
        status_supported=True,
    )
    return license_id, printer["id"]


def rows(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in db.execute("SELECT seq, kind, object_id FROM upstream_outbox ORDER BY seq")
    ]


def test_without_upstream_nothing_is_written(tmp_path: Path) -> None:
    """A hub with no --upstream pays nothing: no outbox rows for any change."""
    db = open_db(tmp_path / "hub.sqlite", upstream=False)
    _license, printer_id = add_agent_and_printer(db)
    printer_store.set_printer_status(db, printer_id, "paper_out", {"paper_end": True})
    assert rows(db) == []


def test_each_object_keeps_one_entry_its_latest_change(tmp_path: Path) -> None:
    """A printer that changes three times is one entry, moved behind later changes;
    a heartbeat (last_seen only) adds nothing; a reconnecting agent (an upsert while
    its entry is still unsent) is recorded instead of failing."""
    db = open_db(tmp_path / "hub.sqlite", upstream=True)
    license_id, printer_id = add_agent_and_printer(db)
    assert [r[1:] for r in rows(db)] == [("agent", 1), ("printer", printer_id)]

    for status in ("paper_low", "paper_out", "online"):
        printer_store.set_printer_status(db, printer_id, status, {})
    printer_store.set_printer_status(db, printer_id, "online", {})  # unchanged: heartbeat
    tenants.upsert_agent(
        db,
        device_id="box-1",
        license_id=license_id,
        company_id=1,
        branch_id=1,
        name="agent",
        version="2",
        hostname="box",
    )
    entries = rows(db)
    assert [r[1:] for r in entries] == [("printer", printer_id), ("agent", 1)]
    assert entries[0][0] < entries[1][0]

    batch = outbox.read_batch(db, 0, 10)
    assert batch["entries"][0]["record"]["status"] == "online"
    assert batch["entries"][1]["record"]["version"] == "2"
    assert batch["remaining"] == 0

    snapshot = outbox.read_snapshot(db)
    assert snapshot["seq"] == entries[-1][0]
    outbox.delete_through(db, entries[0][0])
    assert [r[1:] for r in rows(db)] == [("agent", 1)]


def test_outbox_is_trimmed_to_its_limit(tmp_path: Path) -> None:
    """Past the limit the oldest entries go, the newest stay."""
    db = open_db(tmp_path / "hub.sqlite", upstream=True)
    add_agent_and_printer(db)
    for i in range(150):
        db.execute(
            "INSERT INTO alerts (company_id, branch_id, kind, severity, subject, message, state, "
            "opened_at) VALUES (1, 1, 'paper_low', 'info', ?, 'x', 'cleared', 0)",
            (f"printer:{1000 + i}",),
        )
    assert outbox.trim(db, 100) == 52
    kept = rows(db)
    assert len(kept) == 100 and kept[-1][1] == "alert"
