"""Logging: readable lines on a terminal; plain lines with a priority and no time under
systemd (journald stamps each line itself, ``JOURNAL_STREAM``); one JSON object per
line otherwise (docker, a file). ``PM_LOG_FORMAT=text|json|journal`` chooses."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pm_core.protocol import parse_correlation_id

T = TypeVar("T")

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


def uncorrelated() -> contextvars.Context:
    """A copy of the current context without a correlation id, for work that outlives
    the request that started it (a sender loop, a batching timer, a periodic task): a
    task or timer copies the context it was made in, so without this every later line
    of that work would carry the request's id (and show among a job's lines)."""
    context = contextvars.copy_context()
    context.run(correlation_id.set, None)
    return context


def start_background(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """``coro`` as a task that carries no correlation id (see :func:`uncorrelated`)."""
    return asyncio.get_running_loop().create_task(coro, name=name, context=uncorrelated())


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


class JournalFormatter(logging.Formatter):
    """For journald: ``<priority>logger: message [correlation id]``, no time (journald
    records it, and reads the ``<N>`` prefix as the line's priority)."""

    PRIORITY = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        logging.INFO: 6,
        logging.DEBUG: 7,
    }

    def format(self, record: logging.LogRecord) -> str:
        priority = self.PRIORITY.get(record.levelno, 6)
        line = f"<{priority}>{record.name}: {record.getMessage()}"
        cid = getattr(record, "correlation_id", None)
        if cid:
            line += f" [{cid}]"
        if record.exc_info:
            # One journal entry per line: each carries the priority.
            trace = self.formatException(record.exc_info).splitlines()
            line += "".join(f"\n<{priority}>  {part}" for part in trace)
        return line


def under_journald(stream: Any) -> bool:
    """True when ``stream`` is the journal stream systemd gave this service
    (``JOURNAL_STREAM`` names its device and inode)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def log_format(stream: Any) -> str:
    """``text``, ``json`` or ``journal`` for ``stream`` (``PM_LOG_FORMAT`` wins)."""
    chosen = os.environ.get("PM_LOG_FORMAT", "").strip().lower()
    if chosen in ("text", "json", "journal"):
        return chosen
    if under_journald(stream):
        return "journal"
    return "text" if hasattr(stream, "isatty") and stream.isatty() else "json"


def setup_logging(
    level: str = "INFO", *, stream: Any = None, json_format: bool | None = None
) -> None:
    stream = stream or sys.stderr
    chosen = {None: log_format(stream), True: "json", False: "text"}[json_format]
    formatter: logging.Formatter = {
        "json": JsonFormatter,
        "text": TextFormatter,
        "journal": JournalFormatter,
    }[chosen]()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CorrelationFilter())
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
