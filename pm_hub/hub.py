"""The hub's state: store, credentials, in-flight requests, connected agents and
the printer cache, plus the helpers that broadcast changes to operator rooms."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import socketio

from pm_core.protocol import PRINTER_STATUS_FIELDS, ErrorCode, HubEvent, Namespace, ProtocolError
from pm_hub import auth, engineio_fast
from pm_hub.coalesce import BATCHED_EVENTS, UpdateCoalescer, batched_rooms
from pm_hub.config import HubSettings
from pm_hub.correlation import CorrelationRegistry
from pm_hub.room_manager import BroadcastManager
from pm_hub.store import Database, prepare_hub_db, tenants
from pm_hub.store import jobs as job_store
from pm_hub.store import printers as printer_store
from pm_hub.store.records import agent_record, job_record, printer_record

log = logging.getLogger(__name__)


@dataclass
class AgentLink:
    """An agent connected right now."""

    agent_id: int
    sid: str
    device_id: str
    company_id: int
    branch_id: int
    connected_at: float = field(default_factory=time.time)
    printer_ids: set[int] = field(default_factory=set)


class Hub:
    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.db = Database(settings.db_path, synchronous=settings.sqlite_synchronous)
        self.registry = CorrelationRegistry(
            timeout=settings.request_timeout, stale_after=settings.stale_after
        )
        engineio_fast.install()
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=BroadcastManager(),
            cors_allowed_origins="*",
            max_http_buffer_size=settings.max_payload_bytes,
            logger=False,
            engineio_logger=False,
            ping_interval=20,
            ping_timeout=20,
        )
        self.tokens: auth.TokenIssuer | None = None
        self.company_id = 1
        self.branch_id = 1
        self.branch_name = "Main branch"
        self.printers: dict[int, dict[str, Any]] = {}
        self.agents: dict[int, AgentLink] = {}
        self.agent_by_sid: dict[str, AgentLink] = {}
        self.operators: dict[str, auth.Principal] = {}
        #: Operators that asked for batched printer updates (``coalesce: true``).
        self.batched_operators: set[str] = set()
        #: Printers whose next batched entry must be whole (something besides status changed).
        self._whole_printer_due: set[int] = set()
        self.coalescer = UpdateCoalescer(
            self._emit_batch,
            window=settings.update_batch_window_s,
            listeners=lambda: len(self.batched_operators),
        )
        self._seen: dict[tuple[int, int], set[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[Any]] = set()
        self.started_at = time.time()
        # Set up by pm_hub.server (kept here so handlers reach them through the hub).
        from pm_hub.alerts import AlertBook
        from pm_hub.dispatch import JobDispatcher
        from pm_hub.health import HealthMonitor
        from pm_hub.metrics import HubMetrics
        from pm_hub.stations import StationRouter
        from pm_hub.webhooks import WebhookNotifier

        self.dispatcher = JobDispatcher(self)
        self.router = StationRouter(self)
        self.alerts = AlertBook(self)
        self.health = HealthMonitor(self)
        self.metrics = HubMetrics(self)
        self.webhooks = WebhookNotifier(
            [u.strip() for u in settings.webhook_urls.split(",") if u.strip()],
            timeout=settings.webhook_timeout_s,
        )
        from pm_hub.company.mirror import BranchMirror

        #: On a company hub: what the branches sent (None on a branch hub).
        self.mirror: BranchMirror | None = BranchMirror(self) if settings.company_mode else None
        #: On a branch hub with an upstream: the link to the company hub (set by server).
        self.upstream: Any = None
        self.db.on_write_latency = self.metrics.sqlite_write.observe
        self.registry.on_resolved = lambda pending, seconds: self.metrics.observe_roundtrip(
            pending.kind, seconds
        )

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        upstream = bool(self.settings.upstream_url)
        await asyncio.to_thread(self.db.start, lambda d: prepare_hub_db(d, upstream=upstream))
        secret = await asyncio.to_thread(auth.load_or_create_secret, self.settings.data_dir)
        self.tokens = auth.TokenIssuer(secret)
        self.company_id, self.branch_id = await self.db.write(tenants.ensure_default_tenant)
        if self.settings.branch_name:
            name = self.settings.branch_name
            branch_id = self.branch_id
            await self.db.write(lambda d: tenants.rename_branch(d, branch_id, name))
        branch = await self.db.read(lambda d: tenants.get_branch(d, self.branch_id))
        self.branch_name = branch["name"] if branch else self.branch_name
        await self.db.write(tenants.mark_all_agents_disconnected)
        # Nobody is connected yet: what the file says about reachability is stale.
        await self.db.write(printer_store.mark_all_agent_printers_offline)
        for row in await self.db.read(printer_store.all_printers):
            self.printers[row["id"]] = row
        await self.router.load()
        await self.alerts.load()
        await self.dispatcher.load()
        if self.mirror is not None:
            await self.mirror.load()
            await self.mirror.load_links()
            self.mirror.start()
        self.registry.start()
        self.dispatcher.start()
        self.health.start()
        # Agents that do not come back get their disconnect alerts, as if seen leaving.
        await self.health.watch_absent_agents()
        self.webhooks.start()
        self._tasks.append(asyncio.create_task(self._flush_seen()))
        if self.upstream is not None:
            await self.upstream.start()
        log.info(
            "hub ready: %d printers, %d unfinished jobs, data in %s",
            len(self.printers),
            self.dispatcher.active_count(),
            self.settings.data_dir,
        )

    async def stop(self) -> None:
        if self.upstream is not None:
            await self.upstream.stop()
        if self.mirror is not None:
            self.mirror.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.health.stop()
        await self.webhooks.stop()
        await self.dispatcher.stop()
        await self.registry.stop()
        await self.coalescer.close()
        await asyncio.to_thread(self.db.close)

    # -- credentials ----------------------------------------------------------------

    def verify_token(self, token: Any) -> auth.Principal:
        assert self.tokens is not None
        return self.tokens.verify(token)

    async def create_license(
        self, *, branch_id: int | None = None, label: str | None = None
    ) -> str:
        key = auth.new_license_key()
        branch = branch_id or self.branch_id
        await self.db.write(
            lambda d: tenants.insert_license(
                d,
                key_hash=auth.hash_license_key(key),
                key_prefix=auth.license_prefix(key),
                company_id=self.company_id,
                branch_id=branch,
                label=label,
            )
        )
        return key

    # -- lookups --------------------------------------------------------------------

    def printer_for(self, principal: auth.Principal, printer_id: Any) -> dict[str, Any]:
        if isinstance(printer_id, bool) or not isinstance(printer_id, int):
            raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "printer_id must be an integer")
        row = self.printers.get(printer_id)
        if row is None or not principal.sees(row):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {printer_id} not found")
        return row

    def agent_for_printer(self, row: dict[str, Any]) -> AgentLink | None:
        agent_id = row.get("agent_id")
        link = self.agents.get(agent_id) if agent_id is not None else None
        if link is None or row["id"] not in link.printer_ids:
            return None
        return link

    def printer_view(self, row: dict[str, Any]) -> dict[str, Any]:
        record = printer_record(row)
        record["queue"] = self.dispatcher.depth(row["id"])
        record["agent_connected"] = self.agent_for_printer(row) is not None
        return record

    # -- broadcasts -------------------------------------------------------------------

    async def operator_rooms(self, principal: auth.Principal) -> list[str]:
        """The rooms an operator joins: its company's, or those of its branches that
        belong to its company (a branch id of another company gets it nothing)."""
        if principal.branch_ids is None:
            return [f"company_{principal.company_id}"]
        company_id = principal.company_id
        branches = await self.db.read(lambda d: tenants.list_branches(d, company_id))
        owned = {b["id"] for b in branches}
        return [f"branch_{b}" for b in principal.branch_ids if b in owned]

    async def join_branch_rooms(self, branch_id: int, company_id: int) -> None:
        """A branch just became known: operators already connected who may see it
        join its room."""
        for sid, principal in list(self.operators.items()):
            if (
                principal.company_id == company_id
                and principal.branch_ids is not None
                and branch_id in principal.branch_ids
            ):
                room = f"branch_{branch_id}"
                if sid in self.batched_operators:
                    room = batched_rooms([room])[0]
                await self.sio.enter_room(sid, room, namespace=Namespace.OPS)

    @staticmethod
    def rooms_for(record: dict[str, Any]) -> list[str]:
        rooms = [f"company_{record['company_id']}"]
        if record.get("branch_id") is not None:
            rooms.append(f"branch_{record['branch_id']}")
        return rooms

    def count_answer(self, namespace: str) -> Any:
        """A guarded-handler hook that counts events in and error answers."""
        events_in, errors = self.metrics.events_in, self.metrics.errors

        def on_answer(event: str, ack: dict[str, Any]) -> None:
            events_in.labels(namespace, event).inc()
            if not ack.get("ok", True):
                errors.labels(str(ack.get("error", {}).get("code"))).inc()

        return on_answer

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def emit(
        self,
        event: str,
        data: dict[str, Any],
        *,
        to: str | list[str],
        namespace: str,
        callback: Any = None,
    ) -> None:
        """Every event the hub sends goes through here (or :meth:`call`): it is counted."""
        self.metrics.count_out(namespace, event)
        await self.sio.emit(event, data, to=to, namespace=namespace, callback=callback)

    async def call(
        self, event: str, data: dict[str, Any], *, to: str, namespace: str, timeout: float
    ) -> Any:
        """Send an event and wait for its ack (counted like :meth:`emit`)."""
        self.metrics.count_out(namespace, event)
        return await self.sio.call(event, data, to=to, namespace=namespace, timeout=timeout)

    async def broadcast(self, event: str, record: dict[str, Any]) -> None:
        """Send ``event`` to the operators allowed to see ``record``; printer and job
        updates go through the coalescer to operators that asked for batches."""
        if self.upstream is not None:
            self.upstream.poke()  # the change is in the outbox too: send it soon
        rooms = self.rooms_for(record)
        if event in BATCHED_EVENTS:
            if self.batched_operators:
                self.coalescer.add(event, rooms, record)
            to = self._occupied(rooms)
        else:
            to = self._occupied(rooms + batched_rooms(rooms))
        await self._send(event, record, to)

    async def _send(self, event: str, record: dict[str, Any], to: list[str]) -> None:
        if not to:
            return  # nobody to tell: skip encoding the packet at all
        try:
            await self.emit(event, record, to=to, namespace=Namespace.OPS)
        except Exception:  # a broken client socket must not break the caller
            log.exception("broadcast of %s failed", event)

    def _occupied(self, rooms: list[str]) -> list[str]:
        """The rooms that have someone in them (python-socketio encodes a packet even
        for an empty room; at a thousand jobs a second that is worth skipping)."""
        members = self.sio.manager.rooms.get(Namespace.OPS, {})
        return [room for room in rooms if members.get(room)]

    async def _emit_batch(self, event: str, rooms: list[str], payload: dict[str, Any]) -> None:
        await self.emit(event, payload, to=rooms, namespace=Namespace.OPS)

    def _batched_printer_view(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["id"] in self._whole_printer_due:
            self._whole_printer_due.discard(row["id"])
            return self.printer_view(row)
        view = self.printer_view(row)
        return {k: view[k] for k in PRINTER_STATUS_FIELDS}

    async def printer_changed(self, row: dict[str, Any], *, status_only: bool = False) -> None:
        """Record a printer's new state, tell operators, then react: alerts, failover.
        ``status_only``: only its status, flags and times changed (a status report)."""
        old = self.printers.get(row["id"])
        self.printers[row["id"]] = row
        if self.upstream is not None:
            self.upstream.poke()
        rooms = self.rooms_for(row)
        if self.batched_operators:
            # Rendered when the batch goes out: only the latest state of a busy printer,
            # and only its status fields when nothing else changed since the last batch.
            if not status_only:
                self._whole_printer_due.add(row["id"])
            view = functools.partial(self._batched_printer_view, row)
            self.coalescer.add_lazy(HubEvent.PRINTER_UPDATE, rooms, row["id"], view)
        plain = self._occupied(rooms)
        if plain:
            await self._send(HubEvent.PRINTER_UPDATE, self.printer_view(row), plain)
        if old is None or old["status"] != row["status"]:
            await self.alerts.printer_status(row)
        await self.router.health_changed(old, row)
        if old is not None and old["paused"] and not row["paused"]:
            link = self.agent_for_printer(row)
            if link is not None:
                await self.dispatcher.printer_attached(link, row["id"])

    def printer_seen(self, row: dict[str, Any]) -> None:
        """A status report that changed nothing: batched into ``printers:seen``."""
        self._seen.setdefault((row["company_id"], row["branch_id"]), set()).add(row["id"])

    async def _flush_seen(self, interval: float = 10.0) -> None:
        while True:
            await asyncio.sleep(interval)
            pending, self._seen = self._seen, {}
            now = time.time()
            seen = {
                pid: self.printers[pid]["last_seen"] or now
                for ids in pending.values()
                for pid in ids
                if pid in self.printers
            }
            if seen:
                self.db.write_soon(
                    lambda d, seen=seen: printer_store.mark_seen(d, seen),  # type: ignore[misc]
                    what="printer last-seen times",
                )
            for (company_id, branch_id), ids in pending.items():
                await self.broadcast(
                    HubEvent.PRINTERS_SEEN,
                    {
                        "company_id": company_id,
                        "branch_id": branch_id,
                        "at": now,
                        "printer_ids": sorted(ids),
                    },
                )

    async def job_changed(self, row: dict[str, Any]) -> None:
        await self.broadcast(HubEvent.JOB_UPDATE, job_record(row))

    async def agent_changed(self, row: dict[str, Any]) -> None:
        await self.broadcast(HubEvent.AGENT_UPDATE, agent_record(row))

    # -- agent links ------------------------------------------------------------------

    async def attach_agent(self, link: AgentLink) -> None:
        old = self.agents.get(link.agent_id)
        self.agents[link.agent_id] = link
        self.agent_by_sid[link.sid] = link
        if old is not None and old.sid != link.sid:
            # The same device connected again before its old socket timed out.
            self.agent_by_sid.pop(old.sid, None)
            log.info("agent %s reconnected; closing its previous connection", link.agent_id)
            await self.sio.disconnect(old.sid, namespace=Namespace.AGENT)

    async def detach_agent(self, sid: str) -> None:
        link = self.agent_by_sid.pop(sid, None)
        if link is None or self.agents.get(link.agent_id) is not link:
            return
        del self.agents[link.agent_id]
        log.info("agent %s disconnected", link.agent_id)
        for pending in list(self.registry._pending.values()):
            if pending.resolved_at is None and pending.meta.get("agent_id") == link.agent_id:
                self.registry.fail(
                    pending.correlation_id, ErrorCode.OFFLINE, "the agent disconnected"
                )
        agent = await self.db.write(lambda d: tenants.set_agent_disconnected(d, link.agent_id))
        changed = await self.db.write(
            lambda d: printer_store.mark_agent_printers_offline(d, link.agent_id)
        )
        for row in changed:
            await self.printer_changed(row)
        if agent is not None:
            await self.agent_changed(agent)

    async def job_row(self, job_id: int) -> dict[str, Any] | None:
        return await self.db.read(lambda d: job_store.get_job(d, job_id))
