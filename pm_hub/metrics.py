"""Prometheus metrics for ``GET /metrics`` (one registry per hub).

Counters and histograms are updated where things happen; gauges that describe
the hub's current state (connections, jobs by state, printers by status, agent
link quality) are read at scrape time by a collector, so they are never stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from pm_hub.hub import Hub

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15)


class HubMetrics:
    def __init__(self, hub: Hub) -> None:
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
        self.registry.register(_StateCollector(hub))
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

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        yield GaugeMetricFamily(
            "pm_agents_connected", "Agents connected now", value=len(hub.agents)
        )
        yield GaugeMetricFamily(
            "pm_operators_connected", "Operators connected on /ops now", value=len(hub.operators)
        )
        pending = GaugeMetricFamily(
            "pm_correlations_pending",
            "Requests sent to agents still waiting for an answer, by kind "
            "(test prints; jobs on their way to an agent's spool)",
            labels=["kind"],
        )
        waiting = hub.registry.pending_by_kind()
        waiting["job"] = hub.dispatcher.in_flight_count()
        waiting.setdefault("test", 0)
        for kind, count in sorted(waiting.items()):
            pending.add_metric([kind], count)
        yield pending
        jobs = GaugeMetricFamily("pm_jobs_active", "Unfinished jobs by status", labels=["status"])
        counts = Counter(job.status for job in hub.dispatcher.active.values())
        for status in ("queued", "dispatched", "printing"):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        printers = GaugeMetricFamily("pm_printers", "Printers by status", labels=["status"])
        by_status = Counter(p["status"] for p in hub.printers.values())
        for status, count in sorted(by_status.items()):
            printers.add_metric([status], count)
        yield printers
        latency = GaugeMetricFamily(
            "pm_agent_latency_ms", "Agent ping latency (average of recent pings)", labels=["agent"]
        )
        loss = GaugeMetricFamily(
            "pm_agent_packet_loss_ratio",
            "Agent lost or late pings (sliding window)",
            labels=["agent"],
        )
        for agent_id, health in hub.health.agents.items():
            if health.last_ping_at is None:
                continue  # never pinged (since this hub started): nothing to say
            if health.latency_avg is not None:
                latency.add_metric([str(agent_id)], health.latency_avg)
            loss.add_metric([str(agent_id)], health.packet_loss)
        yield latency
        yield loss
