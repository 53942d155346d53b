"""Printer capability profiles: the names of python-escpos's capability database.

A printer's ``profile`` (paper width, columns, QR and image support) is one of these
names; an operator may set it with ``printer:configure {printer_id, profile}``
(``null`` for automatic: from the printer's model). The database is loaded on first
use (it is a large file).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pm_core.protocol.validation import invalid

#: Longest profile name accepted on the wire (the database's are far shorter).
MAX_PROFILE_NAME = 64
#: Largest ``capabilities`` object an agent may report for a printer.
MAX_CAPABILITIES_BYTES = 4096
MAX_CAPABILITIES_FIELDS = 40


@cache
def profile_names() -> tuple[str, ...]:
    """Every profile name python-escpos knows, sorted."""
    from escpos.capabilities import CAPABILITIES

    return tuple(sorted(CAPABILITIES["profiles"]))


def is_known_profile(name: str) -> bool:
    return name in profile_names()


def unknown_profile_message(name: str) -> str:
    return f"unknown printer profile {name!r}; known profiles: {', '.join(profile_names())}"


def check_profile_field(value: object, key: str = "profile") -> str | None:
    """A ``profile`` field of a payload: a known name, or None (automatic); raises the
    ``invalid_payload`` ProtocolError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a profile name or null")
    name = value.strip()
    if not name or len(name) > MAX_PROFILE_NAME or not is_known_profile(name):
        raise invalid(unknown_profile_message(name[:MAX_PROFILE_NAME]))
    return name


def check_capabilities(value: Any) -> dict[str, Any] | None:
    """A printer's ``capabilities`` as an agent reports them: a small plain JSON object
    (or None: not reported); raises the ``invalid_payload`` ProtocolError otherwise."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_CAPABILITIES_FIELDS:
        raise invalid(f"capabilities must be an object of at most {MAX_CAPABILITIES_FIELDS} fields")
    try:
        size = len(json.dumps(value))
    except (TypeError, ValueError):
        raise invalid("capabilities must be plain JSON") from None
    if size > MAX_CAPABILITIES_BYTES:
        raise invalid(f"capabilities is larger than {MAX_CAPABILITIES_BYTES} bytes")
    return value
