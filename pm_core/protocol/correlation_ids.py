"""Correlation ids: ``{type}_{timestamp}_{counter}_{random}``."""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
import secrets
import time
from dataclasses import dataclass

_counter = itertools.count(1)
_PATTERN = re.compile(r"^([a-z][a-z0-9-]*)_(\d+)_(\d+)_([0-9a-f]{6,})$")


@functools.lru_cache(maxsize=64)
def _checked_kind(kind: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]*", kind):
        raise ValueError(f"correlation type must be lowercase letters/digits, got {kind!r}")
    return kind


def new_correlation_id(kind: str) -> str:
    """A new id: request type, milliseconds since the epoch, process counter, random hex
    (from the OS: an agent answering a pending request must not guess another's id)."""
    return _make(kind, secrets.token_hex(4))


def new_request_id(kind: str) -> str:
    """An id for a request's log lines only (nothing is looked up by it): the same shape,
    cheaper random (every event an agent sends gets one)."""
    return _make(kind, f"{random.getrandbits(32):08x}")


def _make(kind: str, suffix: str) -> str:
    return f"{_checked_kind(kind)}_{int(time.time() * 1000)}_{next(_counter)}_{suffix}"


def job_correlation_id(job_id: int, created_at: float) -> str:
    """The correlation id of a print job: ``job_{created_ms}_{job_id}_{hash}``.

    Derived from the job itself, so every delivery of a job (also after a hub
    restart) and every log line about it carry the same id."""
    created_ms = int(created_at * 1000)
    digest = hashlib.blake2s(f"{job_id}:{created_ms}".encode(), digest_size=4).hexdigest()
    return f"job_{created_ms}_{job_id}_{digest}"


@dataclass(frozen=True)
class CorrelationIdParts:
    kind: str
    timestamp_ms: int
    counter: int
    random: str


def parse_correlation_id(value: str) -> CorrelationIdParts | None:
    match = _PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    kind, ts, counter, rand = match.groups()
    return CorrelationIdParts(kind, int(ts), int(counter), rand)
