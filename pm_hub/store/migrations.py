"""Versioned schema migrations for the hub database.

Each migration is a function that takes the database at version N-1 and leaves it
at version N. ``migrate`` applies the missing ones in order, each in its own
transaction, and records them in ``schema_migrations``; a fresh file and an older
file both end at ``CURRENT_VERSION``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from pm_core.sql import Session, as_sqlite, is_sqlite
from pm_hub.store import migrations_pg
from pm_hub.store.cloudprnt import CLOUDPRNT_TABLE
from pm_hub.store.migrations_pg import MigrationFailed
from pm_hub.store.outbox import install_triggers

log = logging.getLogger(__name__)


def _v1_core(db: sqlite_utils.Database) -> None:
    """Tenants, credentials, agents, printers, jobs and their events."""
    db.execute(
        """
        CREATE TABLE companies (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE branches (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            name TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE licenses (
            id INTEGER PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            key_prefix TEXT NOT NULL,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            device_id TEXT,
            label TEXT,
            created_at REAL NOT NULL,
            bound_at REAL,
            revoked_at REAL
        )"""
    )
    db.execute(
        """
        CREATE TABLE agents (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL UNIQUE,
            license_id INTEGER REFERENCES licenses(id),
            company_id INTEGER NOT NULL,
            branch_id INTEGER NOT NULL,
            name TEXT,
            version TEXT,
            hostname TEXT,
            connected INTEGER NOT NULL DEFAULT 0,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            last_disconnect REAL
        )"""
    )
    db.execute(
        """
        CREATE TABLE printers (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            agent_id INTEGER REFERENCES agents(id),
            identity TEXT NOT NULL,
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'network',
            model TEXT,
            station TEXT,
            status TEXT NOT NULL DEFAULT 'unknown',
            flags TEXT NOT NULL DEFAULT '{}',
            status_supported INTEGER NOT NULL DEFAULT 1,
            paused INTEGER NOT NULL DEFAULT 0,
            last_seen REAL,
            status_changed_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (branch_id, identity)
        )"""
    )
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            company_id INTEGER NOT NULL,
            branch_id INTEGER NOT NULL,
            printer_id INTEGER REFERENCES printers(id),
            station TEXT,
            status TEXT NOT NULL,
            document TEXT NOT NULL,
            copies INTEGER NOT NULL DEFAULT 1,
            idempotency_key TEXT,
            submitted_by TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            error_code TEXT,
            error_message TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            expires_at REAL,
            finished_at REAL,
            reprint_of INTEGER REFERENCES jobs(id),
            failover_from INTEGER REFERENCES printers(id)
        )"""
    )
    db.execute("CREATE INDEX jobs_printer_status ON jobs (printer_id, status, id)")
    db.execute("CREATE INDEX jobs_branch_created ON jobs (branch_id, created_at)")
    db.execute("CREATE INDEX jobs_status ON jobs (status)")
    db.execute(
        "CREATE UNIQUE INDEX jobs_idempotency ON jobs (company_id, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE job_events (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            at REAL NOT NULL,
            status TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT
        )"""
    )
    db.execute("CREATE INDEX job_events_job ON job_events (job_id, id)")


def _v2_monitoring(db: sqlite_utils.Database) -> None:
    """Alerts, health samples and printer status history."""
    db.execute(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL,
            branch_id INTEGER,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            subject TEXT NOT NULL,
            message TEXT NOT NULL,
            state TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}',
            opened_at REAL NOT NULL,
            acknowledged_at REAL,
            acknowledged_by TEXT,
            cleared_at REAL,
            cleared_by TEXT
        )"""
    )
    db.execute(
        "CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, subject) WHERE state != 'cleared'"
    )
    db.execute("CREATE INDEX alerts_branch_state ON alerts (branch_id, state)")
    db.execute(
        """
        CREATE TABLE health_samples (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER NOT NULL REFERENCES agents(id),
            at REAL NOT NULL,
            resolution TEXT NOT NULL DEFAULT 'raw',
            latency_ms REAL,
            latency_max_ms REAL,
            loss REAL,
            samples INTEGER NOT NULL DEFAULT 1
        )"""
    )
    db.execute("CREATE INDEX health_samples_agent_at ON health_samples (agent_id, resolution, at)")
    db.execute(
        """
        CREATE TABLE printer_events (
            id INTEGER PRIMARY KEY,
            printer_id INTEGER NOT NULL REFERENCES printers(id),
            at REAL NOT NULL,
            status TEXT NOT NULL,
            flags TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    db.execute("CREATE INDEX printer_events_printer ON printer_events (printer_id, id)")


def _v3_stations(db: sqlite_utils.Database) -> None:
    """Stations with an ordered list of printers, and default job expiry."""
    db.execute(
        """
        CREATE TABLE stations (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            name TEXT NOT NULL,
            default_expiry_s REAL,
            created_at REAL NOT NULL,
            UNIQUE (branch_id, name)
        )"""
    )
    db.execute("ALTER TABLE printers ADD COLUMN station_priority INTEGER NOT NULL DEFAULT 100")
    db.execute("ALTER TABLE printers ADD COLUMN default_expiry_s REAL")
    # Stations that printers already name become rows of their own.
    db.execute(
        """
        INSERT INTO stations (company_id, branch_id, name, created_at)
        SELECT DISTINCT company_id, branch_id, station, strftime('%s', 'now')
        FROM printers WHERE station IS NOT NULL
        """
    )


def _v4_printer_identity(db: sqlite_utils.Database) -> None:
    """What a printer says about itself: serial, MAC, capability profile."""
    db.execute("ALTER TABLE printers ADD COLUMN serial TEXT")
    db.execute("ALTER TABLE printers ADD COLUMN mac TEXT")
    db.execute("ALTER TABLE printers ADD COLUMN profile TEXT")
    db.execute("ALTER TABLE printers ADD COLUMN capabilities TEXT NOT NULL DEFAULT '{}'")


def _v5_job_offers(db: sqlite_utils.Database) -> None:
    """When the hub first offered a job to an agent: from then on the agent may hold it
    even if its acknowledgement was lost, so cancel and expiry must ask the agent."""
    db.execute("ALTER TABLE jobs ADD COLUMN offered_at REAL")


def _v6_profile_override(db: sqlite_utils.Database) -> None:
    """The capability profile an operator chose for a printer (NULL: automatic)."""
    db.execute("ALTER TABLE printers ADD COLUMN profile_override TEXT")


def _v7_branch_sync(db: sqlite_utils.Database) -> None:
    """Branch side: the outbox of changes owed to the company hub. Company side: the
    link state of each branch and the mirror of its printers, jobs, alerts and agents."""
    db.execute(
        """
        CREATE TABLE upstream_outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            object_id INTEGER NOT NULL,
            at REAL NOT NULL,
            UNIQUE (kind, object_id)
        )"""
    )
    db.execute(
        """
        CREATE TABLE upstream_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            stream_id TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE branch_links (
            branch_id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL,
            stream_id TEXT,
            last_seq INTEGER NOT NULL DEFAULT 0,
            hub_version TEXT,
            first_seen REAL NOT NULL,
            connected_at REAL,
            disconnected_at REAL,
            last_sync_at REAL
        )"""
    )
    for table in ("mirror_printers", "mirror_agents", "mirror_alerts", "mirror_jobs"):
        extra = {
            "mirror_printers": "",
            "mirror_agents": "",
            "mirror_alerts": ", state TEXT NOT NULL, opened_at REAL",
            "mirror_jobs": (
                ", status TEXT NOT NULL, printer_id INTEGER, station TEXT, created_at REAL"
            ),
        }[table]
        db.execute(
            f"""
            CREATE TABLE {table} (
                id INTEGER PRIMARY KEY,
                branch_id INTEGER NOT NULL,
                company_id INTEGER NOT NULL,
                version INTEGER NOT NULL,
                record TEXT NOT NULL{extra}
            )"""
        )
        db.execute(f"CREATE INDEX {table}_branch ON {table} (branch_id, id)")
    db.execute("CREATE INDEX mirror_jobs_company ON mirror_jobs (company_id, id)")
    db.execute("CREATE INDEX mirror_jobs_status ON mirror_jobs (status)")
    db.execute("CREATE INDEX mirror_alerts_company ON mirror_alerts (company_id, id)")


def _v8_token_register(db: sqlite_utils.Database) -> None:
    """Every token the hub's key signed (to list and revoke them), and when a license
    was revoked by whom."""
    db.execute(
        """
        CREATE TABLE tokens (
            jti TEXT PRIMARY KEY,
            session TEXT NOT NULL,
            sub TEXT NOT NULL,
            role TEXT NOT NULL,
            company_id INTEGER NOT NULL,
            branch_ids TEXT,
            issued_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            revoked_at REAL
        )"""
    )
    db.execute("CREATE INDEX tokens_session ON tokens (session)")
    db.execute("CREATE INDEX tokens_revoked ON tokens (revoked_at)")
    db.execute("CREATE INDEX licenses_revoked ON licenses (revoked_at)")


def _v9_printer_text_mode(db: sqlite_utils.Database) -> None:
    """How a printer's text goes out, as an operator chose (NULL: auto)."""
    db.execute("ALTER TABLE printers ADD COLUMN text_mode TEXT")


