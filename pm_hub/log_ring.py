"""The hub's recent log lines, in memory, for the dashboard's Logs tab.

:class:`LogRing` is a ``logging.Handler`` on the root logger while the hub runs: it
keeps the last ``capacity`` lines (level, logger, message, time, correlation id and
the printer and job they are about where known) and nothing more; older lines fall
off. ``logs:list`` on ``/ops`` reads it; ``logs:follow`` makes the hub push the new
lines that match a filter to that dashboard as ``logs:update``, batched every
``push_interval`` seconds, at most ``push_limit`` lines a batch (the rest are counted
as ``dropped``). Nothing is queued per follower: what it has not been sent yet is
read from the ring, so a dashboard that never reads costs no memory here (and the
transport drops it once its backlog passes the client buffer bound).

A line's job comes from its correlation id (``job_{ms}_{id}_{hash}``, the id every
log line about a job carries), or an ``extra={"job_id": ...}``; its printer from
``extra={"printer_id": ...}`` or a ``printer N`` in the message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pm_core.logs import correlation_id, start_background
from pm_core.protocol import parse_correlation_id

#: Lines kept by default.
DEFAULT_CAPACITY = 2000
#: A message longer than this is cut (a log line is for reading, not for payloads).
MAX_MESSAGE = 1000
#: Lines one ``logs:update`` carries at most; newer lines win.
PUSH_LIMIT = 200
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_PRINTER = re.compile(r"\bprinter[ #:]?(\d{1,9})\b", re.IGNORECASE)
_PRINTER_NAME = re.compile(r"\bprinter ([\w.-]{1,64})")

LogLine = dict[str, Any]
Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


def job_of(correlation_id: str | None) -> int | None:
    """The job a ``job_...`` correlation id belongs to."""
    if not correlation_id:
        return None
    parts = parse_correlation_id(correlation_id)
    return parts.counter if parts is not None and parts.kind == "job" else None


@dataclass(frozen=True)
class LogFilter:
    """Which lines a reader wants: at least ``level``, and about this printer or job."""

    level: int = logging.DEBUG
    printer_id: int | None = None
    job_id: int | None = None
    correlation_id: str | None = None

    def matches(self, line: LogLine) -> bool:
        return (
            line["levelno"] >= self.level
            and (self.printer_id is None or line["printer_id"] == self.printer_id)
            and (self.job_id is None or line["job_id"] == self.job_id)
            and (self.correlation_id is None or line["correlation_id"] == self.correlation_id)
        )


def public(line: LogLine) -> dict[str, Any]:
    """A line as the wire carries it (without the numeric level)."""
    return {key: value for key, value in line.items() if key != "levelno"}


class LogRing(logging.Handler):
    """The last ``capacity`` log records, and who follows them."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        *,
        push_interval: float = 0.5,
        push_limit: int = PUSH_LIMIT,
    ) -> None:
        super().__init__()
        if capacity < 1 or push_limit < 1 or push_interval <= 0:
            raise ValueError("capacity, push_limit and push_interval must be positive")
        self.capacity = capacity
        self.push_interval = push_interval
        self.push_limit = push_limit
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._guard = threading.Lock()  # records come from the database thread too
        self._seq = 0
        #: sid -> (filter, last seq sent)
        self._followers: dict[str, tuple[LogFilter, int]] = {}
        self._send: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None
        self._pusher: asyncio.Task[None] | None = None
        self.dropped = 0
        #: A printer's id from its name (``printer Bar is online``), if the hub says.
        self.printer_named: Callable[[str], int | None] | None = None

    # -- the handler -----------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == __name__:
            return  # its own lines would feed themselves
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message} ({type(exc).__name__}: {exc})"
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        cid = getattr(record, "correlation_id", None)
        if not isinstance(cid, str):
            cid = correlation_id.get()  # the request being handled
        job_id = getattr(record, "job_id", None)
        if not isinstance(job_id, int):
            job_id = job_of(cid)
        printer_id = getattr(record, "printer_id", None)
        if not isinstance(printer_id, int):
            printer_id = self._printer_in(message)
        with self._guard:
            self._seq += 1
            self._lines.append(
                {
                    "seq": self._seq,
                    "at": round(record.created, 3),
                    "level": record.levelname.lower(),
                    "levelno": record.levelno,
                    "logger": record.name,
                    "message": message,
                    "correlation_id": cid,
                    "printer_id": printer_id,
                    "job_id": job_id,
                }
            )

    def _printer_in(self, message: str) -> int | None:
        found = _PRINTER.search(message)
        if found:
            return int(found.group(1))
        named = _PRINTER_NAME.search(message)
        if named and self.printer_named is not None:
            try:
                return self.printer_named(named.group(1).rstrip(".:,"))
            except Exception:  # a log line must never fail
                return None
        return None

    # -- reading ---------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        return len(self._lines)

    def lines(self, where: LogFilter, *, after: int = 0, limit: int = 200) -> list[LogLine]:
        """The newest ``limit`` lines after ``after`` that match, oldest first."""
        found: list[LogLine] = []
        with self._guard:  # newest first, only back to ``after``: no copy of the ring
            for line in reversed(self._lines):
                if line["seq"] <= after or len(found) >= limit:
                    break
                if where.matches(line):
                    found.append(line)
        found.reverse()
        return [public(line) for line in found]

    # -- following -------------------------------------------------------------------

    def follow(self, sid: str, where: LogFilter) -> None:
        self._followers[sid] = (where, self._seq)

    def unfollow(self, sid: str) -> None:
        self._followers.pop(sid, None)

    @property
    def followers(self) -> int:
        return len(self._followers)

    async def push_once(self) -> int:
        """Send each follower the new lines it wants; returns how many lines went."""
        if self._send is None or not self._followers:
            return 0
        newest = self._seq
        sent = 0
        for sid, (where, after) in list(self._followers.items()):
            if after >= newest:
                continue
            found = self.lines(where, after=after, limit=self.push_limit + 1)
            dropped = max(0, len(found) - self.push_limit)
            found = found[-self.push_limit :]
            self.dropped += dropped
            if sid in self._followers:
                self._followers[sid] = (where, newest)
            if found or dropped:
                sent += len(found)
                await self._send(sid, {"lines": found, "dropped": dropped, "last_seq": newest})
        return sent

    async def _push_loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval)
            try:
                await self.push_once()
            except Exception:  # a dashboard that went away between two lines
                logging.getLogger(__name__).debug("log push failed", exc_info=True)

    # -- lifecycle -------------------------------------------------------------------

    def install(self, send: Send, logger: logging.Logger | None = None) -> None:
        """Start keeping the lines ``logger`` (the root) handles, and pushing them."""
        self._send = send
        (logger or logging.getLogger()).addHandler(self)
        if self._pusher is None:
            self._pusher = start_background(self._push_loop())

    async def uninstall(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self)
        self._followers.clear()
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
            self._pusher = None


def filter_from(
    level: str | None,
    printer_id: int | None,
    job_id: int | None,
    correlation_id: str | None,
) -> LogFilter:
    return LogFilter(
        level=LEVELS.get(level or "debug", logging.DEBUG),
        printer_id=printer_id,
        job_id=job_id,
        correlation_id=correlation_id,
    )


class PrinterNames:
    """Printer name -> id over the hub's live printers, rebuilt at most every
    ``every`` seconds (a log line must not walk thousands of printers)."""

    def __init__(self, state: Any, every: float = 10.0) -> None:
        self.state = state
        self.every = every
        self._names: dict[str, int] = {}
        self._built = -every

    def lookup(self, name: str) -> int | None:
        now = time.monotonic()
        if now - self._built >= self.every:
            self._built = now
            names: dict[str, int] = {}
            for printer_id, row in list(self.state.printers.items()):
                names.setdefault(str(row.get("name")), printer_id)
            self._names = names
        return self._names.get(name)
