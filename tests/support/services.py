"""The outside services some tests use (PostgreSQL, Redis), found where the environment
says.

``PM_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and
``PM_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). When a server cannot be
reached the tests that need it are skipped, with the reason in pytest's summary; with
``PM_REQUIRE_SERVICES=1`` (CI) that is a failure instead.

Each test gets a schema of its own (made for it, dropped after): its URL sets
``search_path`` to that schema, so the hub's tables land there and nothing is shared
between tests, nor left behind.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import sqlite_utils

from pm_core.database import connect
from pm_core.sql import Session, as_sqlite, engine_of, is_sqlite

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def postgres_url() -> str:
    return os.environ.get("PM_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def services_required() -> bool:
    return os.environ.get("PM_REQUIRE_SERVICES", "").strip() not in ("", "0", "false", "no")


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None: it can). Asked once per test run."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        return f"psycopg is not installed ({exc})"
    from pm_core.postgres import describe

    url = postgres_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {describe(url)} (PM_TEST_POSTGRES_URL) is unreachable: {first}"
    return None


def need_postgres() -> str:
    """The server's URL; skips the test (fails it with PM_REQUIRE_SERVICES=1) when the
    server cannot be reached."""
    problem = _postgres_problem()
    if problem is not None:
        if services_required():
            pytest.fail(f"{problem} and PM_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(problem)
    return postgres_url()


def redis_url() -> str:
    return os.environ.get("PM_TEST_REDIS_URL") or DEFAULT_REDIS_URL


@functools.cache
def _redis_problem() -> str | None:
    """Why Redis cannot be used (None: it can). Asked once per test run."""
    import redis

    url = redis_url()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at {url} (PM_TEST_REDIS_URL) is unreachable: {exc}"
    return None


def need_redis() -> str:
    """The Redis URL; skips the test (fails it with PM_REQUIRE_SERVICES=1) when the
    server cannot be reached."""
    problem = _redis_problem()
    if problem is not None:
        if services_required():
            pytest.fail(f"{problem} and PM_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(problem)
    return redis_url()


def unique_channel() -> str:
    """A Redis channel of one test's own (tests never hear each other's hubs)."""
    return f"pm-test-{uuid.uuid4().hex[:12]}"


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections work in ``schema``."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@contextmanager
def postgres_schema(label: str = "t") -> Iterator[str]:
    """A new, empty schema for one test: yields a URL whose connections use it; the
    schema and all in it are dropped after."""
    import psycopg
    from psycopg import sql

    url = need_postgres()
    name = f"pm_{label}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_search_path(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def open_session(target: str) -> Session:
    """A store session on a connection of its own to ``target`` (a SQLite path or a
    PostgreSQL URL; autocommit, as the hub's connections are)."""
    if engine_of(target) == "postgresql":
        from pm_core.postgres import PgSession, PostgresEngine

        return PgSession(PostgresEngine(target).connect())
    return sqlite_utils.Database(connect(target))


def close(db: Session) -> None:
    if is_sqlite(db):
        as_sqlite(db).conn.close()
    else:
        db._conn.close()  # type: ignore[attr-defined]
