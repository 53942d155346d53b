"""Which rows show and in what order: printer filters and sorts, job queries."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pm_core.protocol import ACTIVE_JOB_STATUSES, JOB_STATUSES, PROBLEM_PRINTER_STATUSES
from pm_core.protocol.records import JobRecord, PrinterRecord
from pm_tui.data.state import FleetState

#: Lower sorts first: problems at the top.
STATUS_ORDER = {
    "error": 0,
    "paper_out": 1,
    "cover_open": 2,
    "offline": 3,
    "paper_low": 4,
    "unknown": 5,
    "online": 6,
}

# -- printers -------------------------------------------------------------------------


def printer_haystack(printer: PrinterRecord, state: FleetState) -> str:
    status = str(printer.get("status") or "")
    words = [
        str(printer.get("name") or ""),
        str(printer.get("station") or ""),
        str(printer.get("address") or ""),
        str(printer.get("model") or ""),
        status,
        status.replace("_", " "),
        f"#{printer.get('id')}",
    ]
    if state.multi_branch:
        words.append(state.branch_name(printer.get("branch_id")))
    if status in PROBLEM_PRINTER_STATUSES:
        words.append("problem")
    if printer.get("paused"):
        words.append("paused")
    flags = printer.get("flags") or {}
    if isinstance(flags, dict):
        words.extend(k.replace("_", " ") for k, v in flags.items() if v)
    return " ".join(words).lower()


def printer_matches(printer: PrinterRecord, text: str, state: FleetState) -> bool:
    """Every word of ``text`` occurs somewhere in the printer's description."""
    words = text.lower().split()
    if not words:
        return True
    haystack = printer_haystack(printer, state)
    return all(word in haystack for word in words)


PRINTER_SORTS: dict[str, Callable[[PrinterRecord], Any]] = {
    "problems": lambda p: (STATUS_ORDER.get(p.get("status", ""), 9), str(p.get("name")).lower()),
    "name": lambda p: (str(p.get("name")).lower(), p.get("id", 0)),
    "station": lambda p: (
        str(p.get("station") or "~"),
        p.get("station_priority") or 0,
        str(p.get("name")).lower(),
    ),
    "seen": lambda p: (p.get("last_seen") or 0, str(p.get("name")).lower()),
    "queue": lambda p: (-(p.get("queue") or 0), str(p.get("name")).lower()),
}
SORT_NAMES = tuple(PRINTER_SORTS)


def next_sort(current: str) -> str:
    index = SORT_NAMES.index(current) if current in SORT_NAMES else -1
    return SORT_NAMES[(index + 1) % len(SORT_NAMES)]


# -- jobs ----------------------------------------------------------------------------------

#: The presets ``s`` cycles through on the jobs screen.
JOB_STATUS_PRESETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all", ()),
    ("active", tuple(s for s in JOB_STATUSES if s in ACTIVE_JOB_STATUSES)),
    ("failed", ("failed", "expired")),
    ("completed", ("completed",)),
    ("cancelled", ("cancelled",)),
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class QueryError(ValueError):
    pass


def parse_time(value: str, now: float, struct: Callable[[float], time.struct_time]) -> float:
    """``30m``/``2h``/``1d`` ago, ``10:30`` today (local), or a Unix timestamp."""
    value = value.strip().lower()
    match = _DURATION.match(value)
    if match:
        amount = float(match.group(1))
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return now - amount * unit
    match = _CLOCK.match(value)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise QueryError(f"{value} is not a time of day")
        today = struct(now)
        seconds_today = today.tm_hour * 3600 + today.tm_min * 60 + today.tm_sec
        return now - seconds_today + hour * 3600 + minute * 60
    try:
        return float(value)
    except ValueError:
        raise QueryError(f"{value!r}: use 30m, 2h, 1d or HH:MM") from None


