"""The agent: connects to the hub on ``/agent``, registers its printers, takes jobs
into the spool, prints them, and reports back through the spool's outbox.

:class:`Agent` only puts the parts together and runs them:

- :mod:`pm_agent.hub_connection`: the Socket.IO client, connecting with backoff,
  a refused license (:class:`AgentAuthError`), reconnecting after the hub closed;
- :mod:`pm_agent.agent_namespace`: the hub's events, handed to the parts below;
- :mod:`pm_agent.printer_registry`: a worker per printer, ``printer:discovered``,
  the hub's ids, the identity cache, ``printer:status``;
- :mod:`pm_agent.job_intake`: ``print:job``, ``job:cancel``, ``job:release``,
  ``printer:test``, ``printer:configure``;
- :mod:`pm_agent.outbox_sender`: what the agent owes the hub, in order, once;
- :mod:`pm_agent.hub_health`: ``health:ping`` and ``desktop:health:report``;
- :mod:`pm_agent.spool_upkeep`: job expiry and pruning of finished jobs;
- :mod:`pm_agent.discovery_adoption`: printers discovery finds while it runs;
- :mod:`pm_agent.added_printers`: printers an operator added through the hub
  (``printer:add``), kept in the data dir.

It reconnects with backoff whenever the hub goes away and then registers its
printers again; the hub answers by redelivering whatever is unfinished. A restarted
agent does not wait for the hub to print what is already in its spool.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl
from pathlib import Path
from typing import Any

from pm_agent.added_printers import FILE_NAME as ADDED_FILE
from pm_agent.added_printers import AddedPrinters
from pm_agent.agent_namespace import AgentNamespace
from pm_agent.device_id import load_device_id
from pm_agent.discovery import Discovery, DiscoveryConfig, FoundPrinter
from pm_agent.discovery.arp import ARP_TABLE
from pm_agent.discovery_adoption import DiscoveryAdoption
from pm_agent.hub_connection import AgentAuthError, HubConnection
from pm_agent.hub_health import HubHealth
from pm_agent.identity_cache import FILE_NAME as IDENTITY_FILE
from pm_agent.identity_cache import IdentityCache
from pm_agent.job_intake import JobIntake
from pm_agent.link_health import LinkHealth
from pm_agent.outbox_sender import OutboxSender
from pm_agent.printer_port import PrinterPort
from pm_agent.printer_registry import PrinterRegistry
from pm_agent.printer_uri import PrinterSpec
from pm_agent.printer_worker import PrinterWorker
from pm_agent.spool import JobSpool
from pm_agent.spool_upkeep import PRUNE_INTERVAL_S, SPOOL_RETENTION_S, SpoolUpkeep
from pm_agent.task_control import BackgroundTasks, cancel_tasks

__all__ = ["Agent", "AgentAuthError", "load_device_id"]

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        *,
        hub_url: str,
        license_key: str,
        data_dir: Path,
        printers: list[PrinterSpec],
        device_id: str | None = None,
        name: str | None = None,
        poll_interval: float = 2.0,
        ping_interval: float = 15.0,
        ping_timeout: float = 5.0,
        report_interval: float = 300.0,
        spool_synchronous: str = "FULL",
        spool_retention: float = SPOOL_RETENTION_S,
        prune_interval: float = PRUNE_INTERVAL_S,
        ports: dict[str, PrinterPort] | None = None,
        discovery: DiscoveryConfig | None = None,
        identify_wait: float = 4.0,
        arp_table: Path | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.license_key = license_key
        self.data_dir = data_dir
        self.device_id = device_id or load_device_id(data_dir)
        self.name = name or platform.node() or "agent"
        self.spool = JobSpool(
            data_dir / "agent-spool.sqlite",
            synchronous=spool_synchronous,
            retention=spool_retention,
        )
        self.health = LinkHealth()
        self.connection = HubConnection(
            hub_url=hub_url,
            license_key=license_key,
            device_id=self.device_id,
            name=self.name,
            tls=tls,
        )
        self.hub_url = self.connection.hub_url
        self.tasks = BackgroundTasks()
        self.outbox = OutboxSender(self.spool, self.connection)
        self.printers = PrinterRegistry(
            spool=self.spool,
            connection=self.connection,
            identities=IdentityCache(data_dir / IDENTITY_FILE),
            on_outbox=self.outbox.wake,
            poll_interval=poll_interval,
            identify_wait=identify_wait,
            # Where network printers' MACs are looked up (tests give a file of their own).
            arp_table=arp_table or (discovery.arp_table if discovery else ARP_TABLE),
            usb_backend=discovery.usb_backend if discovery is not None else None,
            # With discovery on, a restarted agent drives only its configured printers
            # until discovery finds the others again: it cannot say which were dropped.
            knows_all_printers=not (discovery is not None and discovery.enabled),
        )
        #: Printers an operator added through the hub (``printer:add``), kept here.
        self.added = AddedPrinters(data_dir / ADDED_FILE, self.printers)
        self.intake = JobIntake(
            spool=self.spool,
            printers=self.printers,
            connection=self.connection,
            on_outbox=self.outbox.wake,
            tasks=self.tasks,
        )
        self.hub_health = HubHealth(
            connection=self.connection,
            health=self.health,
            spool=self.spool,
            workers=lambda: self.printers.workers,
            device_id=self.device_id,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            report_interval=report_interval,
        )
        self.upkeep = SpoolUpkeep(
            self.spool, on_outbox=self.outbox.wake, prune_interval=prune_interval
        )
        self.adoption = DiscoveryAdoption(self.printers, stopping=lambda: self.connection.stopping)
        self.connection.register(
            AgentNamespace(
                connection=self.connection,
                health=self.health,
                outbox=self.outbox,
                printers=self.printers,
                intake=self.intake,
                tasks=self.tasks,
                added=self.added,
            )
        )
        self._specs = printers
        self._ports = ports or {}
        self._loops: list[asyncio.Task[Any]] = []
        #: Printers found by ``discovery`` are added while the agent runs.
        self.discovery_config = discovery
        self.discovery: Discovery | None = None

    # -- what callers use ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection.connected

    @property
    def workers(self) -> list[PrinterWorker]:
        return self.printers.workers

    @property
    def by_printer_id(self) -> dict[int, PrinterWorker]:
        return self.printers.by_printer_id

    async def add_printer(
        self,
        spec: PrinterSpec,
        port: PrinterPort | None = None,
        identity: str | None = None,
        *,
        mac: str | None = None,
        model: str | None = None,
    ) -> PrinterWorker:
        """Drive one more printer (see :meth:`PrinterRegistry.add_printer`)."""
        return await self.printers.add_printer(spec, port, identity, mac=mac, model=model)

    def worker_for(self, found: FoundPrinter) -> PrinterWorker | None:
        return self.adoption.worker_for(found)

    async def adopt_found(self, found: list[FoundPrinter]) -> None:
        """What discovery found (see :meth:`DiscoveryAdoption.adopt`)."""
        await self.adoption.adopt(found)

    async def ping(self) -> float | None:
        return await self.hub_health.ping()

    async def health_report(self) -> dict[str, Any]:
        return await self.hub_health.report()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool, start the printer workers, connect (retrying until it works)."""
        await asyncio.to_thread(self.spool.open)
        recovered = await self.spool.recover_interrupted()
        for job in recovered:
            log.warning("job %s was interrupted while printing; marked failed", job.job_id)
        await self.printers.load()
        for spec in self._specs:
            self.printers.add_worker(spec, self._ports.get(spec.uri))
        configured = {spec.uri for spec in self._specs}
        for spec in await asyncio.to_thread(self.added.load):
            if spec.uri not in configured:  # configured since: the configuration wins
                self.printers.add_worker(spec, self._ports.get(spec.uri), operator_added=True)
        self._loops = [
            asyncio.create_task(self.outbox.run(), name="agent:outbox"),
            asyncio.create_task(self.hub_health.ping_loop(), name="agent:ping"),
            asyncio.create_task(self.hub_health.report_loop(), name="agent:report"),
            asyncio.create_task(self.upkeep.expiry_loop(), name="agent:expiry"),
            asyncio.create_task(self.upkeep.prune_loop(), name="agent:prune"),
        ]
        config = self.discovery_config
        if config is not None and config.enabled:
            self.discovery = Discovery(
                config.sources(
                    serial_in_use=self.printers.serial_paths, usb_in_use=self.printers.usb_ids
                ),
                interval=config.interval,
                on_found=self.adopt_found,
            )
            self.discovery.start()
        await self.connection.connect()

    async def stop(self) -> None:
        # No more connecting from here (a reconnect while the hub is told would outlive
        # the agent); then the hub hears the stop is planned, so it raises no alerts.
        self.connection.stopping = True
        await self.connection.say_stopping()
        if self.discovery is not None:
            await self.discovery.stop()
        await cancel_tasks(self._loops)  # re-cancels: wait_for may swallow one on 3.11
        await self.connection.disconnect()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        await asyncio.to_thread(self.spool.close)
