"""The PostgreSQL engine of :class:`pm_core.database.Database` (psycopg 3).

One dedicated connection on the writer thread runs each batch of queued write
functions as ``BEGIN``, a savepoint per function, ``COMMIT`` (the same group commit
and ordering as SQLite's writer); readers borrow connections from a
``psycopg_pool.ConnectionPool``. Both are in autocommit mode, like SQLite's
connections: a transaction is only ever the writer's explicit ``BEGIN``.

Store functions get a :class:`PgSession`: ``execute(sql, params)`` with ``?``
placeholders (turned into psycopg's ``%s``, a literal ``%`` doubled), a cursor whose
rows answer ``row["col"]``, ``row[0]`` and ``dict(row)`` like ``sqlite3.Row``, and
``conn.executemany``. Python booleans are written as 0/1 (the schema keeps SQLite's
INTEGER flags).

When the server cannot be reached, reads and writes raise
:class:`~pm_core.sql.DatabaseUnavailable` (an ``unavailable`` error ack) instead of
hanging or crashing: a read waits at most ``timeout`` seconds for a connection; the
writer fails the batch it holds and connects again for the next one; the pool
replaces its broken connections. Nothing needs restarting when the server is back.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from pm_core.sql import DatabaseUnavailable, Session

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to wait for a new connection (libpq ``connect_timeout``), unless the URL says.
CONNECT_TIMEOUT = 5
#: Seconds a read waits for a pooled connection before answering ``unavailable``.
POOL_TIMEOUT = 5.0
#: Seconds the pool keeps retrying one lost connection in the background; after that
#: it connects again on demand (the next read), so a long outage is not followed by a
#: long back-off.
RECONNECT_TIMEOUT = 10.0
#: libpq settings every connection gets unless the URL sets them: a dead server or
#: link is noticed within about a minute even on an idle connection.
CONNECTION_DEFAULTS = {
    "connect_timeout": str(CONNECT_TIMEOUT),
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "application_name": "printermaster",
}


# -- SQL text -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def translate(sql: str, with_params: bool = True) -> str:
    """``?`` placeholders to ``%s`` and a literal ``%`` to ``%%`` (outside quoted
    literals and identifiers, where a ``?`` is text). Without parameters psycopg takes
    the text as it is."""
    if not with_params:
        return sql
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


# -- rows ----------------------------------------------------------------------------------------


class Row(tuple[Any, ...]):
    """A row like ``sqlite3.Row``: by position, by column name, ``dict(row)``, and a
    tuple (unpacking, iteration, equality)."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}
    _names: ClassVar[tuple[str, ...]] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # a repeated name finds its first column, as in sqlite3
    return type("Row", (Row,), {"__slots__": (), "_index": index, "_names": names})


def row_factory(cursor: Any) -> RowMaker[Row]:
    description = cursor.description
    if description is None:
        return Row
    cls = _row_class(tuple(c.name for c in description))
    return cls


class _BoolAsInt(Dumper):
    """True/False as 1/0: flags are INTEGER columns, as on SQLite."""

    oid = psycopg.adapters.types["int4"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInt)


# -- the session store functions get -----------------------------------------------------------


class _Conn:
    """``session.conn``: ``executemany`` with ``?`` placeholders."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        with self._conn.cursor() as cur:
            cur.executemany(translate(sql), parameters)
            return cur.rowcount


class PgSession:
    """What a store function gets on PostgreSQL (see :class:`pm_core.sql.Session`)."""

    __slots__ = ("_conn", "conn")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.conn = _Conn(conn)

    def execute(self, sql: str, parameters: Any = None, /) -> psycopg.Cursor[Any]:
        if parameters is None:
            return self._conn.execute(translate(sql, False))
        return self._conn.execute(translate(sql), parameters)

    def pipeline(self) -> Any:
        """``pm_core.sql.pipelined``: psycopg's pipeline mode on this connection."""
        return self._conn.pipeline()


# -- the engine ------------------------------------------------------------------------------------


