"""The running hub: every service ``pm_hub.wiring`` built, and the order in which they
start and stop.

No service holds or imports this; each was given what it uses. It is the handle the
composition root and the tests get (``RunningHub.hub``): the store, the live state,
the services, and a few shortcuts they use often (tokens, licenses, printers, agents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pm_core.database import Database
from pm_core.protocol import HubEvent, Namespace
from pm_hub.active_jobs import ActiveJobs
from pm_hub.admission import Admission
from pm_hub.agent_printers import AgentPrinters
from pm_hub.agent_sessions import AgentSessions
from pm_hub.alerts import AlertBook
from pm_hub.auth import TokenIssuer
from pm_hub.broadcast import Broadcaster
from pm_hub.cloudprnt import CloudPrntServer
from pm_hub.company.mirror import BranchMirror
from pm_hub.company.peers import CompanyPeers
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.credential_watch import CredentialWatch
from pm_hub.credentials import Credentials
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.hub_lock import FileLock, PostgresLock
from pm_hub.job_expiry import JobExpiry
from pm_hub.live_state import AgentLink, LiveState, PrinterRow
from pm_hub.log_ring import LogRing, PrinterNames
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import OperatorActions
from pm_hub.printer_addition import PrinterAddition
from pm_hub.printer_changes import PrinterChanges
from pm_hub.printer_retirement import PrinterRetirement
from pm_hub.printer_views import PrinterViews
from pm_hub.retention import RetentionKeeper
from pm_hub.stations import StationRouter
from pm_hub.store import prepare_hub_db
from pm_hub.upstream import UpstreamLink
from pm_hub.webhooks import WebhookNotifier

log = logging.getLogger(__name__)


@dataclass
class Hub:
    settings: HubSettings
    db: Database
    state: LiveState
    metrics: HubMetrics
    registry: CorrelationRegistry
    credentials: Credentials
    credential_watch: CredentialWatch
    admission: Admission
    jobs: ActiveJobs
    views: PrinterViews
    broadcaster: Broadcaster
    printer_changes: PrinterChanges
    webhooks: WebhookNotifier
    alerts: AlertBook
    dispatcher: JobDispatcher
    expiry: JobExpiry
    router: StationRouter
    health: HealthMonitor
    agent_sessions: AgentSessions
    agent_printers: AgentPrinters
    #: What operators can do here (a branch hub's own, or a company hub's forwarding).
    operations: OperatorActions
    #: Held while the hub runs: no second hub on the same store (``pm_hub.hub_lock``).
    lock: FileLock | PostgresLock
    #: On a company hub: what the branches sent (None on a branch hub).
    mirror: BranchMirror | None = None
    #: On a company hub served by several processes: the others (through Redis).
    peers: CompanyPeers | None = None
    #: On a branch hub with an upstream: the link to the company hub.
    upstream: UpstreamLink | None = None
    #: Prunes old documents, jobs, history and reports in the background.
    retention: RetentionKeeper | None = None
    #: Printers removed and agents retired on purpose.
    retirement: PrinterRetirement | None = None
    #: Printers added at run time through their agent (``printer:add``).
    addition: PrinterAddition | None = None
    #: On a branch hub: the Star CloudPRNT server (printers that poll ``/cloudprnt``).
    cloudprnt: CloudPrntServer | None = None
    #: The recent log lines the dashboard's Logs tab reads (kept while the hub runs).
    logs: LogRing = field(default_factory=LogRing)
    _lock_watch: asyncio.Task[None] | None = field(default=None, init=False)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        # One hub per store (several company-hub processes only through Redis).
        await asyncio.to_thread(self.lock.take)
        try:
            await self._start()
        except BaseException:
            await self._abandon()
            raise
        if isinstance(self.lock, PostgresLock):
            self._lock_watch = asyncio.create_task(self._watch_lock(self.lock))

    async def _watch_lock(self, lock: PostgresLock, every: float = 10.0) -> None:
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(lock.check)

    async def _abandon(self) -> None:
        """A start that failed half-way: let go of what it took."""
        with contextlib.suppress(Exception):
            if self.peers is not None:
                await self.peers.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.db.close)
        self.lock.release()

    async def _start(self) -> None:
        upstream = bool(self.settings.upstream_url)
        await asyncio.to_thread(self.db.start, lambda d: prepare_hub_db(d, upstream=upstream))
        await self.credentials.start()
        await self.state.load(self.db, branch_name=self.settings.branch_name)
        await self.router.load()
        await self.alerts.load()
        await self.jobs.load(self.db)
        if self.mirror is not None:
            if self.peers is not None:
                await self.peers.join()  # listening before the mirror is read: nothing missed
            await self.mirror.load()
            await self.mirror.load_links()
            self.mirror.start()
            if self.peers is not None:
                await self.peers.start()
        self.logs.printer_named = PrinterNames(self.state).lookup
        self.logs.install(self._send_log_lines)
        self.registry.start()
        self.expiry.start()
        if self.cloudprnt is not None:
            await self.cloudprnt.start()
        self.health.start()
        await self.health.load_reports()
        if self.retention is not None:
            self.retention.start()
        # Agents that do not come back get their disconnect alerts, as if seen leaving.
        await self.health.watch_absent_agents()
        self.webhooks.start()
        self.broadcaster.start()
        self.credential_watch.start()
        if self.upstream is not None:
            await self.upstream.start()
        log.info(
            "hub started: %d printers, %d unfinished jobs, data in %s",
            len(self.state.printers),
            self.jobs.count(),
            self.db.where if self.db.engine == "postgresql" else self.settings.data_dir,
        )

    async def stop(self) -> None:
        await self.credential_watch.stop()
        if self.upstream is not None:
            await self.upstream.stop()
        if self.mirror is not None:
            self.mirror.stop()
        if self.peers is not None:
            await self.peers.stop()
        if self.retention is not None:
            await self.retention.stop()
        await self.health.stop()
        await self.webhooks.stop()
        await self.expiry.stop()
        if self.cloudprnt is not None:
            await self.cloudprnt.stop()
        await self.dispatcher.stop()
        await self.registry.stop()
        await self.broadcaster.stop()
        await self.logs.uninstall()
        await asyncio.to_thread(self.db.close)
        if self._lock_watch is not None:
            self._lock_watch.cancel()
            await asyncio.gather(self._lock_watch, return_exceptions=True)
            self._lock_watch = None
        self.lock.release()

    async def _send_log_lines(self, sid: str, batch: dict[str, Any]) -> None:
        await self.broadcaster.emit(
            HubEvent.LOGS_UPDATE, batch, to=sid, namespace=Namespace.OPS, here_only=True
        )

    # -- shortcuts for the composition root and the tests -----------------------------

    @property
    def tokens(self) -> TokenIssuer | None:
        return self.credentials.tokens

    async def create_license(
        self, *, branch_id: int | None = None, label: str | None = None
    ) -> str:
        return await self.credentials.create_license(branch_id=branch_id, label=label)

    @property
    def printers(self) -> dict[int, PrinterRow]:
        return self.state.printers

    @property
    def agents(self) -> dict[int, AgentLink]:
        return self.state.agents

    @property
    def company_id(self) -> int:
        return self.state.company_id

    @property
    def branch_id(self) -> int:
        return self.state.branch_id

    @property
    def branch_name(self) -> str:
        return self.state.branch_name