def _v10_printer_languages(db: sqlite_utils.Database) -> None:
    """The command language an operator chose for a printer (NULL: automatic), and
    the Star CloudPRNT printers enrolled by MAC with their secret."""
    db.execute("ALTER TABLE printers ADD COLUMN language_override TEXT")
    db.execute(CLOUDPRNT_TABLE)


def _v11_retirement(db: sqlite_utils.Database) -> None:
    """Printers and agents that are gone on purpose (retired, not offline); jobs'
    documents in a table of their own (pruned apart from the job: the pages they held are
    freed whole and used again, where a shrunk row in place frees nothing), and when one
    was pruned; the agents' 5-minute health reports; indexes the pruning uses."""
    db.execute(
        """
        CREATE TABLE job_documents (
            job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
            document TEXT NOT NULL
        )"""
    )
    db.execute("INSERT INTO job_documents (job_id, document) SELECT id, document FROM jobs")
    db.execute("ALTER TABLE jobs DROP COLUMN document")
    db.execute("ALTER TABLE printers ADD COLUMN retired_at REAL")
    db.execute("ALTER TABLE printers ADD COLUMN retired_by TEXT")
    db.execute("ALTER TABLE agents ADD COLUMN retired_at REAL")
    db.execute("ALTER TABLE jobs ADD COLUMN document_pruned_at REAL")
    db.execute("CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL")
    db.execute(
        "CREATE INDEX jobs_document_due ON jobs (finished_at) "
        "WHERE finished_at IS NOT NULL AND document_pruned_at IS NULL"
    )
    # Deleting a job checks no reprint points at it: without this, one scan per job.
    db.execute("CREATE INDEX jobs_reprint_of ON jobs (reprint_of)")
    db.execute("CREATE INDEX printer_events_at ON printer_events (at)")
    db.execute("CREATE INDEX job_events_at ON job_events (at)")
    db.execute(
        """
        CREATE TABLE health_reports (
            id INTEGER PRIMARY KEY,
            agent_id INTEGER NOT NULL REFERENCES agents(id),
            at REAL NOT NULL,
            report TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX health_reports_agent_at ON health_reports (agent_id, at)")
    db.execute("CREATE INDEX health_reports_at ON health_reports (at)")


def _v12_pause_time(db: sqlite_utils.Database) -> None:
    """When a printer was paused (NULL: not paused, or paused before the hub kept the
    time), so every dashboard shows the same pause time, whenever it connected."""
    db.execute("ALTER TABLE printers ADD COLUMN paused_at REAL")


def _v13_sent_previews(db: sqlite_utils.Database) -> None:
    """What each job's printer was sent, read back from the bytes (the dashboard's
    "Sent to printer"), beside the job's document and pruned with it."""
    db.execute("ALTER TABLE job_documents ADD COLUMN sent_preview TEXT")


Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "core tables", _v1_core),
    (2, "alerts, health samples, printer history", _v2_monitoring),
    (3, "stations and expiry defaults", _v3_stations),
    (4, "printer serial, MAC and capabilities", _v4_printer_identity),
    (5, "job offers to agents", _v5_job_offers),
    (6, "printer profile chosen by an operator", _v6_profile_override),
    (7, "branch sync: outbox, branch links, mirror", _v7_branch_sync),
    (8, "token register for listing and revocation", _v8_token_register),
    (9, "printer text mode chosen by an operator", _v9_printer_text_mode),
    (10, "printer languages and CloudPRNT printers", _v10_printer_languages),
    (11, "retired printers, job documents apart, health reports", _v11_retirement),
    (12, "when a printer was paused", _v12_pause_time),
    (13, "what each job's printer was sent", _v13_sent_previews),
]
CURRENT_VERSION = MIGRATIONS[-1][0]


