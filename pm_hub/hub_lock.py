"""One hub per store, unless its processes share through Redis.

A second hub on the same SQLite data dir, or a second company-hub process on the
same PostgreSQL database without ``--redis-url``, would start fine and then answer
``not_found`` for printers and branches the first one drives (each keeps its live
state in its own memory). So a hub takes a lock before it opens its store:

- SQLite: an exclusive ``flock`` on ``hub.lock`` in the data dir (the kernel drops it
  when the process ends, SIGKILL included);
- PostgreSQL: a session advisory lock on the database and schema, exclusive for a
  process alone, shared for processes with ``--redis-url`` (any number of those,
  never beside one without).

A refused start is :class:`HubAlreadyRunning`, with what to do instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = "hub.lock"
#: The advisory lock's key is this and the schema's name, hashed by the server.
PG_LOCK_NAME = "printermaster hub "


class HubAlreadyRunning(OSError):
    """Another hub holds the store (the message says what to do)."""


class FileLock:
    """The data dir's lock for a hub on SQLite."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def take(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise HubAlreadyRunning(
                f"another hub (pid {holder}) is running on {self.path.parent}; stop it, or "
                "give this one its own --data-dir (several company-hub processes share "
                "PostgreSQL and Redis: docs/operations.md)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def check(self) -> None:
        """Nothing to renew: the kernel holds a file lock for as long as the process."""


class PostgresLock:
    """The database's advisory lock for a company hub on PostgreSQL; ``shared`` for
    processes that share through Redis."""

    def __init__(self, url: str, *, shared: bool) -> None:
        self.url = url
        self.shared = shared
        self._conn: Any = None

    def take(self) -> None:
        from pm_core.postgres import PostgresEngine

        conn = PostgresEngine(self.url).connect()
        function = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
        row = conn.execute(
            f"SELECT {function}(hashtext(%s || current_schema())), current_schema()",
            (PG_LOCK_NAME,),
        ).fetchone()
        assert row is not None
        if not row[0]:
            conn.close()
            where = f"{PostgresEngine(self.url).name} (schema {row[1]})"
            if self.shared:
                raise HubAlreadyRunning(
                    f"a company hub without --redis-url is running on {where}; stop it, or "
                    "start it with the same --redis-url as this one"
                )
            raise HubAlreadyRunning(
                f"another company hub is running on {where}; several processes on one "
                "database need --redis-url, each the same (docs/operations.md)"
            )
        self._conn = conn

    def check(self) -> None:
        """Take the lock again if the server dropped the connection that held it (a
        restart of PostgreSQL); a failure is logged, the hub keeps serving."""
        conn = self._conn
        try:
            if conn is not None and not conn.closed:
                conn.execute("SELECT 1")
                return
        except Exception:
            log.debug("the connection holding the hub's lock is gone", exc_info=True)
        self.release()
        try:
            self.take()
            log.info("took the hub's database lock again")
        except HubAlreadyRunning as exc:
            log.error("the hub's database lock is held by another process: %s", exc)
        except Exception as exc:
            log.warning("cannot take the hub's database lock again yet: %s", exc)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # the session's advisory locks go with it


def hub_lock(*, data_dir: Path, database_url: str | None, shared: bool) -> FileLock | PostgresLock:
    """The lock for a hub's store (``database_url`` is a PostgreSQL URL or None)."""
    if database_url is not None:
        return PostgresLock(database_url, shared=shared)
    return FileLock(data_dir)
