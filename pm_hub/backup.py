"""Back up a branch hub's SQLite file while the hub runs, and restore one while it does not.

A backup is one SQLite file: the hub's database as it was at one instant (SQLite's
online backup API, read inside one read transaction, so a hub that keeps writing
neither waits nor makes the copy start over), plus the small files beside it that the
database needs (the token signing secret, the webhook secret, the local agent's key)
in a table of their own, ``pm_backup_files``. It is written as ``FILE.partial``,
checked, then renamed: a half-written backup never has the name asked for.

A restore refuses while a hub holds the data dir's lock (``pm_hub.hub_lock``) and
holds that lock itself until it is done, so no hub starts on a half-restored dir. The
file it replaces is kept beside it (``hub.sqlite.before-restore-...``). A backup from
an earlier version is migrated by the hub at its next start, like any older file.

Everything here blocks (file I/O): the command line calls it, never the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pm_hub.hub_lock import FileLock, HubAlreadyRunning
from pm_hub.store.migrations import CURRENT_VERSION

log = logging.getLogger(__name__)

#: Where a backup keeps the data dir's small files.
FILES_TABLE = "pm_backup_files"
#: Pages copied per step of the backup (4 KiB each: 4 MiB a step).
PAGES_PER_STEP = 1024
#: A file kept in a backup is at most this big (secrets and keys are a few bytes).
MAX_KEPT_FILE = 1024 * 1024
#: Tables every PrinterMaster hub database has.
HUB_TABLES = ("schema_migrations", "printers", "jobs", "agents", "licenses")

#: ``progress(pages_done, pages_total)``.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BackupInfo:
    """What a backup holds."""

    path: Path
    schema_version: int
    size_bytes: int
    files: tuple[str, ...]
    printers: int
    jobs: int


def _open(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def inspect(path: Path, *, what: str = "backup") -> BackupInfo:
    """Check that ``path`` is a PrinterMaster hub database (or backup) this program can
    use: an intact SQLite file with the hub's tables at a known schema version.
    ValueError says what is wrong."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        conn = _open(path, read_only=True)
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot open it ({exc})") from None
    try:
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path} is not a PrinterMaster {what}: {exc}") from None
        missing = [t for t in HUB_TABLES if t not in tables]
        if missing:
            raise ValueError(
                f"{path} is not a PrinterMaster {what}: it has no {', '.join(missing)} table"
            )
        version = int(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)
        if version > CURRENT_VERSION:
            raise ValueError(
                f"{path} was made by a newer PrinterMaster (schema version {version}; this "
                f"program knows up to {CURRENT_VERSION}): upgrade first"
            )
        if version < 1:
            raise ValueError(f"{path} is not a PrinterMaster {what}: no schema version")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise ValueError(f"{path} is damaged: {check}")
        files: tuple[str, ...] = ()
        if FILES_TABLE in tables:
            files = tuple(
                r[0] for r in conn.execute(f"SELECT name FROM {FILES_TABLE} ORDER BY name")
            )
        printers = conn.execute("SELECT COUNT(*) FROM printers").fetchone()[0]
        jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()
    return BackupInfo(path, version, path.stat().st_size, files, printers, jobs)