def _conninfo(url: str) -> str:
    """The URL with :data:`CONNECTION_DEFAULTS` for what it does not set itself."""
    given = psycopg.conninfo.conninfo_to_dict(url)
    extra = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
    return psycopg.conninfo.make_conninfo(url, **extra)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(invalid URL)"
    host = parts.get("host", "localhost")
    port = parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname', '')}"


def _unavailable(exc: BaseException, what: str) -> DatabaseUnavailable:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseUnavailable(f"the database is unreachable ({what}: {first}); try again shortly")


def _item_error(exc: Exception) -> BaseException:
    """What the caller of a failed write function hears: its own exception, except a
    server-side interruption (statement timeout, shutdown), which is ``unavailable``."""
    return _unavailable(exc, "write") if isinstance(exc, psycopg.OperationalError) else exc


def is_connection_error(exc: BaseException, conn: psycopg.Connection[Any] | None) -> bool:
    """True when ``exc`` means the server or the link is gone (not a bad statement)."""
    if isinstance(exc, psycopg.OperationalError):
        return True
    return conn is not None and conn.broken


class PostgresEngine:
    """Connections for one ``postgresql://`` URL: the writer's, and the readers' pool."""

    def __init__(self, url: str, *, readers: int = 2) -> None:
        self.url = url
        self.name = describe(url)
        self.conninfo = _conninfo(url)
        self.readers = readers
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._writer: psycopg.Connection[Any] | None = None
        self._writer_lost = False
        self._lock = threading.Lock()

    # -- connections -----------------------------------------------------------------------

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection with the rows and adapters store functions expect."""
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, row_factory=row_factory)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc, f"cannot connect to {self.name}") from exc
        _configure(conn)
        return conn

    def start(self, prepare: Callable[[Session], None] | None) -> None:
        """Connect the writer (a clear error when the server cannot be reached), run
        ``prepare`` (migrations) on it, open the readers' pool."""
        self._writer = self.connect()
        if prepare is not None:
            prepare(PgSession(self._writer))
        self._pool = ConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=max(1, self.readers),
            kwargs={"autocommit": True, "row_factory": row_factory},
            configure=_configure,
            timeout=POOL_TIMEOUT,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name="pm-readers",
            open=True,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _writer_conn(self) -> psycopg.Connection[Any]:
        conn = self._writer
        if conn is not None and not conn.broken and not conn.closed:
            return conn
        if conn is not None:
            conn.close()
            self._writer = None
        conn = self.connect()  # raises DatabaseUnavailable while the server is away
        if self._writer_lost:
            log.warning("the writer is connected to %s again", self.name)
            self._writer_lost = False
        self._writer = conn
        return conn

    # -- reads -----------------------------------------------------------------------------------

    def read(self, fn: Callable[[Session], T]) -> T:
        """``fn`` on a pooled connection (in a reader thread). A connection found dead
        (the server restarted since it was last used) is replaced and the read tried
        once more: reads change nothing, so that is safe."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("database is closed")
        for attempt in range(self.readers + 1):
            try:
                with pool.connection() as conn:
                    try:
                        return fn(PgSession(conn))
                    except Exception as exc:
                        if conn.broken and attempt < self.readers:
                            continue  # the pool replaces it; try the next one
                        if is_connection_error(exc, conn):
                            raise _unavailable(exc, "read") from exc
                        raise
            except psycopg.OperationalError as exc:  # the pool could not give one
                raise _unavailable(exc, "no connection") from exc
        raise AssertionError("unreachable")

    # -- writes ----------------------------------------------------------------------------------

    def run_batch(self, batch: Sequence[Any]) -> list[tuple[Any, Any, BaseException | None]]:
        """Run the write functions of ``batch`` (items with ``fn``) in one transaction,
        each in a savepoint; returns (item, result, error) for each, after COMMIT. Never
        raises: the writer thread must outlive any outage."""
        error: BaseException
        for _attempt in (1, 2):
            try:
                return self._run(batch)
            except _StaleConnection as exc:
                # The writer's connection died while idle (a server restart): nothing of
                # this batch ran; one more try on a new connection.
                self._lose_writer()
                error = _unavailable(exc.__cause__ or exc, "write")
            except DatabaseUnavailable as exc:  # cannot connect
                error = exc
                break
            except Exception as exc:  # a bug here must not end the writer thread
                log.exception("postgresql writer failed; %d writes lost", len(batch))
                self._lose_writer()
                error = exc
                break
        return [(item, None, error) for item in batch]

    def _lose_writer(self) -> None:
        if not self._writer_lost:
            log.warning("the writer lost its connection to %s; it connects again", self.name)
            self._writer_lost = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _run(self, batch: Sequence[Any]) -> list[tuple[Any, Any, BaseException | None]]:
        """The batch in one transaction. First without a savepoint per write (two round
        trips fewer for each); if one fails, the transaction is rolled back and the batch
        runs again with them, so that only the failed write is undone."""
        if len(batch) > 1:
            outcomes = self._run_all_or_nothing(batch)
            if outcomes is not None:
                return outcomes
        return self._run_isolated(batch)

    def _run_all_or_nothing(
        self, batch: Sequence[Any]
    ) -> list[tuple[Any, Any, BaseException | None]] | None:
        """Every write of ``batch`` and COMMIT, or None (rolled back, nothing done) when
        one of them failed."""
        conn = self._writer_conn()
        session = PgSession(conn)
        try:
            conn.execute("BEGIN")
        except psycopg.Error as exc:
            if is_connection_error(exc, conn):
                raise _StaleConnection() from exc
            raise
        outcomes: list[tuple[Any, Any, BaseException | None]] = []
        try:
            try:
                for item in batch:
                    outcomes.append((item, item.fn(session), None))
            except Exception as exc:
                if is_connection_error(exc, conn) and conn.broken:
                    raise
                conn.execute("ROLLBACK")  # one write failed: the caller runs them one by one
                return None
            if conn.pgconn.transaction_status == TransactionStatus.INERROR:
                conn.execute("ROLLBACK")  # a failure a write swallowed: COMMIT would not
                return None
            conn.execute("COMMIT")
        except Exception as exc:
            if not is_connection_error(exc, conn):
                raise
            # As in _run_isolated: a COMMIT cut off may or may not have happened.
            self._lose_writer()
            error: BaseException = _unavailable(exc, "write")
            return [(item, None, error) for item in batch]
        return outcomes

    def _run_isolated(self, batch: Sequence[Any]) -> list[tuple[Any, Any, BaseException | None]]:
        conn = self._writer_conn()
        session = PgSession(conn)
        try:
            conn.execute("BEGIN")
        except psycopg.Error as exc:
            if is_connection_error(exc, conn):
                raise _StaleConnection() from exc
            raise
        outcomes: list[tuple[Any, Any, BaseException | None]] = []
        single = len(batch) == 1  # one function: its own transaction, no savepoint
        try:
            for item in batch:
                if not single:
                    conn.execute("SAVEPOINT write_fn")
                try:
                    result = item.fn(session)
                except Exception as exc:
                    if is_connection_error(exc, conn) and conn.broken:
                        raise
                    if single:
                        conn.execute("ROLLBACK")
                        return [(item, None, _item_error(exc))]
                    conn.execute("ROLLBACK TO SAVEPOINT write_fn")
                    conn.execute("RELEASE SAVEPOINT write_fn")
                    outcomes.append((item, None, _item_error(exc)))
                else:
                    if not single:
                        conn.execute("RELEASE SAVEPOINT write_fn")
                    outcomes.append((item, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            if is_connection_error(exc, conn):
                # A COMMIT cut off may or may not have happened: the callers hear
                # ``unavailable`` and must not assume either (as with any lost link).
                self._lose_writer()
                error: BaseException = _unavailable(exc, "write")
            else:
                log.exception("postgresql transaction failed; %d writes rolled back", len(batch))
                error = exc
                if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error:
                        self._lose_writer()
            outcomes = [(item, None, error) for item in batch]
        return outcomes


class _StaleConnection(Exception):
    """The writer's connection was dead before the batch began."""
