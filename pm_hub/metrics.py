"""Prometheus metrics for ``GET /metrics`` (one registry per hub).

Counters and histograms are updated where things happen; gauges that describe
the hub's current state (connections, jobs by state, printers by status, agent
link quality) are read at scrape time by ``pm_hub.state_gauges``, registered here by
the wiring, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15)


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_in = PromCounter(
            "pm_events_in_total",
            "Socket.IO events received, by namespace and event",
            ["namespace", "event"],
            registry=self.registry,
        )
        self.events_out = PromCounter(
            "pm_events_out_total",
            "Socket.IO events the hub sent (broadcasts, jobs, requests to agents), "
            "by namespace and event",
            ["namespace", "event"],
            registry=self.registry,
        )
        self.errors = PromCounter(
            "pm_error_acks_total",
            "Requests answered with an error, by code",
            ["code"],
            registry=self.registry,
        )
        self.correlation_rtt = Histogram(
            "pm_correlation_roundtrip_seconds",
            "Hub request to agent answer, by kind (test, job delivery, job:cancel, ...)",
            ["kind"],
            buckets=FAST,
            registry=self.registry,
        )
        self.print_duration = Histogram(
            "pm_print_duration_seconds",
            "From printing to completed, per job",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.jobs_finished = PromCounter(
            "pm_jobs_finished_total",
            "Jobs that reached a final status, by status",
            ["status"],
            registry=self.registry,
        )
        self.sqlite_write = Histogram(
            "pm_sqlite_write_seconds",
            "Duration of one SQLite write transaction (a batch of writes)",
            buckets=FAST,
            registry=self.registry,
        )
        # Labelled children, looked up once (these are on the per-job path).
        self._out: dict[tuple[str, str], Any] = {}
        self._roundtrip: dict[str, Any] = {}

    def count_out(self, namespace: str, event: str) -> None:
        """One event sent by the hub."""
        child = self._out.get((namespace, event))
        if child is None:
            child = self._out[(namespace, event)] = self.events_out.labels(namespace, event)
        child.inc()

    def observe_roundtrip(self, kind: str, seconds: float) -> None:
        """From the hub sending a request to an agent to that agent's answer."""
        child = self._roundtrip.get(kind)
        if child is None:
            child = self._roundtrip[kind] = self.correlation_rtt.labels(kind)
        child.observe(seconds)

    def count_answer(self, namespace: str) -> Callable[[str, dict[str, Any]], None]:
        """A guarded-handler hook that counts events in and error answers."""
        events_in, errors = self.events_in, self.errors

        def on_answer(event: str, ack: dict[str, Any]) -> None:
            events_in.labels(namespace, event).inc()
            if not ack.get("ok", True):
                errors.labels(str(ack.get("error", {}).get("code"))).inc()

        return on_answer

    def render(self) -> bytes:
        return generate_latest(self.registry)
