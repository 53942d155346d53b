"""What a company hub knows about its branches: each branch's link and the live part
of the mirror (printers, agents, alerts not cleared, unfinished jobs) in memory,
with the broadcasts that tell operators about changes.

Everything applied is in the database first (``pm_hub.store.mirror``); memory
follows. When several processes serve the company, each holds the whole mirror in
memory: what one applies or hears from a branch it also announces (``announce``,
set by ``pm_hub.company.peers``), and every process follows it the same way and
tells its own operators.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.logs import start_background, uncorrelated
from pm_core.protocol import (
    ACTIVE_JOB_STATUSES,
    PRINTER_STATUS_FIELDS,
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
from pm_hub.company.links import LOCAL_HOST, BranchLink, link_state
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.store import mirror as mirror_store

log = logging.getLogger(__name__)

Record = dict[str, Any]
#: Tells the other processes serving the company: (kind, body).
Announce = Callable[[str, dict[str, Any]], Awaitable[None]]
SEVERITIES = ("critical", "warning", "info")
#: ``branch:update`` for a branch is sent at most this often while it syncs.
UPDATE_INTERVAL = 1.0
#: Finished jobs kept in the mirror per branch (unfinished ones are always kept).
MIRROR_JOBS_KEPT = 5000
#: Test results that came before the request they answer is known here: kept this
#: long, at most this many.
EARLY_RESULT_TTL_S = 60.0
EARLY_RESULTS_KEPT = 1000


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
        #: The links this process holds, by their /branch session.
        self.link_by_sid: dict[str, BranchLink] = {}
        self._depth: Counter[int] = Counter()
        #: Printers and unfinished jobs of each branch (a branch's row is counted often).
        self._branch_printers: defaultdict[int, set[int]] = defaultdict(set)
        self._branch_jobs: defaultdict[int, set[int]] = defaultdict(set)
        self._update_due: dict[int, asyncio.TimerHandle] = {}
        #: forwarded test prints: (branch id, the branch's correlation id) -> ours
        self.tests: dict[tuple[int, str], str] = {}
        #: results that came before the request they answer was known here
        self._early: OrderedDict[tuple[int, str], tuple[float, Record]] = OrderedDict()
        self._pruner: asyncio.Task[None] | None = None
        #: Changes heard while the mirror is being read again (applied after it).
        self._held: list[list[mirror_store.Applied]] | None = None
        #: Set when other processes serve the company too (``pm_hub.company.peers``).
        self.announce: Announce | None = None
        self.host_id = LOCAL_HOST
        self.host_alive: Callable[[str], bool] = lambda host: True

    # -- loading ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the live part of the mirror from the database. Changes followed while it
        is read are applied again after it (they are never older than what was read:
        each is announced after its own commit)."""
        self._held = []
        try:
            state = await self.db.read(mirror_store.load)
        except BaseException:
            held, self._held = self._held, None
            for changes in held:
                self._remember(changes)
            raise
        held, self._held = self._held, None
        self.printers = {p["id"]: p for p in state["printers"]}
        self.agents = {a["id"]: a for a in state["agents"]}
        self.open_alerts = {a["id"]: a for a in state["alerts"]}
        self.active_jobs = {}
        self._depth = Counter()
        self._branch_printers = defaultdict(set)
        self._branch_jobs = defaultdict(set)
        for printer in self.printers.values():
            self._branch_printers[printer["branch_id"]].add(printer["id"])
        for job in state["jobs"]:
            self._track_job(job)
        for changes in held:
            self._remember(changes)

    async def reload_branch(self, branch_id: int) -> None:
        """Read one branch's live mirror again and tell operators what differs: with
        several processes, when a branch's link moves here (the process that held it may
        have stopped after writing a change and before announcing it)."""
        state = await self.db.read(lambda d: mirror_store.load(d, branch_id))
        known: dict[str, dict[int, Record]] = {
            "printer": self.printers,
            "agent": self.agents,
            "alert": self.open_alerts,
            "job": self.active_jobs,
        }
        changes: list[mirror_store.Applied] = []
        for kind, key in (("printer", "printers"), ("agent", "agents"), ("alert", "alerts"),
                          ("job", "jobs")):  # fmt: skip
            now = {r["id"]: r for r in state[key]}
            was = {i: r for i, r in known[kind].items() if r["branch_id"] == branch_id}
            changes += [(kind, r, was.get(i)) for i, r in now.items() if was.get(i) != r]
            changes += [(kind, None, r) for i, r in was.items() if i not in now]
        if changes:
            log.info("branch %s: %d mirrored objects read again", branch_id, len(changes))
            await self.follow(changes)

    async def load_links(self) -> None:
        """The links known from the database, none connected (the process that holds
        one says so: ``pm_hub.company.peers``)."""
        for row in await self.db.read(mirror_store.all_links):
            if row["branch_id"] in self.links:
                continue
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
        self._branch_printers.pop(branch_id, None)
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

    def held_jobs(self, agents: list[Record]) -> dict[int, int]:
        """Per agent (an ``agent_view``): the mirrored unfinished jobs its spool holds."""
        owner = {pid: a["id"] for a in agents for pid in a.get("printers") or ()}
        held = dict.fromkeys((a["id"] for a in agents), 0)
        for job in self.active_jobs.values():
            agent_id = owner.get(job.get("printer_id"))
            if agent_id is not None and job.get("status") in ("dispatched", "printing"):
                held[agent_id] += 1
        return held

    def visible_links(self, principal: Principal) -> list[BranchLink]:
        return [
            link
            for link in sorted(self.links.values(), key=lambda lk: lk.branch_id)
            if link.company_id == principal.company_id and principal.sees_branch(link.branch_id)
        ]

    def link_state(self, link: BranchLink, now: float | None = None) -> tuple[str, float]:
        """(``connected`` | ``lagging`` | ``offline``, seconds behind)."""
        return link_state(link, lag_warning_s=self.settings.branch_lag_warning_s, now=now)

    def branch_row(self, link: BranchLink) -> Record:
        """One row of ``branches:list`` (and the payload of ``branch:update``)."""
        printers = [self.printers[i] for i in self._branch_printers.get(link.branch_id, ())]
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
            "active_jobs": len(self._branch_jobs.get(link.branch_id, ())),
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
        if old is not None:
            self._branch_jobs[old["branch_id"]].discard(old["id"])
            if old.get("printer_id") is not None:
                self._depth[old["printer_id"]] -= 1
        if job.get("status") in ACTIVE_JOB_STATUSES:
            self.active_jobs[job["id"]] = job
            self._branch_jobs[job["branch_id"]].add(job["id"])
            if job.get("printer_id") is not None:
                self._depth[job["printer_id"]] += 1

    async def apply(self, changes: list[mirror_store.Applied]) -> None:
        """What this process just wrote to the mirror: announce it, follow it."""
        if not changes:
            return
        if self.announce is not None:
            await self.announce("applied", {"changes": [applied_wire(c) for c in changes]})
        await self.follow(changes)

    async def follow(self, changes: list[mirror_store.Applied]) -> None:
        """Follow what was written to the mirror (here or by another process) and tell
        this process's operators."""
        status_only = {
            record["id"]
            for kind, record, _ in changes
            if kind == "printer" and record is not None and self._status_only(record)
        }
        # Printers whose count of unfinished jobs may change with these job changes.
        queues: set[int] = set()
        for kind, record, previous in changes:
            job_id = (record or previous or {}).get("id")
            if kind == "job" and isinstance(job_id, int):
                for job in (self.active_jobs.get(job_id), record):
                    if job is not None and isinstance(job.get("printer_id"), int):
                        queues.add(job["printer_id"])
        if self._held is not None:
            self._held.append(changes)
        else:
            self._remember(changes)
        broadcast = self.broadcaster.broadcast_local
        for kind, record, _ in changes:
            if kind == "printer" and record is not None:
                queues.discard(record["id"])  # its whole view goes out below
        for kind, record, previous in changes:
            if record is None:
                continue
            if kind == "printer":
                await self.broadcaster.printer_view_update(
                    self.printer_view(record), status_only=record["id"] in status_only
                )
            elif kind == "job":
                await broadcast(HubEvent.JOB_UPDATE, record)
            elif kind == "agent":
                await broadcast(HubEvent.AGENT_UPDATE, self.agent_view(record))
            elif kind == "alert":
                opened = previous is None and record.get("state") == "open"
                await broadcast(HubEvent.HEALTH_ALERT if opened else HubEvent.ALERT_UPDATE, record)
        for printer_id in sorted(queues):
            printer = self.printers.get(printer_id)
            if printer is not None:  # its queue figure follows the jobs just applied
                await self.broadcaster.printer_view_update(
                    self.printer_view(printer), status_only=True
                )

    def _status_only(self, record: Record) -> bool:
        """Whether only a printer's status fields differ from what is known of it."""
        old = self.printers.get(record["id"])
        if old is None or old.keys() != record.keys():
            return False
        return all(old[k] == v for k, v in record.items() if k not in PRINTER_STATUS_FIELDS)

    def _remember(self, changes: list[mirror_store.Applied]) -> None:
        for kind, record, previous in changes:
            if record is None:
                self._forget(kind, previous)
            elif kind == "printer":
                self.printers[record["id"]] = record
                self._branch_printers[record["branch_id"]].add(record["id"])
            elif kind == "job":
                self._track_job(record)
            elif kind == "agent":
                self.agents[record["id"]] = record
            elif kind == "alert":
                if record.get("state") == "cleared":
                    self.open_alerts.pop(record["id"], None)
                else:
                    self.open_alerts[record["id"]] = record

    def _forget(self, kind: str, previous: Record | None) -> None:
        if previous is None:
            return
        if kind == "printer":
            gone = self.printers.pop(previous["id"], None)
            if gone is not None:
                self._branch_printers[gone["branch_id"]].discard(gone["id"])
        elif kind == "agent":
            self.agents.pop(previous["id"], None)
        elif kind == "alert":
            self.open_alerts.pop(previous["id"], None)
        elif kind == "job":
            self._track_job({**previous, "status": "cancelled"})

    async def printers_seen(
        self, link: BranchLink, seen: dict[int, float], at: float, *, here: bool = True
    ) -> None:
        """Printers of a branch reported an unchanged status (their last-seen times;
        ``here``: its link is on this process, tell the others)."""
        ids = []
        for gid, when in seen.items():
            record = self.printers.get(gid)
            if record is not None and record["branch_id"] == link.branch_id:
                record["last_seen"] = when
                ids.append(gid)
        if not ids:
            return
        if here and self.announce is not None:
            await self.announce(
                "seen",
                {"branch_id": link.branch_id, "at": at, "seen": {str(i): seen[i] for i in ids}},
            )
        await self.broadcaster.broadcast_local(
            HubEvent.PRINTERS_SEEN,
            {
                "company_id": link.company_id,
                "branch_id": link.branch_id,
                "at": at,
                "printer_ids": sorted(ids),
            },
        )

    # -- links ------------------------------------------------------------------------------

    async def link_opened(
        self, sid: str, *, branch_id: int, company_id: int, name: str, version: str | None,
        row: Record,
    ) -> BranchLink:  # fmt: skip
        """A branch hub said hello on this process: it holds the link from now on (an
        older connection of the same branch, here or on another process, is closed)."""
        if row["reset"]:
            log.warning("branch %s has a new outbox stream: its mirror starts afresh", branch_id)
            self.forget_branch(branch_id)
            if self.announce is not None:
                await self.announce("forget", {"branch_id": branch_id})
        elif self.announce is not None:
            await self.reload_branch(branch_id)
            await self.announce("reload", {"branch_id": branch_id})
        link = self.links.get(branch_id)
        if link is None:
            link = BranchLink(branch_id=branch_id, company_id=company_id, name=name)
            self.links[branch_id] = link
        if link.sid is not None and link.sid != sid:
            old_sid = link.sid
            self.link_by_sid.pop(old_sid, None)
            log.warning("branch %s connected again; closing its previous connection", branch_id)
            await self.broadcaster.sio.disconnect(old_sid, namespace=Namespace.BRANCH)
        link.name, link.company_id, link.version = name, company_id, version
        link.sid, link.host = sid, self.host_id
        link.connected_at = row["connected_at"]
        link.disconnected_at = None
        link.last_sync_at = row["last_sync_at"]
        link.pending, link.oldest_age_s, link.reported_at = 0, None, time.time()
        link.snapshot_ids = {}
        self.link_by_sid[sid] = link
        await self.broadcaster.join_branch_rooms(branch_id, company_id)
        await self.link_changed(link, now=True, event="up")
        return link

    async def link_closed(self, sid: str) -> None:
        """A branch hub's connection to this process ended."""
        link = self.link_by_sid.pop(sid, None)
        if link is None or link.sid != sid:
            return  # an older connection, already replaced
        connected_at = link.connected_at
        now = time.time()
        branch_id = link.branch_id
        await self.db.write(lambda d: mirror_store.close_link(d, branch_id, connected_at, now))
        if self.announce is not None:
            await self.announce("link", {**link.shared(), "event": "down", "disconnected_at": now})
        log.warning("branch %s (%s) disconnected", branch_id, link.name)
        await self._link_gone(link, now)

    async def _link_gone(self, link: BranchLink, at: float) -> None:
        link.sid = None
        link.disconnected_at = at
        link.snapshot_ids = {}
        self.fail_requests(link.branch_id)
        await self.branch_lost(link)

    async def link_heard(self, body: dict[str, Any]) -> None:
        """Another process said something about a link it holds (or held)."""
        branch_id, company_id = body.get("branch_id"), body.get("company_id")
        if not isinstance(branch_id, int) or not isinstance(company_id, int):
            return
        event = body.get("event")
        link = self.links.get(branch_id)
        if link is None:
            if event == "down":
                return
            link = BranchLink(
                branch_id=branch_id, company_id=company_id, name=f"Branch {branch_id}"
            )
            self.links[branch_id] = link
        if event == "down":
            if link.sid is not None and link.sid == body.get("sid"):
                at = body.get("disconnected_at")
                await self._link_gone(link, at if isinstance(at, float) else time.time())
            return
        if event == "state" and (link.sid is None or link.sid != body.get("sid")):
            return  # news of a connection that is no longer the branch's
        if link.sid is not None and link.sid != body.get("sid") and link.host == self.host_id:
            self.link_by_sid.pop(link.sid, None)  # ours was replaced (and is being closed)
        fresh = event == "up" and link.sid != body.get("sid")
        before = link.shared()
        link.take(body)
        link.snapshot_ids = {}
        if fresh:
            await self.broadcaster.join_branch_rooms(link.branch_id, link.company_id)
        if fresh or link.shared() != before:
            await self._send_branch_update(link)

    async def hosts_lost(self, hosts: set[str]) -> None:
        """Processes that stopped answering: the links they held are offline until their
        branches connect again (to a process that is alive)."""
        now = time.time()
        for link in list(self.links.values()):
            if link.sid is not None and link.host in hosts:
                log.warning("branch %s was held by a hub process that went away", link.branch_id)
                await self._link_gone(link, now)

    def held_links(self) -> list[BranchLink]:
        return [
            link
            for link in self.links.values()
            if link.sid is not None and link.host == self.host_id
        ]

    async def link_changed(
        self, link: BranchLink, *, now: bool = False, event: str = "state"
    ) -> None:
        """Tell operators (and the other processes) about a link this process holds: at
        once, or at most once a second."""
        if now:
            handle = self._update_due.pop(link.branch_id, None)
            if handle is not None:
                handle.cancel()
            await self._share_link(link, event)
            return
        if link.branch_id in self._update_due:
            return
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._update_due.pop(link.branch_id, None)
            task = asyncio.ensure_future(self._share_link(link, "state"))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        self._update_due[link.branch_id] = loop.call_later(
            UPDATE_INTERVAL, due, context=uncorrelated()
        )

    async def _share_link(self, link: BranchLink, event: str) -> None:
        if self.announce is not None and link.host == self.host_id and link.sid is not None:
            await self.announce("link", {**link.shared(), "event": event})
        await self._send_branch_update(link)

    async def _send_branch_update(self, link: BranchLink) -> None:
        await self.broadcaster.broadcast_local(HubEvent.BRANCH_UPDATE, self.branch_row(link))

    async def branch_lost(self, link: BranchLink) -> None:
        """A branch hub disconnected: its agents can no longer be vouched for."""
        for agent in list(self.agents.values()):
            if agent["branch_id"] == link.branch_id and agent.get("connected"):
                await self.broadcaster.broadcast_local(
                    HubEvent.AGENT_UPDATE, {**self.agent_view(agent), "connected": False}
                )
        handle = self._update_due.pop(link.branch_id, None)
        if handle is not None:
            handle.cancel()
        await self._send_branch_update(link)

    def start(self) -> None:
        self._pruner = start_background(self._prune_loop())

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
        if link is None or link.sid is None or not self.host_alive(link.host):
            name = link.name if link is not None else f"branch {branch_id}"
            raise ProtocolError(
                ErrorCode.OFFLINE, f"{name} is not connected to the company hub; try again later"
            )
        return link

    async def forward(
        self, branch_id: int, event: str, payload: Record, principal: Principal
    ) -> Record:
        """Ask a branch hub to do an operator request (through the process that holds
        its link); its ack (with its own ids)."""
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
            if link.sid is None:
                raise ProtocolError(
                    ErrorCode.OFFLINE, f"{link.name} disconnected before it answered {event}"
                ) from None
            raise ProtocolError(
                ErrorCode.TIMEOUT, f"{link.name} did not answer {event} in time"
            ) from None
        except Exception as exc:
            raise ProtocolError(ErrorCode.OFFLINE, f"{link.name}: {exc}") from None
        if not isinstance(ack, dict) or "ok" not in ack:
            raise ProtocolError(ErrorCode.INTERNAL, f"{link.name} sent a malformed answer")
        return ack

    # -- test prints forwarded to branches ----------------------------------------------------

    def expect_result(self, branch_id: int, branch_cid: str, ours: str) -> Record | None:
        """A test print was forwarded: its result, if it already came; else remember to
        resolve ``ours`` when it does."""
        key = (branch_id, branch_cid)
        early = self._early.pop(key, None)
        if early is not None:
            return early[1]
        self.tests[key] = ours
        return None

    async def result_came(
        self, branch_id: int, branch_cid: str, result: Record, *, here: bool
    ) -> bool:
        """A branch sent a test print's result (``here``: to this process). Resolved if
        the request is ours; otherwise the other processes are told, and it is kept a
        while in case the request is not known yet."""
        key = (branch_id, branch_cid)
        ours = self.tests.pop(key, None)
        if ours is not None:
            self.registry.resolve(ours, result)
            return True
        if here and self.announce is not None:
            await self.announce(
                "result", {"branch_id": branch_id, "cid": branch_cid, "result": result}
            )
        now = time.monotonic()
        self._early[key] = (now, result)
        while self._early and (
            len(self._early) > EARLY_RESULTS_KEPT
            or next(iter(self._early.values()))[0] < now - EARLY_RESULT_TTL_S
        ):
            self._early.popitem(last=False)
        return False

    def fail_requests(self, branch_id: int) -> None:
        """The branch went away: its forwarded test prints end ``offline``."""
        for key, cid in list(self.tests.items()):
            if key[0] == branch_id:
                del self.tests[key]
                self.registry.fail(cid, ErrorCode.OFFLINE, "the branch hub disconnected")


def applied_wire(change: mirror_store.Applied) -> dict[str, Any]:
    """A change as the processes tell it: the previous record only when it was removed
    (followers need its id), else whether it is new."""
    kind, record, previous = change
    if record is None:
        return {"kind": kind, "record": None, "previous": previous}
    return {"kind": kind, "record": record, "new": previous is None}


def applied_from_wire(items: Any) -> list[mirror_store.Applied]:
    """The changes another process applied (malformed entries are skipped)."""
    changes: list[mirror_store.Applied] = []
    if not isinstance(items, list):
        return changes
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in mirror_store.TABLES:
            continue
        record, previous = item.get("record"), item.get("previous")
        if isinstance(record, dict) and isinstance(record.get("id"), int):
            changes.append((item["kind"], record, None if item.get("new") else {}))
        elif record is None and isinstance(previous, dict) and isinstance(previous.get("id"), int):
            changes.append((item["kind"], None, previous))
    return changes
