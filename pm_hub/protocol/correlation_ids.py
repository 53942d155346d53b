"""Correlation ids: ``{type}_{timestamp}_{counter}_{random}``."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass

_counter = itertools.count(1)
_PATTERN = re.compile(r"^([a-z][a-z0-9-]*)_(\d+)_(\d+)_([0-9a-f]{6,})$")


def new_correlation_id(kind: str) -> str:
    """A new id: request type, milliseconds since the epoch, process counter, random hex."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", kind):
        raise ValueError(f"correlation type must be lowercase letters/digits, got {kind!r}")
    return f"{kind}_{int(time.time() * 1000)}_{next(_counter)}_{secrets.token_hex(4)}"


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
