"""Agent link health at the hub: samples from ``health:ping``, the 5-minute
``desktop:health:report``, disconnect timing, threshold alerts, downsampling,
and the ``health:summary`` a dashboard draws."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pm_core.database import Database
from pm_core.logs import uncorrelated
from pm_core.protocol import ok_ack
from pm_core.protocol.validation import get_bool, get_float, invalid, require_object
from pm_core.sql import DatabaseUnavailable, Session
from pm_hub.alerts import AlertBook
from pm_hub.config import HubSettings
from pm_hub.live_state import AgentLink, LiveState
from pm_hub.store import health as health_store
from pm_hub.store import tenants
from pm_hub.store import uptime as uptime_store

log = logging.getLogger(__name__)

#: Pings averaged for the latency alert.
LATENCY_WINDOW = 5
#: Pings the dashboard's figures (last, average, 95th percentile) are taken from: an
#: hour at the agent's default ping interval of 15 s. Average and percentile come from
#: the same samples, so the percentile is never under the average by construction.
FIGURES_WINDOW = 240


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile (the smallest sample with at least ``fraction`` of
    the samples at or under it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class AgentHealth:
    agent_id: int
    company_id: int
    branch_id: int
    name: str = ""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    #: The latencies the summary's figures come from (the last ``FIGURES_WINDOW``).
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=FIGURES_WINDOW))
    packet_loss: float = 0.0
    last_ping_at: float | None = None
    report: dict[str, Any] | None = None
    report_at: float | None = None
    connects: int = 0
    connected_at: float | None = None
    disconnected_at: float | None = None
    #: Its last disconnect was a planned stop (``agent:stopping``).
    stopped_on_purpose: bool = False

    @property
    def latency_avg(self) -> float | None:
        return round(statistics.fmean(self.latencies), 2) if self.latencies else None


class HealthMonitor:
    def __init__(
        self, settings: HubSettings, *, db: Database, state: LiveState, alerts: AlertBook
    ) -> None:
        self.settings = settings
        self.db = db
        self.state = state
        self.alerts = alerts
        self.agents: dict[int, AgentHealth] = {}
        self._samples: list[tuple[int, float, float | None, float]] = []
        self._disconnect_timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[Any]] = set()
        #: Agents retired while the hub runs: their absence raises nothing.
        self.retired: set[int] = set()

    def start(self, *, flush_every: float = 5.0, downsample_every: float = 300.0) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(flush_every)),
            asyncio.create_task(self._downsample_loop(downsample_every)),
        ]

    async def stop(self) -> None:
        for timer in self._disconnect_timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()

    def _spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _health(self, link: AgentLink) -> AgentHealth:
        health = self.agents.get(link.agent_id)
        if health is None:
            health = AgentHealth(link.agent_id, link.company_id, link.branch_id)
            self.agents[link.agent_id] = health
        return health

    # -- connection events ---------------------------------------------------------------

    async def agent_connected(self, link: AgentLink, name: str | None) -> None:
        self.retired.discard(link.agent_id)  # a retired machine licensed again
        health = self._health(link)
        health.name = name or health.name or f"agent {link.agent_id}"
        health.connects += 1
        health.connected_at = time.time()
        timer = self._disconnect_timers.pop(link.agent_id, None)
        if timer is not None:
            timer.cancel()
        await self.alerts.clear("agent_disconnected", f"agent:{link.agent_id}")

    def agent_disconnected(self, link: AgentLink, *, planned: bool = False) -> None:
        """``planned``: the agent stopped on purpose. Its printers raise nothing now;
        one that stays away past ``agent_disconnect_alert_s`` alerts all the same."""
        health = self._health(link)
        health.disconnected_at = time.time()
        health.connected_at = None
        health.stopped_on_purpose = planned
        self._watch_absence(health)

    async def watch_absent_agents(self) -> int:
        """At hub start: every agent the hub knows (license not revoked) is absent until
        it connects. One that is still gone after ``agent_disconnect_alert_s`` gets the
        same alerts as one seen leaving. Returns how many are watched."""
        rows = await self.db.read(tenants.agents_to_watch)
        for row in rows:
            if row["id"] in self.state.agents or row["id"] in self._disconnect_timers:
                continue
            health = self.agents.get(row["id"])
            if health is None:
                health = AgentHealth(row["id"], row["company_id"], row["branch_id"])
                self.agents[row["id"]] = health
            health.name = health.name or row["name"] or f"agent {row['id']}"
            health.disconnected_at = row["last_disconnect"] or row["last_seen"]
            self._watch_absence(health)
        return len(rows)

    def forget(self, agent_id: int) -> None:
        """A retired agent: no absence watch, no alerts, no figures."""
        self.retired.add(agent_id)
        timer = self._disconnect_timers.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        self.agents.pop(agent_id, None)

    def _watch_absence(self, health: AgentHealth) -> None:
        if health.agent_id in self.retired:
            return
        delay = self.settings.agent_disconnect_alert_s
        loop = asyncio.get_running_loop()
        old = self._disconnect_timers.pop(health.agent_id, None)
        if old is not None:
            old.cancel()
        self._disconnect_timers[health.agent_id] = loop.call_later(
            delay, lambda: self._spawn(self._still_gone(health, delay)), context=uncorrelated()
        )

    async def _still_gone(self, health: AgentHealth, delay: float) -> None:
        self._disconnect_timers.pop(health.agent_id, None)
        if health.agent_id in self.state.agents:
            return
        subject = f"agent:{health.agent_id}"
        if not self.alerts.is_open("agent_disconnected", subject):
            why = (
                " (it stopped on purpose and has not come back)"
                if (health.stopped_on_purpose)
                else ""
            )
            await self.alerts.raise_alert(
                "agent_disconnected",
                subject,
                f"agent {health.name or health.agent_id} has been disconnected for more than "
                f"{delay:g} s{why}; its printers cannot be reached",
                company_id=health.company_id,
                branch_id=health.branch_id,
                details={"agent_id": health.agent_id, "since": health.disconnected_at},
            )
        # Its printers: already alerted when the agent was seen leaving (nothing new
        # then); after a hub restart this is their first printer_offline alert.
        for printer in list(self.state.printers.values()):
            if printer["agent_id"] == health.agent_id and printer["status"] == "offline":
                await self.alerts.printer_status(printer, overdue=True)

    # -- pings and reports -------------------------------------------------------------------

    async def on_ping(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        """A ``health:ping``: it reports the previous ping's outcome, its latency or
        ``last_lost``. A lost ping is stored as a sample without latency; a ping with
        no previous outcome (the agent's first) stores nothing but its loss figure."""
        data = require_object(payload)
        latency = get_float(data, "last_latency_ms", minimum=0, maximum=3_600_000)
        lost = get_bool(data, "last_lost", default=False)
        loss = get_float(data, "packet_loss", minimum=0, maximum=1) or 0.0
        if lost and latency is not None:
            raise invalid("a lost ping has no latency: give last_latency_ms or last_lost")
        health = self._health(link)
        now = time.time()
        health.last_ping_at = now
        health.packet_loss = loss
        if latency is not None:
            health.latencies.append(latency)
            health.recent.append(latency)
        if latency is not None or lost:
            self._samples.append((link.agent_id, now, latency, loss))
        await self._check_thresholds(link, health)
        return ok_ack(t=data.get("t"), server_time=now)

    async def on_report(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        data = require_object(payload)
        if len(data) > 50:
            raise ValueError("too many fields")
        report = {
            k: v
            for k, v in data.items()
            if isinstance(k, str) and (isinstance(v, int | float | str | bool) or v is None)
        }
        health = self._health(link)
        health.report = report
        health.report_at = time.time()
        log.info("health report from agent %s: %s", link.agent_id, report)
        # Kept (write-behind, bounded by health_report_retention_s): the latest one of
        # each agent is shown again after a restart.
        self.db.append_soon(
            "health report",
            health_store.insert_reports,
            (link.agent_id, health.report_at, json.dumps(report, sort_keys=True)),
        )
        return ok_ack()

    async def load_reports(self) -> None:
        """At start: each agent's latest health report, as it was before the restart."""
        for row in await self.db.read(health_store.latest_reports):
            health = self.agents.get(row["agent_id"])
            if health is None:
                health = AgentHealth(row["agent_id"], row["company_id"], row["branch_id"])
                self.agents[row["agent_id"]] = health
            try:
                report = json.loads(row["report"])
            except ValueError:
                continue
            health.report = report if isinstance(report, dict) else None
            health.report_at = row["at"]

    async def _check_thresholds(self, link: AgentLink, health: AgentHealth) -> None:
        settings = self.settings
        subject = f"agent:{link.agent_id}"
        alerts = self.alerts
        avg = health.latency_avg
        if avg is not None and len(health.latencies) >= 3 and avg > settings.latency_alert_ms:
            await alerts.raise_alert(
                "latency_high",
                subject,
                f"agent {health.name or link.agent_id}: latency {avg:.0f} ms "
                f"(limit {settings.latency_alert_ms:g} ms)",
                company_id=link.company_id,
                branch_id=link.branch_id,
                details={"agent_id": link.agent_id, "latency_ms": avg},
            )
        elif alerts.is_open("latency_high", subject):
            await alerts.clear("latency_high", subject)
        if health.packet_loss > settings.packet_loss_alert:
            await alerts.raise_alert(
                "packet_loss_high",
                subject,
                f"agent {health.name or link.agent_id}: {health.packet_loss:.0%} of pings lost "
                f"or late (limit {settings.packet_loss_alert:.0%})",
                company_id=link.company_id,
                branch_id=link.branch_id,
                details={"agent_id": link.agent_id, "packet_loss": health.packet_loss},
            )
        elif alerts.is_open("packet_loss_high", subject):
            await alerts.clear("packet_loss_high", subject)

    # -- storage -------------------------------------------------------------------------------

    async def flush(self) -> None:
        samples, self._samples = self._samples, []
        if samples:
            await self.db.write(lambda d: health_store.insert_samples(d, samples))

    async def _flush_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush()
            except DatabaseUnavailable as exc:
                log.warning("storing health samples failed: %s", exc.message)
            except Exception:
                log.exception("storing health samples failed")

    async def downsample(self, now: float | None = None) -> dict[str, int]:
        settings = self.settings
        when = time.time() if now is None else now

        def upkeep(d: Session) -> dict[str, int]:
            done = health_store.downsample(
                d,
                now=when,
                raw_window=settings.health_raw_window_s,
                minute_window=settings.health_minute_window_s,
                retention=settings.health_retention_s,
            )
            # The printers' status history is bounded the same way.
            done["printer_events"] = uptime_store.prune_printer_events(
                d, when - settings.printer_history_retention_s
            )
            return done

        return await self.db.write(upkeep)

    async def _downsample_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.downsample()
            except DatabaseUnavailable as exc:
                log.warning("downsampling health samples failed: %s", exc.message)
            except Exception:
                log.exception("downsampling health samples failed")

    # -- summary -------------------------------------------------------------------------------

    async def summary(
        self,
        agents: list[dict[str, Any]],
        open_alerts: list[dict[str, Any]],
        *,
        held: Mapping[int, int] | None = None,
    ) -> dict[str, Any]:
        """``held``: per agent, the unfinished jobs the hub knows its spool holds (the
        live ``spool_depth``; without it, what the agent's last report said)."""
        await self.flush()
        now = time.time()
        since = now - 3600
        out = []
        for agent in agents:
            agent_id = agent["id"]
            health = self.agents.get(agent_id)
            series = await self.db.read(_series_reader(agent_id, since))
            report = (health.report if health else None) or {}
            lat = list(health.recent) if health else []
            p95 = percentile(lat, 0.95)
            out.append(
                {
                    "agent_id": agent_id,
                    "name": agent["name"],
                    "connected": agent["connected"],
                    # The hub's own samples, all three from the same window; until the
                    # first arrives (a ping reports the one before it), the agent's report.
                    "latency_ms": {
                        "last": round(lat[-1], 2) if lat else report.get("latency_last_ms"),
                        "avg": round(statistics.fmean(lat), 2)
                        if lat
                        else report.get("latency_avg_ms"),
                        "p95": round(p95, 2) if p95 is not None else report.get("latency_p95_ms"),
                    },
                    "packet_loss": health.packet_loss if health else None,
                    "uptime_s": _uptime_now(health, report, now),
                    "connected_since": health.connected_at if health else None,
                    "reconnects": max(0, health.connects - 1) if health else 0,
                    "spool_depth": held.get(agent_id, 0)
                    if held is not None
                    else report.get("spool_depth"),
                    "last_report_at": health.report_at if health else None,
                    "series": series,
                }
            )
        by_severity = {"critical": 0, "warning": 0, "info": 0}
        for alert in open_alerts:
            by_severity[alert["severity"]] = by_severity.get(alert["severity"], 0) + 1
        return ok_ack(agents=out, alerts=by_severity, generated_at=now)


def _uptime_now(health: AgentHealth | None, report: dict[str, Any], now: float) -> float | None:
    """The agent's uptime now: its last report's figure plus the time since that report
    (while it stays connected); connected, with no report yet, the time connected."""
    if health is None or health.connected_at is None:
        return None
    reported = report.get("uptime_s")
    at = health.report_at
    if isinstance(reported, int | float) and at is not None and at >= health.connected_at:
        return round(reported + (now - at), 1)
    return round(now - health.connected_at, 1)


def _series_reader(agent_id: int, since: float) -> Any:
    def read(db: Any) -> list[dict[str, Any]]:
        return health_store.series(db, agent_id, since=since)

    return read