def schema_version(db: sqlite_utils.Database) -> int:
    if "schema_migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database, *, target: int = CURRENT_VERSION) -> int:
    """Bring ``db`` to ``target``; returns how many migrations ran.

    Every missing migration runs in one transaction: if one fails, the file is left
    exactly as it was (SQLite's DDL is transactional) and :class:`MigrationFailed`
    says which one and why. A file from a newer program is refused."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    current = schema_version(db)
    if current > CURRENT_VERSION:
        raise MigrationFailed(
            f"database schema is version {current}, newer than this program "
            f"({CURRENT_VERSION}); upgrade PrinterMaster (or restore the copy made before "
            "the upgrade: docs/operations.md)"
        )
    if current >= target:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    # Another process (the hub starting, ``pm token create`` beside it) may have
    # applied them while this one waited for the lock: read the version again.
    current = schema_version(db)
    ran: list[tuple[int, str]] = []
    try:
        for version, name, fn in MIGRATIONS:
            if version <= current or version > target:
                continue
            try:
                fn(db)
            except Exception as exc:
                raise MigrationFailed(
                    f"migration {version} ({name}) failed: {exc}; the database was left "
                    f"unchanged at version {current}"
                ) from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            ran.append((version, name))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    for version, name in ran:
        log.info("applied migration %d (%s)", version, name)
    return len(ran)


def database_file(db: sqlite_utils.Database) -> Path | None:
    """The file behind the connection (None: in memory)."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main" and row[2]:
            return Path(row[2])
    return None


