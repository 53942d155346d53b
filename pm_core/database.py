"""The hub's database: a single writer thread that group-commits, and reader threads.

Two engines, chosen by the target: a path (or ``sqlite:///path``) is a SQLite file, the
branch box's embedded default and everything described below; a ``postgresql://`` URL
is a PostgreSQL server (:mod:`pm_core.postgres`: the same queue, batches, savepoints
and ordering, on psycopg connections), for a company hub. Write and read functions
get a :class:`pm_core.sql.Session` either way.

Writes are plain functions queued to the writer thread; the thread runs every
function waiting in the queue inside one ``BEGIN IMMEDIATE`` transaction (each in
its own savepoint, so one failing write does not undo the others), commits once
and only then resolves the callers' futures. A caller that got its result knows
the write is on disk. Reads run on a small pool of threads with their own
connections (WAL lets them read while the writer writes). Nothing here blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlite_utils

from pm_core.private_files import private_file
from pm_core.sql import DatabaseUnavailable, Session, engine_of, sqlite_path

if TYPE_CHECKING:
    from pm_core.postgres import PostgresEngine

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[Session], Any]


#: Most write functions committed together in one transaction.
MAX_BATCH = 1000


def connect(path: Path | str, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode with the pragmas every connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    # Only a new, empty file takes this (before WAL writes its header): pages freed by
    # pruning can then go back to the file system in small steps, without a VACUUM.
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    _math_functions(conn)
    return conn


def _math_functions(conn: sqlite3.Connection) -> None:
    """``floor`` for SQL shared with PostgreSQL, where this SQLite was built without its
    math functions (most builds have them)."""
    try:
        conn.execute("SELECT floor(1.5)")
    except sqlite3.OperationalError:
        conn.create_function(
            "floor", 1, lambda x: None if x is None else math.floor(x), deterministic=True
        )


class DatabaseClosed(RuntimeError):
    """The database was closed (the process is stopping): a request that arrives now
    is answered ``unavailable``, not logged as a failure."""


class _Item:
    __slots__ = ("fn", "future", "loop", "settle", "waiter", "what")

    def __init__(
        self,
        fn: WriteFn,
        future: asyncio.Future[Any] | None,
        loop: asyncio.AbstractEventLoop | None,
        what: str = "",
        waiter: concurrent.futures.Future[Any] | None = None,
        settle: Callable[[Any, BaseException | None], None] | None = None,
    ):
        self.fn = fn
        self.future = future  # None: write-behind, nobody waits (``what`` names it)
        self.loop = loop
        self.what = what
        self.waiter = waiter  # a thread blocked in ``write_now``
        self.settle = settle  # calls written together: each caller hears its own result


Outcome = tuple[_Item, Any, BaseException | None]


class _Rows:
    """Rows appended by the event loop for one write-behind function, until the writer
    thread takes them (then a new append starts a new batch behind it in the queue)."""

    __slots__ = ("fn", "lock", "open", "rows")

    def __init__(self, fn: Callable[[Session, list[Any]], Any]) -> None:
        self.fn = fn
        self.rows: list[Any] = []
        self.open = True
        self.lock = threading.Lock()

    def append(self, row: Any) -> bool:
        with self.lock:
            if self.open:
                self.rows.append(row)
            return self.open

    def close(self) -> None:
        with self.lock:
            self.open = False

    def run(self, db: Session) -> Any:
        """Write the rows (again, if the engine runs the batch a second time after a
        failure in it: the rows stay, no more join once it ran)."""
        with self.lock:
            self.open = False
            rows = list(self.rows)
        return self.fn(db, rows) if rows else None


class _Together:
    """Calls of one function queued by the event loop while the writer was busy: run as
    one call with every argument (``fn(session, [arg, ...])`` returns a result for
    each), each caller answered with its own. If the call fails, each argument is
    written again on its own, so that one bad argument fails only its caller."""

    __slots__ = ("args", "fn", "lock", "loop", "open", "retry", "waiting")

    def __init__(
        self,
        fn: Callable[[Session, list[Any]], list[Any]],
        loop: asyncio.AbstractEventLoop,
        retry: Callable[[_Item], None],
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.retry = retry
        self.args: list[Any] = []
        self.waiting: list[asyncio.Future[Any]] = []
        self.open = True
        self.lock = threading.Lock()

    def add(self, arg: Any, future: asyncio.Future[Any]) -> bool:
        with self.lock:
            if self.open:
                self.args.append(arg)
                self.waiting.append(future)
            return self.open

    def close(self) -> None:
        with self.lock:
            self.open = False

    def run(self, db: Session) -> list[Any]:
        with self.lock:
            self.open = False
            args = list(self.args)
        results = self.fn(db, args)
        if len(results) != len(args):
            raise RuntimeError(f"{self.fn.__name__} gave {len(results)} results for {len(args)}")
        return results

    def _alone(self, arg: Any) -> WriteFn:
        fn = self.fn

        def write(db: Session) -> Any:
            return fn(db, [arg])[0]

        return write

    def settle(self, results: Any, error: BaseException | None) -> None:
        """(On the writer thread, after the commit or the rollback.)"""
        if error is not None and len(self.args) > 1 and not isinstance(error, DatabaseUnavailable):
            for arg, future in zip(self.args, self.waiting, strict=True):
                self.retry(_Item(self._alone(arg), future, self.loop, self.fn.__name__))
            return
        for n, future in enumerate(self.waiting):
            result = results[n] if error is None else None
            try:
                self.loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the caller's loop is gone (shutdown)
                pass


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _SqliteWriter:
    """The writer thread's SQLite connection: one ``BEGIN IMMEDIATE`` per batch."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def run_batch(self, batch: list[_Item]) -> list[Outcome]:
        conn, db = self.conn, self.db
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                conn.execute("SAVEPOINT write_fn")
                try:
                    result = item.fn(db)
                except Exception as exc:  # the caller gets it; the others still commit
                    conn.execute("ROLLBACK TO write_fn")
                    conn.execute("RELEASE write_fn")
                    outcomes.append((item, None, exc))
                else:
                    conn.execute("RELEASE write_fn")
                    outcomes.append((item, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("sqlite transaction failed; %d writes rolled back", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(item, None, exc) for item in batch]
        return outcomes

    def close(self) -> None:
        self.conn.close()


class Database:
    """The hub's (or agent spool's) database with a single writer thread: a SQLite
    file (a path or ``sqlite:///path``) or a PostgreSQL server (``postgresql://...``)."""

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "FULL",
        readers: int = 2,
        on_write_latency: Callable[[float], None] | None = None,
    ) -> None:
        target = str(path)
        #: ``sqlite`` or ``postgresql``.
        self.engine = engine_of(target)
        self._pg: PostgresEngine | None = None
        if self.engine == "postgresql":
            # Loaded only for a PostgreSQL URL: a branch box and an agent never import
            # psycopg.
            from pm_core.postgres import PostgresEngine

            self._pg = PostgresEngine(target, readers=readers)
            self.path = Path()
            #: Where the data is, for messages (a URL without its password).
            self.where = self._pg.name
        else:
            self.path = Path(sqlite_path(target)) if isinstance(path, str) else path
            self.where = str(self.path)
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="pg-read" if self._pg else "sqlite-read"
        )
        self._local = threading.local()
        self.on_write_latency = on_write_latency
        self._closed = False
        self._open_rows: dict[str, _Rows | _Together] = {}
        self._rows_lock = threading.Lock()  # ``write_now`` closes batches from other threads

    # -- lifecycle -----------------------------------------------------------------

    def start(self, prepare: Callable[[Session], None] | None = None) -> None:
        """Open the database, run ``prepare`` (migrations) and start the writer thread.
        On PostgreSQL, :class:`~pm_core.sql.DatabaseUnavailable` when the server cannot
        be reached."""
        writer: _SqliteWriter | PostgresEngine
        if self._pg is not None:
            self._pg.start(prepare)
            writer = self._pg
            name = f"pg-writer:{self.where}"
        else:
            private_file(self.path)  # 0600 in a 0700 dir: it holds every ticket
            conn = connect(self.path, synchronous=self._synchronous)
            if prepare is not None:
                prepare(sqlite_utils.Database(conn))
            writer = _SqliteWriter(conn)
            name = f"sqlite-writer:{self.path.name}"
        self._thread = threading.Thread(target=self._writer_loop, args=(writer,), name=name)
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        """Finish queued writes, then stop the writer and the readers."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)
        while True:  # a thread that queued a write as this closed must not wait forever
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item.waiter is not None:
                item.waiter.set_exception(DatabaseClosed("database is closed"))
        self._readers.shutdown(wait=True)
        if self._pg is not None:
            self._pg.close()

    # -- writes ----------------------------------------------------------------------

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in the writer thread inside a transaction; return after commit."""
        if self._closed or self._thread is None:
            raise DatabaseClosed("database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Item(fn, future, loop))
        return await future

    def write_now(self, fn: Callable[[Session], T]) -> T:
        """:meth:`write` for a thread that may block (a printer's I/O thread, never the
        event loop): returns after the commit, in the same group commits as the rest."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("write_now from the writer thread would wait for itself")
        return self.write_later(fn).result()

    def write_later(self, fn: Callable[[Session], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn`` from any thread; the future is settled after its commit (writes
        queued after it, from any thread, commit with it or after it)."""
        if self._closed or self._thread is None:
            raise DatabaseClosed("database is closed")
        waiter: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._enqueue(_Item(fn, None, None, getattr(fn, "__name__", "write"), waiter))
        return waiter

    def _enqueue(self, item: _Item) -> None:
        with self._rows_lock:
            self._close_rows()
            self._queue.put(item)

    def write_soon(self, fn: Callable[[Session], Any], *, what: str) -> None:
        """Queue ``fn`` for the writer thread without waiting for its commit (write-behind,
        for state that is re-reported anyway, like printer status). Writes still commit in
        the order they were queued; a failure is logged with ``what``."""
        if self._closed or self._thread is None:
            raise DatabaseClosed("database is closed")
        # No future: the writer thread logs a failure itself, and a success costs the
        # event loop no wake-up at all.
        self._enqueue(_Item(fn, None, None, what))

    def append_soon(self, kind: str, fn: Callable[[Session, list[Any]], Any], row: Any) -> None:
        """Write-behind in bulk: ``row`` joins the rows the writer thread will hand to
        ``fn`` in one call (``executemany``), instead of one queued function per row.
        Order is kept: any other write queued after this closes the batch, so rows
        appended later land after that write."""
        if self._closed or self._thread is None:
            raise DatabaseClosed("database is closed")
        with self._rows_lock:
            batch = self._open_rows.get(kind)
            if isinstance(batch, _Rows) and batch.append(row):
                return
            batch = _Rows(fn)
            batch.append(row)
            self._open_rows[kind] = batch
            self._queue.put(_Item(batch.run, None, None, f"{kind} ({fn.__name__})"))

    async def write_together(
        self, kind: str, fn: Callable[[Session, list[Any]], list[Any]], arg: Any
    ) -> Any:
        """:meth:`write` for a function that takes many arguments at once: calls queued
        while the writer is busy are one ``fn(session, [arg, ...])`` (a store function
        that then reads and writes for all of them in a few statements), each caller
        answered with its own result after the commit. Order is kept as with
        :meth:`append_soon`."""
        if self._closed or self._thread is None:
            raise DatabaseClosed("database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._rows_lock:
            group = self._open_rows.get(kind)
            if not (isinstance(group, _Together) and group.add(arg, future)):
                group = _Together(fn, loop, self._queue.put)
                group.add(arg, future)
                self._open_rows[kind] = group
                self._queue.put(_Item(group.run, None, None, kind, settle=group.settle))
        return await future

    def _close_rows(self) -> None:
        """(With ``_rows_lock`` held.)"""
        if self._open_rows:
            for batch in self._open_rows.values():
                batch.close()
            self._open_rows.clear()

    def _writer_loop(self, writer: _SqliteWriter | PostgresEngine) -> None:
        running = True
        while running:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    running = False
                    break
                batch.append(nxt)
            self._run_batch(writer, batch)
        if isinstance(writer, _SqliteWriter):
            writer.close()
        else:
            writer.close_writer()

    def _run_batch(self, writer: _SqliteWriter | PostgresEngine, batch: list[_Item]) -> None:
        started = time.perf_counter()
        outcomes = writer.run_batch(batch)
        if self.on_write_latency is not None:
            self.on_write_latency(time.perf_counter() - started)
        for item, result, error in outcomes:
            if item.settle is not None:
                item.settle(result, error)
                continue
            if item.waiter is not None:
                if error is not None:
                    item.waiter.set_exception(error)
                else:
                    item.waiter.set_result(result)
                continue
            if item.future is None or item.loop is None:
                if error is not None:
                    log.error("%s failed: %s", item.what, error)
                continue
            try:
                item.loop.call_soon_threadsafe(_settle, item.future, result, error)
            except RuntimeError:  # the caller's loop is gone (shutdown)
                pass

    # -- reads -----------------------------------------------------------------------

    def _reader(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(connect(self.path, synchronous=self._synchronous))
            self._local.db = db
        return db

    async def read(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` on a reader thread with its own connection (SQLite) or a pooled
        one (PostgreSQL)."""
        loop = asyncio.get_running_loop()
        pg = self._pg
        try:
            if pg is not None:
                return await loop.run_in_executor(self._readers, pg.read, fn)
            return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))
        except RuntimeError:
            if self._closed:  # the readers were shut down under this request
                raise DatabaseClosed("database is closed") from None
            raise
