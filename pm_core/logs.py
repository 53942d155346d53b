"""Logging: readable lines on a terminal, one JSON object per line otherwise."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pm_core.protocol import parse_correlation_id

#: The correlation id of the request being handled (set by the handler guard).
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


@contextmanager
def correlation(cid: str | None) -> Iterator[None]:
    """Log lines written inside the block carry ``cid`` (nothing changes for None)."""
    if cid is None:
        yield
        return
    token = correlation_id.set(cid)
    try:
        yield
    finally:
        correlation_id.reset(token)


def wire_correlation_id(payload: Any) -> str | None:
    """The ``correlation_id`` a peer put in a payload, if it is a well-formed one
    (anything else is not trusted into the logs)."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("correlation_id")
    if isinstance(value, str) and len(value) <= 120 and parse_correlation_id(value):
        return value
    return None


class CorrelationFilter(logging.Filter):
    """Puts the current request's correlation id on every record logged while handling it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None)
        if cid:
            entry["correlation_id"] = cid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: time, level, logger, message, and ``[correlation id]`` if any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        cid = getattr(record, "correlation_id", None)
        return f"{line} [{cid}]" if cid else line


def setup_logging(
    level: str = "INFO", *, stream: Any = None, json_format: bool | None = None
) -> None:
    stream = stream or sys.stderr
    if json_format is None:
        json_format = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
