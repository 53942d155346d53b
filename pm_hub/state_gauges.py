"""The gauges of ``GET /metrics`` that describe the hub right now (connections, jobs
by state, printers by status, agent link quality), read at scrape time from the live
state so they are never stale.

Scrapes run on the event loop (``pm_hub.http_api``): these dicts are only ever
touched there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pm_core.protocol import ACTIVE_JOB_STATUSES, JOB_STATUSES
from pm_hub.active_jobs import ActiveJobs
from pm_hub.correlation import CorrelationRegistry
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.live_state import LiveState


class StateGauges(Collector):
    def __init__(
        self,
        *,
        state: LiveState,
        registry: CorrelationRegistry,
        jobs: ActiveJobs,
        dispatcher: JobDispatcher,
        health: HealthMonitor,
    ) -> None:
        self.state = state
        self.registry = registry
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.health = health

    def collect(self) -> Iterator[Metric]:
        state = self.state
        yield GaugeMetricFamily(
            "pm_agents_connected", "Agents connected now", value=len(state.agents)
        )
        yield GaugeMetricFamily(
            "pm_operators_connected", "Operators connected on /ops now", value=len(state.operators)
        )
        pending = GaugeMetricFamily(
            "pm_correlations_pending",
            "Requests sent to agents still waiting for an answer, by kind "
            "(test prints; jobs on their way to an agent's spool)",
            labels=["kind"],
        )
        waiting = self.registry.pending_by_kind()
        waiting["job"] = self.dispatcher.in_flight_count()
        waiting.setdefault("test", 0)
        for kind, count in sorted(waiting.items()):
            pending.add_metric([kind], count)
        yield pending
        jobs = GaugeMetricFamily("pm_jobs_active", "Unfinished jobs by status", labels=["status"])
        counts = Counter(job.status for job in self.jobs.active.values())
        for status in JOB_STATUSES:
            if status in ACTIVE_JOB_STATUSES:
                jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        printers = GaugeMetricFamily("pm_printers", "Printers by status", labels=["status"])
        by_status = Counter(p["status"] for p in state.printers.values())
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
        for agent_id, health in self.health.agents.items():
            if health.last_ping_at is None:
                continue  # never pinged (since this hub started): nothing to say
            if health.latency_avg is not None:
                latency.add_metric([str(agent_id)], health.latency_avg)
            loss.add_metric([str(agent_id)], health.packet_loss)
        yield latency
        yield loss
