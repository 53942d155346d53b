"""How the agent's link to the hub is doing, told to the hub: a ``health:ping`` every
``ping_interval`` (the hub records its latency, or its loss) and a
``desktop:health:report`` every ``report_interval`` (latency figures, reconnects,
spool depth, printers ready)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pm_agent.hub_connection import HubConnection
from pm_agent.link_health import LinkHealth
from pm_agent.printer_worker import PrinterWorker
from pm_agent.spool import JobSpool
from pm_core import __version__
from pm_core.protocol import AgentEvent

log = logging.getLogger(__name__)


class HubHealth:
    def __init__(
        self,
        *,
        connection: HubConnection,
        health: LinkHealth,
        spool: JobSpool,
        workers: Callable[[], list[PrinterWorker]],
        device_id: str,
        ping_interval: float,
        ping_timeout: float,
        report_interval: float,
    ) -> None:
        self.connection = connection
        self.health = health
        self.spool = spool
        self.workers = workers
        self.device_id = device_id
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.report_interval = report_interval

    async def ping(self) -> float | None:
        """One ``health:ping``; it carries the previous ping's outcome (its latency, or
        ``last_lost``) so the hub keeps one sample per ping. An ack later than
        ``ping_timeout`` counts as lost."""
        started = time.perf_counter()
        payload = {
            "t": time.time(),
            **self.health.previous_outcome(),
            "packet_loss": self.health.packet_loss,
        }
        try:
            await self.connection.call(AgentEvent.HEALTH_PING, payload, timeout=self.ping_timeout)
        except Exception:
            self.health.record(None)
            return None
        latency = (time.perf_counter() - started) * 1000
        self.health.record(latency)
        return latency

    async def ping_loop(self) -> None:
        # A ping goes out right after each (re)connect, so a dashboard has a figure at
        # once, then one every ping_interval.
        while True:
            if self.connection.connected:
                await self.ping()
                await asyncio.sleep(self.ping_interval)
            else:
                await asyncio.sleep(min(self.ping_interval, 0.5))

    async def report(self) -> dict[str, Any]:
        """What ``desktop:health:report`` carries."""
        depths = await self.spool.pending_counts()
        workers = self.workers()
        report = self.health.summary()
        report.update(
            spool_depth=sum(depths.values()),
            printers=len(workers),
            printers_ready=sum(1 for w in workers if w.ready),
            version=__version__,
            device_id=self.device_id,
        )
        return report

    async def report_loop(self) -> None:
        # The first report follows soon after start (spool depth, uptime), then one per interval.
        delay = min(self.report_interval, 5.0)
        while True:
            await asyncio.sleep(delay)
            delay = self.report_interval
            if not self.connection.connected:
                continue
            try:
                report = await self.report()
                await self.connection.call(AgentEvent.HEALTH_REPORT, report, timeout=10)
            except Exception as exc:
                log.warning("health report not delivered: %s", exc)
