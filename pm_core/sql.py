"""What a store function may use of a database, whichever engine holds it.

The hub's store (``pm_hub.store``) is one set of functions of a :class:`Session`: run
by :class:`pm_core.database.Database` on its writer thread inside a transaction, or on
a reader thread. On SQLite the session is a ``sqlite_utils.Database`` (nothing in
between: the branch box's speed is SQLite's); on PostgreSQL it is
:class:`pm_core.postgres.PgSession`, which takes the same calls.

Portable SQL, the rules the store keeps so the same text runs on both:

- placeholders are ``?`` (the PostgreSQL session turns them into its own);
- a new row's id comes from ``INSERT ... RETURNING id``, never ``lastrowid``;
- ``INSERT ... ON CONFLICT (...) DO NOTHING | DO UPDATE``, never ``INSERT OR ...``;
- no ``julianday``, ``strftime``, two-argument ``MAX``: ``FLOOR``, ``COALESCE``,
  ``CASE`` and plain comparisons instead; booleans are INTEGER 0/1, times REAL
  (DOUBLE PRECISION) seconds, on both engines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from pm_core.protocol.errors import ErrorCode, ProtocolError

if TYPE_CHECKING:
    import sqlite_utils


class Cursor(Protocol):
    """What a statement gives back: rows (``row["col"]``, ``row[0]``, ``dict(row)``)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The one call the store makes on the connection itself: a statement for many rows."""

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...


class Session(Protocol):
    """A store function's handle on the database (inside the writer's transaction, or
    on a reader's connection)."""

    @property
    def conn(self) -> Connection: ...

    def execute(self, sql: str, parameters: Any = None, /) -> Cursor: ...


@contextmanager
def pipelined(db: Session) -> Iterator[None]:
    """Statements sent together: on PostgreSQL, in one round trip (psycopg's pipeline
    mode: a cursor's rows are read after the block, an error is raised at its end); on
    SQLite, nothing changes (no round trips to save)."""
    pipeline = getattr(db, "pipeline", None)
    if pipeline is None:
        yield
        return
    with pipeline():
        yield


class DatabaseUnavailable(ProtocolError):
    """The database server cannot be reached (PostgreSQL stopped, the network cut):
    the request answers ``unavailable`` and the hub goes on; reads and writes work
    again once the server is back (the pool and the writer reconnect)."""

    def __init__(self, message: str = "the database is unreachable; try again shortly") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


def engine_of(target: str) -> str:
    """``postgresql`` for a ``postgresql://`` (or ``postgres://``) URL, else ``sqlite``
    (a path, or ``sqlite:///path``)."""
    return "postgresql" if target.startswith(("postgresql://", "postgres://")) else "sqlite"


def sqlite_path(target: str) -> str:
    """The file of a SQLite target: ``sqlite:///abs/path`` -> ``/abs/path``, a path
    as it is."""
    return target[len("sqlite://") :] if target.startswith("sqlite://") else target


def is_sqlite(session: Session) -> bool:
    import sqlite_utils  # already loaded wherever a SQLite session exists

    return isinstance(session, sqlite_utils.Database)


def as_sqlite(session: Session) -> sqlite_utils.Database:
    """``session`` for code that only SQLite runs (the branch's upstream outbox, its
    triggers); a TypeError on another engine."""
    import sqlite_utils

    if not isinstance(session, sqlite_utils.Database):
        raise TypeError("this needs the SQLite engine (a branch hub's own file)")
    return session
