"""How good the agent's link to the hub is, from ``health:ping`` round trips.

Every ping is either answered in time (its latency counts) or not (a missed or
late ack counts as lost). Latency and loss are over a sliding window of the last
``window`` pings.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class LinkHealth:
    window: int = 40
    latencies: deque[float] = field(default_factory=deque)
    outcomes: deque[bool] = field(default_factory=deque)
    reconnects: int = 0
    connected_since: float | None = None
    ever_connected: bool = False
    started: float = field(default_factory=time.time)
    pings_sent: int = 0
    pings_lost: int = 0

    def link_up(self) -> None:
        """The agent (re)connected to the hub: a reconnect, unless it is the first."""
        if self.ever_connected:
            self.reconnects += 1
        self.ever_connected = True
        self.connected_since = time.time()

    def link_down(self) -> None:
        self.connected_since = None

    def record(self, latency_ms: float | None) -> None:
        """One ping's outcome: its latency, or None when the ack was missed or late."""
        self.pings_sent += 1
        self.outcomes.append(latency_ms is not None)
        if latency_ms is None:
            self.pings_lost += 1
        else:
            self.latencies.append(latency_ms)
        while len(self.outcomes) > self.window:
            self.outcomes.popleft()
        while len(self.latencies) > self.window:
            self.latencies.popleft()

    @property
    def last_latency_ms(self) -> float | None:
        """The latency of the most recent ping that was answered in time."""
        return self.latencies[-1] if self.latencies else None

    def previous_outcome(self) -> dict[str, Any]:
        """What the next ``health:ping`` says about the one before it: its latency, or
        ``last_lost`` when its ack was missed or late (never an older ping's latency)."""
        if not self.outcomes:
            return {"last_latency_ms": None, "last_lost": False}
        if not self.outcomes[-1]:
            return {"last_latency_ms": None, "last_lost": True}
        return {"last_latency_ms": self.latencies[-1], "last_lost": False}

    @property
    def packet_loss(self) -> float:
        sent = len(self.outcomes)
        return round(1 - sum(self.outcomes) / sent, 4) if sent else 0.0

    def summary(self) -> dict[str, Any]:
        lat = list(self.latencies)
        p95 = percentile(lat, 0.95)
        return {
            "latency_last_ms": round(lat[-1], 2) if lat else None,
            "latency_avg_ms": round(statistics.fmean(lat), 2) if lat else None,
            "latency_p95_ms": round(p95, 2) if p95 is not None else None,
            "packet_loss": self.packet_loss,
            "pings_sent": self.pings_sent,
            "pings_lost": self.pings_lost,
            "reconnects": self.reconnects,
            "uptime_s": round(time.time() - self.started, 1),
            "connected_for_s": round(time.time() - self.connected_since, 1)
            if self.connected_since
            else None,
        }
