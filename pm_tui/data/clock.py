"""Wall-clock time for the dashboard, fixed in snapshot tests and screenshots."""

from __future__ import annotations

import time


class Clock:
    """The real clock, shown in local time."""

    def now(self) -> float:
        return time.time()

    def struct(self, timestamp: float) -> time.struct_time:
        return time.localtime(timestamp)

    def hms(self, timestamp: float | None) -> str:
        """``10:42:07`` (or ``--:--:--`` when unknown)."""
        if not timestamp:
            return "--:--:--"
        return time.strftime("%H:%M:%S", self.struct(timestamp))

    def short(self, timestamp: float | None) -> str:
        """``10:42:07`` today, ``24 Nov 10:42`` on another day."""
        if not timestamp:
            return "-"
        when = self.struct(timestamp)
        today = self.struct(self.now())
        if (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday):
            return time.strftime("%H:%M:%S", when)
        return time.strftime("%d %b %H:%M", when)


class FixedClock(Clock):
    """A clock that always says the same time, in UTC (deterministic screenshots)."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def struct(self, timestamp: float) -> time.struct_time:
        return time.gmtime(timestamp)