def copy_before_upgrade(db: sqlite_utils.Database) -> Path | None:
    """Before migrating a file made by an earlier version: a consistent copy of it
    beside it (``hub.sqlite.v8.bak``), to go back to the earlier program. None when
    there is nothing to migrate (or nothing to copy)."""
    current = schema_version(db)
    path = database_file(db)
    if path is None or current == 0 or current >= CURRENT_VERSION:
        return None
    copy = path.with_name(f"{path.name}.v{current}.bak")
    partial = copy.with_name(copy.name + ".partial")
    target = sqlite3.connect(str(partial))
    try:
        db.conn.backup(target)
    finally:
        target.close()
    os.replace(partial, copy)
    log.info("database schema version %d: copied to %s before upgrading", current, copy)
    return copy


def prepare_hub_db(db: Session, *, upstream: bool = False) -> None:
    """What the hub runs on its database before the writer thread starts (on the
    writer's connection): the migrations of its engine. With an upstream, that
    connection also fills the outbox (SQLite only: a branch box)."""
    if not is_sqlite(db):
        if upstream:
            raise ValueError("an upstream needs the SQLite engine (the outbox is a branch's)")
        migrations_pg.migrate(db)
        return
    sqlite_db = as_sqlite(db)
    copy_before_upgrade(sqlite_db)
    migrate(sqlite_db)
    if upstream:
        install_triggers(db)