def _private_new_file(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only (a backup holds secrets)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(
    database: Path,
    target: Path,
    *,
    files: dict[str, Path] | None = None,
    progress: Progress | None = None,
    pages_per_step: int | None = None,
) -> BackupInfo:
    """Copy the hub database ``database`` (running hub or not) to ``target``, with
    ``files`` (name -> path; missing ones are left out). Returns what was written."""
    inspect(database, what="database")
    if target.exists():
        raise ValueError(f"{target} exists; give a new file name (or remove it first)")
    partial = target.with_name(target.name + ".partial")
    _private_new_file(partial)
    source = _open(database, read_only=False)
    copy = sqlite3.connect(str(partial), isolation_level=None)
    try:
        # One read transaction for the whole copy: every step reads the same instant,
        # so the hub's writes meanwhile (WAL) neither wait nor restart the backup.
        source.execute("BEGIN")
        source.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()
        if pages_per_step is None:  # about 20 steps: progress every 5 %
            total_pages = int(source.execute("PRAGMA page_count").fetchone()[0])
            pages_per_step = max(64, total_pages // 20)

        def step(_status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        source.backup(copy, pages=pages_per_step, progress=step)
        source.execute("COMMIT")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        copy.execute(
            f"CREATE TABLE {FILES_TABLE} (name TEXT PRIMARY KEY, mode INTEGER NOT NULL, "
            "content BLOB NOT NULL)"
        )
        for name, path in sorted((files or {}).items()):
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_KEPT_FILE:
                raise ValueError(f"{path} is larger than {MAX_KEPT_FILE} bytes; not a secret file")
            copy.execute(
                f"INSERT INTO {FILES_TABLE} (name, mode, content) VALUES (?, ?, ?)",
                (name, path.stat().st_mode & 0o777, path.read_bytes()),
            )
    except BaseException:
        copy.close()
        source.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    copy.close()
    source.close()
    try:
        info = inspect(partial)
        _fsync(partial)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    log.info("backed up %s to %s (schema version %d)", database, target, info.schema_version)
    return BackupInfo(
        target, info.schema_version, info.size_bytes, info.files, info.printers, info.jobs
    )


def _set_aside(database: Path, suffix: str) -> Path | None:
    """Keep a copy of the current database with everything its WAL still held (a hub
    that crashed leaves committed pages there), then let go of its WAL and shared
    memory files; None when there is no database."""
    if not database.exists():
        return None
    kept = database.with_name(f"{database.name}.{suffix}")
    _private_new_file(kept)
    source = _open(database, read_only=False)
    target = sqlite3.connect(str(kept), isolation_level=None)
    try:
        source.backup(target, pages=PAGES_PER_STEP)
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()
    for extra in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            database.with_name(database.name + extra).unlink()
    return kept


@dataclass(frozen=True)
class RestoreInfo:
    backup: BackupInfo
    #: The database that was replaced, kept (None: there was none).
    previous: Path | None
    #: The data dir's files written from the backup.
    files: tuple[str, ...]


def restore(
    source: Path,
    data_dir: Path,
    *,
    database_name: str = "hub.sqlite",
    allowed_files: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> RestoreInfo:
    """Make ``source`` (a backup) the hub database of ``data_dir``, with the files it
    holds among ``allowed_files``. Refused (:class:`HubAlreadyRunning`) while a hub
    runs on ``data_dir``; ValueError for a file that is not a usable backup."""
    info = inspect(source)
    lock = FileLock(data_dir)
    try:
        lock.take()
    except HubAlreadyRunning:
        raise HubAlreadyRunning(
            f"a hub is running on {data_dir}: stop it first (systemctl stop printermaster, "
            "or end pm up / pm hub), then restore"
        ) from None
    try:
        database = data_dir / database_name
        incoming = data_dir / f"{database_name}.restoring"
        _private_new_file(incoming)
        backup_conn = _open(source, read_only=True)
        copy = sqlite3.connect(str(incoming), isolation_level=None)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            backup_conn.backup(copy, pages=PAGES_PER_STEP, progress=step)
            kept: dict[str, bytes] = {}
            has_files = copy.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (FILES_TABLE,)
            ).fetchone()
            if has_files:
                for name, _mode, content in copy.execute(
                    f"SELECT name, mode, content FROM {FILES_TABLE}"
                ):
                    if name in allowed_files:
                        kept[name] = bytes(content)
            copy.execute(f"DROP TABLE IF EXISTS {FILES_TABLE}")
            copy.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            copy.close()
            backup_conn.close()
            incoming.unlink(missing_ok=True)
            raise
        copy.close()
        backup_conn.close()
        _fsync(incoming)
        previous = _set_aside(database, "before-restore-" + time.strftime("%Y%m%d-%H%M%S"))
        os.replace(incoming, database)
        for name, content in sorted(kept.items()):
            path = data_dir / name
            partial = path.with_name(name + ".restoring")
            _private_new_file(partial)
            partial.write_bytes(content)  # secrets: owner only, whatever they were
            os.replace(partial, path)
    finally:
        lock.release()
    log.info("restored %s into %s (previous database kept as %s)", source, database, previous)
    return RestoreInfo(info, previous, tuple(sorted(kept)))