@dataclass
class JobQuery:
    """A jobs filter typed after ``/``: ``status:failed printer:Kitchen-1 since:1h burger``."""

    statuses: tuple[str, ...] = ()
    printer: str | None = None
    station: str | None = None
    since: float | None = None
    until: float | None = None
    words: list[str] = field(default_factory=list)
    text: str = ""

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        now: float | None = None,
        struct: Callable[[float], time.struct_time] = time.localtime,
    ) -> JobQuery:
        query = cls(text=text.strip())
        clock = time.time() if now is None else now
        for token in text.split():
            key, sep, value = token.partition(":")
            key = key.lower()
            if not sep or key not in ("status", "printer", "station", "since", "until"):
                query.words.append(token.lower())
                continue
            if not value:
                raise QueryError(f"{key}: needs a value")
            if key == "status":
                statuses: list[str] = []
                for part in value.lower().split(","):
                    preset = dict(JOB_STATUS_PRESETS).get(part)
                    if preset is not None:
                        statuses.extend(preset)
                    elif part in JOB_STATUSES:
                        statuses.append(part)
                    else:
                        raise QueryError(
                            f"status {part!r}: use {', '.join(JOB_STATUSES)} or active/failed"
                        )
                query.statuses = tuple(dict.fromkeys(statuses))
            elif key == "printer":
                query.printer = value
            elif key == "station":
                query.station = value.lower()
            elif key == "since":
                query.since = parse_time(value, clock, struct)
            else:
                query.until = parse_time(value, clock, struct)
        return query

    def with_status(self, word: str | None) -> str:
        """This query's text with its ``status:`` replaced by ``word`` (None: any status)."""
        parts = [t for t in self.text.split() if not t.lower().startswith("status:")]
        if word:
            parts.insert(0, f"status:{word}")
        return " ".join(parts)

    def printer_id(self, state: FleetState) -> int | None:
        """The printer the query names (by ``#id``, id or name), if any."""
        if self.printer is None:
            return None
        wanted = self.printer.lstrip("#")
        if wanted.isdigit():
            return int(wanted)
        for printer in state.printers.values():
            if str(printer.get("name", "")).lower() == wanted.lower():
                return int(printer["id"])
        for printer in state.printers.values():
            if wanted.lower() in str(printer.get("name", "")).lower():
                return int(printer["id"])
        raise QueryError(f"no printer called {self.printer!r}")

    def payload(self, state: FleetState, *, limit: int = 200) -> dict[str, Any]:
        """The ``jobs:list`` request for this query."""
        payload: dict[str, Any] = {"limit": limit}
        if self.statuses:
            payload["status"] = list(self.statuses)
        printer_id = self.printer_id(state)
        if printer_id is not None:
            payload["printer_id"] = printer_id
        if self.station:
            payload["station"] = self.station
        if self.since is not None:
            payload["since"] = self.since
        if self.until is not None:
            payload["until"] = self.until
        return payload

    def matches(self, job: JobRecord, state: FleetState) -> bool:
        if self.statuses and job.get("status") not in self.statuses:
            return False
        if self.printer is not None:
            try:
                if job.get("printer_id") != self.printer_id(state):
                    return False
            except QueryError:
                return False
        if self.station and (job.get("station") or "") != self.station:
            return False
        created = job.get("created_at") or 0
        if self.since is not None and created < self.since:
            return False
        if self.until is not None and created > self.until:
            return False
        if self.words:
            error = job.get("error")
            haystack = " ".join(
                [
                    f"#{job.get('id')}",
                    str(job.get("status")),
                    state.printer_name(job.get("printer_id")),
                    str(job.get("station") or ""),
                    str(job.get("submitted_by") or ""),
                    str(job.get("idempotency_key") or ""),
                    str(error.get("message") or "") if isinstance(error, dict) else "",
                ]
            ).lower()
            if not all(word in haystack for word in self.words):
                return False
        return True

    def describe(self) -> str:
        return self.text or "all jobs"
