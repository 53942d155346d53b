"""Small checks for incoming payloads; each failure names the field it is about."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pm_core.protocol.errors import ErrorCode, ProtocolError
from pm_core.protocol.statuses import JOB_STATUSES

#: The integers SQLite can store; a larger id cannot name anything.
SQLITE_INT_MIN = -(2**63)
SQLITE_INT_MAX = 2**63 - 1

_INTEGER = re.compile(r"-?[0-9]{1,19}")
_NUMBER = re.compile(r"-?[0-9]{1,19}(\.[0-9]{1,9})?")

#: Largest JSON payload a handler accepts (a document with an image fits easily).
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
#: Deepest nesting of objects and lists a payload may have (a document is 4 deep).
MAX_PAYLOAD_DEPTH = 32

#: C0 controls, DEL and C1 controls: printer commands on paper, terminal commands on
#: a screen. Names and ticket text never need them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Halves of a UTF-16 surrogate pair standing alone: JSON allows them ("\ud800"),
#: UTF-8 (SQLite, the printer) cannot hold them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def control_characters(text: str, *, allowed: str = "") -> list[str]:
    """The distinct control characters in ``text`` (as ``\\x1b``-style escapes, at most
    five), leaving out those in ``allowed``."""
    found: list[str] = []
    for match in _CONTROL.finditer(text):
        char = match.group()
        if char in allowed:
            continue
        shown = f"\\x{ord(char):02x}"
        if shown not in found:
            found.append(shown)
            if len(found) == 5:
                break
    return found


def invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)


def require_object(payload: Any, *, allowed: Iterable[str] | None = None) -> dict[str, Any]:
    """The payload must be a JSON object; with ``allowed`` unknown keys are refused."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise invalid(f"payload must be an object, got {type(payload).__name__}")
    if allowed is not None:
        unknown = sorted(set(payload) - set(allowed))
        if unknown:
            raise invalid(f"unknown field(s): {', '.join(map(str, unknown))}")
    return payload


def get_int(
    payload: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        # Accept integral strings from HTTP query strings and loose clients.
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            value = int(value.strip())
        else:
            raise invalid(f"{key} must be an integer")
    if not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
        raise invalid(f"{key} is out of range")
    if minimum is not None and value < minimum:
        raise invalid(f"{key} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(f"{key} must be <= {maximum}")
    return value


def get_str(
    payload: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    default: str | None = None,
    max_length: int = 200,
    choices: Iterable[str] | None = None,
) -> str | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return default
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    if required and not value.strip():
        raise invalid(f"{key} must not be empty")
    if len(value) > max_length:
        raise invalid(f"{key} is longer than {max_length} characters")
    if choices is not None:
        options = list(choices)
        if value not in options:
            raise invalid(f"{key} must be one of {', '.join(options)}")
    return value


def get_name(
    payload: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    default: str | None = None,
    max_length: int = 100,
) -> str | None:
    """A name shown to people (printer, station, agent, branch): a string without
    control characters, which would reach a terminal or a printer as commands."""
    value = get_str(payload, key, required=required, default=default, max_length=max_length)
    if value is not None:
        bad = control_characters(value)
        if bad:
            raise invalid(f"{key} must not hold control characters ({', '.join(bad)})")
    return value


def check_payload_shape(payload: Any, *, max_depth: int = MAX_PAYLOAD_DEPTH) -> None:
    """Refuse what no handler can store or show: nesting deeper than ``max_depth``,
    strings (or keys) with a lone UTF-16 surrogate, integers SQLite cannot hold and
    NaN or Infinity. Iterative: a hostile depth cannot exhaust the stack."""
    pending: list[tuple[Any, int]] = [(payload, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise invalid("a string holds a lone UTF-16 surrogate (not valid text)")
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not SQLITE_INT_MIN <= value <= SQLITE_INT_MAX:
                raise invalid("a number is out of range (integers fit in 64 bits)")
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise invalid("a number is not finite (NaN and Infinity are not JSON)")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise invalid(f"payload is nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    pending.append((key, depth + 1))
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in value)


def get_float(
    payload: dict[str, Any],
    key: str,
    *,
    required: bool = False,
    default: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    value = payload.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return default
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        # Numbers from HTTP query strings (``?since=1733050000.5``).
        value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{key} must be a number")
    try:
        value = float(value)
    except OverflowError:
        raise invalid(f"{key} is out of range") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid(f"{key} must be a finite number")
    if minimum is not None and value < minimum:
        raise invalid(f"{key} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(f"{key} must be <= {maximum}")
    return value


def get_bool(payload: dict[str, Any], key: str, *, default: bool = False) -> bool:
    value = payload.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false")
    return value


def get_flags(payload: dict[str, Any], key: str = "flags") -> dict[str, bool]:
    value = payload.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise invalid(f"{key} must be an object of at most 32 booleans")
    flags: dict[str, bool] = {}
    for name, flag in value.items():
        if not isinstance(name, str) or len(name) > 40 or not isinstance(flag, bool):
            raise invalid(f"{key} must map names to true/false")
        flags[name] = flag
    return flags


def get_choices(payload: dict[str, Any], key: str, choices: Iterable[str]) -> list[str] | None:
    """A filter given as one value, a comma list (``"queued,printing"``, handy in query
    strings) or a JSON list; every value must be one of ``choices``."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        values = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        values = list(value)
    else:
        raise invalid(f"{key} must be a string or a list of strings")
    options = list(choices)
    if not set(values) <= set(options):
        raise invalid(f"{key} must be among {', '.join(options)}")
    return values


def job_filters(payload: Any) -> dict[str, Any]:
    """The filters of ``jobs:list`` (and ``GET /api/v1/jobs``), checked, as keyword
    arguments for the stores' ``list_jobs``."""
    data = require_object(
        payload,
        allowed=("status", "printer_id", "station", "since", "until", "limit", "before_id"),
    )
    return {
        "statuses": get_choices(data, "status", JOB_STATUSES),
        "printer_id": get_int(data, "printer_id", minimum=1),
        "station": get_str(data, "station", max_length=64),
        "since": get_float(data, "since", minimum=0),
        "until": get_float(data, "until", minimum=0),
        "limit": get_int(data, "limit", default=100, minimum=1, maximum=1000),
        "before_id": get_int(data, "before_id", minimum=1),
    }


def printer_filter(payload: Any) -> Callable[[dict[str, Any]], bool]:
    """The filters of ``printers:list`` (branch, station, status), checked, as a test
    for one printer row."""
    data = require_object(payload, allowed=("branch_id", "station", "status"))
    branch_id = get_int(data, "branch_id")
    station = get_str(data, "station", max_length=64)
    status = get_str(data, "status", max_length=32)

    def wanted(row: dict[str, Any]) -> bool:
        return (
            (branch_id is None or row["branch_id"] == branch_id)
            and (station is None or row["station"] == station)
            and (status is None or row["status"] == status)
        )

    return wanted


def alert_filters(payload: Any) -> dict[str, Any]:
    """The filters of ``alerts:list`` (and ``GET /api/v1/alerts``), checked, as keyword
    arguments for the stores' ``list_alerts``."""
    data = require_object(payload, allowed=("state", "since", "limit"))
    return {
        "states": get_choices(data, "state", ("open", "acknowledged", "cleared")),
        "since": get_float(data, "since", minimum=0),
        "limit": get_int(data, "limit", default=200, minimum=1, maximum=1000),
    }
