"""What a company hub knows about its branches: each branch's link and the live part
of the mirror (printers, agents, alerts not cleared, unfinished jobs) in memory,
with the broadcasts that tell operators about changes.

Everything applied is in SQLite first (``pm_hub.store.mirror``); memory follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.protocol import (
    ACTIVE_JOB_STATUSES,
    PROBLEM_PRINTER_STATUSES,
    BranchEvent,
    ErrorCode,
    HubEvent,
    Namespace,
    ProtocolError,
)
from pm_core.sql import DatabaseUnavailable
from pm_hub.auth import Principal
from pm_hub.broadcast import Broadcaster
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.store import mirror as mirror_store

log = logging.getLogger(__name__)

Record = dict[str, Any]
SEVERITIES = ("critical", "warning", "info")
#: ``branch:update`` for a branch is sent at most this often while it syncs.
UPDATE_INTERVAL = 1.0
#: A connected branch that sent nothing (not even a heartbeat) for this long is lagging.
SILENCE_LAGGING_S = 35.0
#: Finished jobs kept in the mirror per branch (unfinished ones are always kept).
MIRROR_JOBS_KEPT = 5000


@dataclass
class BranchLink:
    """A branch hub as the company hub sees it (connected or not)."""

    branch_id: int
    company_id: int
    name: str
    sid: str | None = None
    version: str | None = None
    connected_at: float | None = None
    disconnected_at: float | None = None
    last_sync_at: float | None = None
    #: Entries the branch still had to send, and the age of the oldest, when it last said.
    pending: int = 0
    oldest_age_s: float | None = None
    reported_at: float | None = None
    #: Ids received in the snapshot being sent now, per kind.
    snapshot_ids: dict[str, set[int]] = field(default_factory=dict)
    snapshot_seq: int = 0

    @property
    def connected(self) -> bool:
        return self.sid is not None


class BranchMirror:
    def __init__(
        self,
        settings: HubSettings,
        *,
        db: Database,
        broadcaster: Broadcaster,
        registry: CorrelationRegistry,
    ) -> None:
        self.settings = settings
        self.db = db
        self.broadcaster = broadcaster
        self.registry = registry
        self._background: set[asyncio.Future[Any]] = set()
        self.printers: dict[int, Record] = {}
        self.agents: dict[int, Record] = {}
        self.open_alerts: dict[int, Record] = {}
        self.active_jobs: dict[int, Record] = {}
        self.links: dict[int, BranchLink] = {}
        self.link_by_sid: dict[str, BranchLink] = {}
        self._depth: Counter[int] = Counter()
        self._update_due: dict[int, asyncio.TimerHandle] = {}
        #: forwarded test prints: (branch id, the branch's correlation id) -> ours
        self.tests: dict[tuple[int, str], str] = {}
        #: results that came before the branch's ack was seen (rare race)
        self.early_results: dict[tuple[int, str], Record] = {}
        self._pruner: asyncio.Task[None] | None = None

    async def load(self) -> None:
        state = await self.db.read(mirror_store.load)
        self.printers = {p["id"]: p for p in state["printers"]}
        self.agents = {a["id"]: a for a in state["agents"]}
        self.open_alerts = {a["id"]: a for a in state["alerts"]}
        self.active_jobs = {}
        self._depth = Counter()
        for job in state["jobs"]:
            self._track_job(job)

    async def load_links(self) -> None:
        for row in await self.db.read(mirror_store.all_links):
            self.links[row["branch_id"]] = BranchLink(
                branch_id=row["branch_id"],
                company_id=row["company_id"],
                name=row["name"],
                version=row["hub_version"],
                connected_at=row["connected_at"],
                disconnected_at=row["disconnected_at"] or row["connected_at"],
                last_sync_at=row["last_sync_at"],
            )

    def forget_branch(self, branch_id: int) -> None:
        """The branch's mirror was emptied (a new outbox stream): forget it here too."""
        for table in (self.printers, self.agents, self.open_alerts):
            for key in [k for k, r in table.items() if r["branch_id"] == branch_id]:
                del table[key]
        for job in [j for j in self.active_jobs.values() if j["branch_id"] == branch_id]:
            self._track_job({**job, "status": "cancelled"})

    # -- views ---------------------------------------------------------------------------

    def printer_view(self, record: Record) -> Record:
        view = dict(record)
        view["queue"] = self._depth.get(record["id"], 0)
        agent_id = record.get("agent_id")
        agent = self.agents.get(agent_id) if isinstance(agent_id, int) else None
        link = self.links.get(record["branch_id"])
        view["agent_connected"] = bool(
            agent is not None and agent.get("connected") and link is not None and link.connected
        )
        return view

    def agent_view(self, record: Record) -> Record:
        view = dict(record)
        view["printers"] = sorted(
            p["id"] for p in self.printers.values() if p.get("agent_id") == record["id"]
        )
        return view

    def visible_links(self, principal: Principal) -> list[BranchLink]:
        return [
            link
            for link in sorted(self.links.values(), key=lambda lk: lk.branch_id)
            if link.company_id == principal.company_id and principal.sees_branch(link.branch_id)
        ]

    def link_state(self, link: BranchLink, now: float | None = None) -> tuple[str, float]:
        """(``connected`` | ``lagging`` | ``offline``, seconds behind)."""
        now = time.time() if now is None else now
        if not link.connected:
            return "offline", 0.0
        lag = 0.0
        if link.pending and link.oldest_age_s is not None and link.reported_at is not None:
            lag = link.oldest_age_s + (now - link.reported_at)
        silent = now - (link.reported_at or link.connected_at or now)
        if lag > self.settings.branch_lag_warning_s or silent > SILENCE_LAGGING_S:
            return "lagging", round(max(lag, silent if silent > SILENCE_LAGGING_S else 0), 1)
        return "connected", round(lag, 1)

    def branch_row(self, link: BranchLink) -> Record:
        """One row of ``branches:list`` (and the payload of ``branch:update``)."""
        printers = [p for p in self.printers.values() if p["branch_id"] == link.branch_id]
        alerts = dict.fromkeys(SEVERITIES, 0)
        for alert in self.open_alerts.values():
            if alert["branch_id"] == link.branch_id and alert.get("state") == "open":
                severity = alert.get("severity")
                alerts[severity if severity in alerts else "warning"] += 1
        agents = [a for a in self.agents.values() if a["branch_id"] == link.branch_id]
        state, lag = self.link_state(link)
        return {
            "id": link.branch_id,
            "name": link.name,
            "company_id": link.company_id,
            "printers": len(printers),
            "problems": sum(1 for p in printers if p.get("status") in PROBLEM_PRINTER_STATUSES),
            "alerts": alerts,
            "agents": len(agents),
            "agents_connected": sum(1 for a in agents if a.get("connected"))
            if link.connected
            else 0,
            "active_jobs": sum(
                1 for j in self.active_jobs.values() if j["branch_id"] == link.branch_id
            ),
            "link": {
                "state": state,
                "connected": link.connected,
                "connected_at": link.connected_at,
                "disconnected_at": None if link.connected else link.disconnected_at,
                "last_sync_at": link.last_sync_at,
                "lag_s": lag,
                "pending": link.pending if link.connected else None,
                "version": link.version,
            },
        }

    # -- following changes ----------------------------------------------------------------

    def _track_job(self, job: Record) -> None:
        old = self.active_jobs.pop(job["id"], None)
        if old is not None and old.get("printer_id") is not None:
            self._depth[old["printer_id"]] -= 1
        if job.get("status") in ACTIVE_JOB_STATUSES:
            self.active_jobs[job["id"]] = job
            if job.get("printer_id") is not None:
                self._depth[job["printer_id"]] += 1

    async def apply(self, changes: list[mirror_store.Applied]) -> None:
        """Follow what was just written to the mirror, and tell operators."""
        for kind, record, previous in changes:
            if record is None:
                self._forget(kind, previous)
                continue
            if kind == "printer":
                self.printers[record["id"]] = record
                await self.broadcaster.broadcast(HubEvent.PRINTER_UPDATE, self.printer_view(record))
            elif kind == "job":
                self._track_job(record)
                await self.broadcaster.broadcast(HubEvent.JOB_UPDATE, record)
            elif kind == "agent":
                self.agents[record["id"]] = record
                await self.broadcaster.broadcast(HubEvent.AGENT_UPDATE, self.agent_view(record))
            elif kind == "alert":
                if record.get("state") == "cleared":
                    self.open_alerts.pop(record["id"], None)
                else:
                    self.open_alerts[record["id"]] = record
                opened = previous is None and record.get("state") == "open"
                event = HubEvent.HEALTH_ALERT if opened else HubEvent.ALERT_UPDATE
                await self.broadcaster.broadcast(event, record)

    def _forget(self, kind: str, previous: Record | None) -> None:
        if previous is None:
            return
        if kind == "printer":
            self.printers.pop(previous["id"], None)
        elif kind == "agent":
            self.agents.pop(previous["id"], None)
        elif kind == "alert":
            self.open_alerts.pop(previous["id"], None)
        elif kind == "job":
            self._track_job({**previous, "status": "cancelled"})

    async def link_changed(self, link: BranchLink, *, now: bool = False) -> None:
        """Tell operators about a branch's link: at once, or at most once a second."""
        if now:
            handle = self._update_due.pop(link.branch_id, None)
            if handle is not None:
                handle.cancel()
            await self.broadcaster.broadcast(HubEvent.BRANCH_UPDATE, self.branch_row(link))
            return
        if link.branch_id in self._update_due:
            return
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._update_due.pop(link.branch_id, None)
            task = asyncio.ensure_future(
                self.broadcaster.broadcast(HubEvent.BRANCH_UPDATE, self.branch_row(link))
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self._update_due[link.branch_id] = loop.call_later(UPDATE_INTERVAL, due)

    async def branch_lost(self, link: BranchLink) -> None:
        """A branch hub disconnected: its agents can no longer be vouched for."""
        for agent in list(self.agents.values()):
            if agent["branch_id"] == link.branch_id and agent.get("connected"):
                await self.broadcaster.broadcast(
                    HubEvent.AGENT_UPDATE, {**self.agent_view(agent), "connected": False}
                )
        await self.link_changed(link, now=True)

    def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_loop())

    async def _prune_loop(self, every: float = 300.0) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                removed = await self.db.write(
                    lambda d: mirror_store.prune_jobs(d, MIRROR_JOBS_KEPT)
                )
            except DatabaseUnavailable as exc:
                log.warning("pruning mirrored jobs failed: %s", exc.message)
                continue
            except Exception:
                log.exception("pruning mirrored jobs failed")
                continue
            if removed:
                log.info("pruned %d old mirrored jobs", removed)

    def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            self._pruner = None
        for handle in self._update_due.values():
            handle.cancel()
        self._update_due.clear()

    # -- requests to branches ---------------------------------------------------------------

    def connected_link(self, branch_id: int) -> BranchLink:
        link = self.links.get(branch_id)
        if link is None or link.sid is None:
            name = link.name if link is not None else f"branch {branch_id}"
            raise ProtocolError(
                ErrorCode.OFFLINE, f"{name} is not connected to the company hub; try again later"
            )
        return link

    async def forward(
        self, branch_id: int, event: str, payload: Record, principal: Principal
    ) -> Record:
        """Ask a branch hub to do an operator request; its ack (with its own ids)."""
        link = self.connected_link(branch_id)
        assert link.sid is not None  # connected_link checked it
        try:
            ack = await self.broadcaster.call(
                BranchEvent.OPS_REQUEST,
                {"event": event, "payload": payload, "sub": principal.sub, "role": principal.role},
                to=link.sid,
                namespace=Namespace.BRANCH,
                timeout=self.settings.request_timeout,
            )
        except (TimeoutError, socketio.exceptions.TimeoutError):
            raise ProtocolError(
                ErrorCode.TIMEOUT, f"{link.name} did not answer {event} in time"
            ) from None
        except Exception as exc:
            raise ProtocolError(ErrorCode.OFFLINE, f"{link.name}: {exc}") from None
        if not isinstance(ack, dict) or "ok" not in ack:
            raise ProtocolError(ErrorCode.INTERNAL, f"{link.name} sent a malformed answer")
        return ack

    def fail_requests(self, branch_id: int) -> None:
        """The branch went away: its forwarded test prints end ``offline``."""
        for key, cid in list(self.tests.items()):
            if key[0] == branch_id:
                del self.tests[key]
                self.registry.fail(cid, ErrorCode.OFFLINE, "the branch hub disconnected")
