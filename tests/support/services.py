"""PostgreSQL and Redis for the tests that need them (the company hub on several
processes). They are found at ``PM_TEST_POSTGRES_URL`` and ``PM_TEST_REDIS_URL``
(defaults: the local ones). When one cannot be reached the test is skipped with the
reason, unless ``PM_REQUIRE_SERVICES=1`` (CI: ``.ci/run``), where it fails."""

from __future__ import annotations

import functools
import os
import uuid

import pytest

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"


def required() -> bool:
    return os.environ.get("PM_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, url: str, why: str) -> None:
    message = (
        f"{what} not reachable at {url} ({why}); set {_env(what)} to one, "
        "or PM_REQUIRE_SERVICES=1 to make this a failure"
    )
    if required():
        pytest.fail(message.replace("; set", "; PM_REQUIRE_SERVICES=1 is set. Set"), pytrace=False)
    pytest.skip(message)


def _env(what: str) -> str:
    return "PM_TEST_POSTGRES_URL" if what == "PostgreSQL" else "PM_TEST_REDIS_URL"


@functools.cache
def _redis_problem(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None


@functools.cache
def _postgres_problem(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def redis_url() -> str:
    """The test Redis (skips or fails the test when it cannot be reached)."""
    url = os.environ.get("PM_TEST_REDIS_URL", REDIS_DEFAULT)
    problem = _redis_problem(url)
    if problem is not None:
        _unavailable("Redis", url, problem)
    return url


def postgres_url() -> str:
    """The test PostgreSQL (skips or fails the test when it cannot be reached)."""
    url = os.environ.get("PM_TEST_POSTGRES_URL", POSTGRES_DEFAULT)
    problem = _postgres_problem(url)
    if problem is not None:
        _unavailable("PostgreSQL", url, problem)
    return url


def unique_channel() -> str:
    """A Redis channel of one test's own (tests never hear each other's hubs)."""
    return f"pm-test-{uuid.uuid4().hex[:12]}"
