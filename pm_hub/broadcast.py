"""Everything the hub sends: the Socket.IO server, the operator rooms, broadcasts of
changes (one event per change, or batched by ``pm_hub.coalesce`` for operators that
asked), the ``printers:seen`` flush, and the count of every event out.

It only tells: what a change means for alerts, failover or redelivery is decided by
the reactions ``pm_hub.wiring`` subscribes to ``pm_hub.printer_changes``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pm_core.database import Database
from pm_core.logs import start_background, uncorrelated
from pm_core.protocol import HubEvent, Namespace
from pm_core.protocol.records import PrinterStatusEntry
from pm_hub import engineio_socket
from pm_hub.admission import Admission
from pm_hub.auth import Principal
from pm_hub.coalesce import BATCHED_EVENTS, UpdateCoalescer, batched_rooms
from pm_hub.config import HubSettings
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.metrics import HubMetrics
from pm_hub.printer_views import PrinterViews, status_entry
from pm_hub.room_manager import BroadcastManager
from pm_hub.socket_server import HubSocketServer
from pm_hub.store import printers as printer_store
from pm_hub.store import tenants
from pm_hub.store.records import agent_record, job_record

if TYPE_CHECKING:
    from pm_hub.redis_rooms import RedisRoomManager

log = logging.getLogger(__name__)

#: What another process may ask this one to broadcast (the /ops room events).
ROOM_EVENTS = frozenset(
    {
        HubEvent.PRINTER_UPDATE,
        HubEvent.PRINTERS_SEEN,
        HubEvent.JOB_UPDATE,
        HubEvent.AGENT_UPDATE,
        HubEvent.HEALTH_ALERT,
        HubEvent.ALERT_UPDATE,
        HubEvent.BRANCH_UPDATE,
    }
)

#: How often the printers that reported an unchanged status are announced.
SEEN_INTERVAL_S = 10.0


def rooms_for(record: Mapping[str, Any]) -> list[str]:
    """The rooms of the operators allowed to see ``record``."""
    rooms = [f"company_{record['company_id']}"]
    if record.get("branch_id") is not None:
        rooms.append(f"branch_{record['branch_id']}")
    return rooms


class Broadcaster:
    def __init__(
        self,
        settings: HubSettings,
        *,
        state: LiveState,
        db: Database,
        metrics: HubMetrics,
        views: PrinterViews,
        admission: Admission,
    ) -> None:
        engineio_socket.install(buffer_limit=settings.client_buffer_bytes)
        manager: BroadcastManager = BroadcastManager()
        #: The other hub processes, when several serve a company (None when alone).
        self.peers: RedisRoomManager | None = None
        if settings.redis_url:
            from pm_hub.redis_rooms import RedisRoomManager

            manager = self.peers = RedisRoomManager(
                settings.redis_url, channel=settings.redis_channel
            )
        self.sio = HubSocketServer(
            admission=admission,
            async_mode="aiohttp",
            client_manager=manager,
            # Browsers may connect only from the allowed origins (none by default:
            # python-engineio then takes the hub's own origin only). Programs send no
            # Origin and are not affected.
            cors_allowed_origins=settings.origins or None,
            max_http_buffer_size=settings.max_payload_bytes,
            logger=False,
            engineio_logger=False,
            ping_interval=20,
            ping_timeout=20,
        )
        self.state = state
        self.db = db
        self.metrics = metrics
        self.views = views
        #: Called after every change sent (the upstream link's poke: the change is in
        #: its outbox too, send it soon).
        self.after_change: Callable[[], None] | None = None
        #: Operators that asked for batched printer updates (``coalesce: true``).
        self.batched_operators: set[str] = set()
        #: (room, printer) whose next batched entry must be whole (something besides
        #: status changed).
        self._whole_printer_due: set[tuple[str, int]] = set()
        self.coalescer = UpdateCoalescer(
            self._emit_batch,
            window=settings.update_batch_window_s,
            listeners=lambda: len(self.batched_operators),
        )
        self._seen: dict[tuple[int, int], set[int]] = {}
        self._seen_flusher: asyncio.Task[None] | None = None
        #: Printers whose ``queue`` changed since the last announcement of queues.
        self._queues_due: set[int] = set()
        self._queues_timer: asyncio.TimerHandle | None = None
        self._queue_tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._seen_flusher = start_background(self._flush_seen())
        if self.peers is not None:
            self.peers.on("broadcast", self._heard_broadcast)

    async def stop(self) -> None:
        if self._seen_flusher is not None:
            self._seen_flusher.cancel()
            await asyncio.gather(self._seen_flusher, return_exceptions=True)
            self._seen_flusher = None
        if self._queues_timer is not None:
            self._queues_timer.cancel()
            self._queues_timer = None
        self._queues_due.clear()
        if self._queue_tasks:
            await asyncio.gather(*self._queue_tasks, return_exceptions=True)
        await self.coalescer.close()

    # -- rooms ------------------------------------------------------------------------

    async def operator_rooms(self, principal: Principal) -> list[str]:
        """The rooms an operator joins: its company's, or those of its branches that
        belong to its company (a branch id of another company gets it nothing)."""
        if principal.branch_ids is None:
            return [f"company_{principal.company_id}"]
        company_id = principal.company_id
        branches = await self.db.read(lambda d: tenants.list_branches(d, company_id))
        owned = {b["id"] for b in branches}
        return [f"branch_{b}" for b in principal.branch_ids if b in owned]

    async def operator_joined(self, sid: str, principal: Principal, *, batched: bool) -> None:
        """Put a connected operator in its rooms (their batched twins if it asked)."""
        rooms = await self.operator_rooms(principal)
        if batched:
            rooms = batched_rooms(rooms)  # printer updates arrive as printers:update
            self.batched_operators.add(sid)
        for room in rooms:
            await self.sio.enter_room(sid, room, namespace=Namespace.OPS)

    def operator_left(self, sid: str) -> None:
        self.batched_operators.discard(sid)

    async def join_branch_rooms(self, branch_id: int, company_id: int) -> None:
        """A branch just became known: operators already connected who may see it
        join its room."""
        for sid, principal in list(self.state.operators.items()):
            if (
                principal.company_id == company_id
                and principal.branch_ids is not None
                and branch_id in principal.branch_ids
            ):
                room = f"branch_{branch_id}"
                if sid in self.batched_operators:
                    room = batched_rooms([room])[0]
                await self.sio.enter_room(sid, room, namespace=Namespace.OPS)

    def _occupied(self, rooms: list[str]) -> list[str]:
        """The rooms that have someone in them (python-socketio encodes a packet even
        for an empty room; at a thousand jobs a second that is worth skipping)."""
        members = self.sio.manager.rooms.get(Namespace.OPS, {})
        return [room for room in rooms if members.get(room)]

    # -- sending ----------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        to: str | list[str],
        namespace: str,
        callback: Any = None,
        here_only: bool = False,
    ) -> None:
        """Every event the hub sends goes through here (or :meth:`call`): it is counted.
        ``here_only``: to this process's sockets in ``to`` (with several processes, each
        tells its own operators; see :meth:`broadcast`)."""
        self.metrics.count_out(namespace, event)
        await self.sio.emit(
            event, data, to=to, namespace=namespace, callback=callback, ignore_queue=here_only
        )

    async def call(
        self, event: str, data: Mapping[str, Any], *, to: str, namespace: str, timeout: float
    ) -> Any:
        """Send an event and wait for its ack (counted like :meth:`emit`)."""
        self.metrics.count_out(namespace, event)
        return await self.sio.call(event, data, to=to, namespace=namespace, timeout=timeout)

    async def broadcast(self, event: str, record: Mapping[str, Any]) -> None:
        """Send ``event`` to the operators allowed to see ``record``, on every process
        serving the company; printer and job updates go through the coalescer to
        operators that asked for batches."""
        if self.peers is not None:
            await self.peers.tell("broadcast", {"event": event, "record": dict(record)})
        await self.broadcast_local(event, record)

    async def _heard_broadcast(self, body: dict[str, Any]) -> None:
        event, record = body.get("event"), body.get("record")
        if (
            event in ROOM_EVENTS
            and isinstance(record, dict)
            and isinstance(record.get("company_id"), int)
        ):
            await self.broadcast_local(event, record)

    async def broadcast_local(self, event: str, record: Mapping[str, Any]) -> None:
        """:meth:`broadcast` to this process's operators only (each process follows a
        company's mirror and tells its own: ``pm_hub.company.mirror``)."""
        if self.after_change is not None:
            self.after_change()
        rooms = rooms_for(record)
        if event in BATCHED_EVENTS:
            if self.batched_operators:
                self.coalescer.add(event, rooms, record)
            to = self._occupied(rooms)
        else:
            to = self._occupied(rooms + batched_rooms(rooms))
        await self._send(event, record, to)

    async def _send(self, event: str, record: Mapping[str, Any], to: list[str]) -> None:
        if not to:
            return  # nobody to tell: skip encoding the packet at all
        try:
            await self.emit(event, record, to=to, namespace=Namespace.OPS, here_only=True)
        except Exception:  # a broken client socket must not break the caller
            log.exception("broadcast of %s failed", event)

    async def _emit_batch(self, event: str, rooms: list[str], payload: dict[str, Any]) -> None:
        await self.emit(event, payload, to=rooms, namespace=Namespace.OPS, here_only=True)

    # -- what changed -----------------------------------------------------------------

    async def printer_update(self, row: PrinterRow, *, status_only: bool = False) -> None:
        """Tell operators a printer's new state. ``status_only``: only its status, flags
        and times changed (a status report)."""
        if self.after_change is not None:
            self.after_change()
        whole = functools.partial(self.views.whole, row)
        await self._printer_changed(rooms_for(row), row["id"], whole, status_only)

    async def printer_view_update(self, view: Mapping[str, Any], *, status_only: bool) -> None:
        """:meth:`printer_update` for a printer whose view is made already (a company's
        mirror), to this process's operators."""
        await self._printer_changed(rooms_for(view), view["id"], lambda: view, status_only)

    async def _printer_changed(
        self,
        rooms: list[str],
        printer_id: int,
        whole: Callable[[], Mapping[str, Any]],
        status_only: bool,
    ) -> None:
        if self.batched_operators:
            # Rendered when the batch goes out: only the latest state of a busy printer,
            # and only its status fields when nothing else changed since the room's last
            # batch.
            if not status_only:
                self._whole_printer_due.update((room, printer_id) for room in rooms)
            entry = functools.partial(self._batched_printer_entry, printer_id, whole)
            self.coalescer.add_lazy(HubEvent.PRINTER_UPDATE, rooms, printer_id, entry)
        plain = self._occupied(rooms)
        if plain:
            await self._send(HubEvent.PRINTER_UPDATE, whole(), plain)

    def _batched_printer_entry(
        self, printer_id: int, whole: Callable[[], Mapping[str, Any]], room: str
    ) -> Mapping[str, Any]:
        view = whole()
        if (room, printer_id) in self._whole_printer_due:
            self._whole_printer_due.discard((room, printer_id))
            return view
        entry: PrinterStatusEntry = status_entry(view)
        return entry

    def queue_changed(self, printer_id: int) -> None:
        """A printer's count of unfinished jobs changed (a job came, finished, was
        cancelled, moved or expired): its operators hear the new ``queue`` within one
        batching window, as a status entry; many changes in a window make one update."""
        self._queues_due.add(printer_id)
        if self._queues_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # loading at start-up: the first printers:list tells it
            self._queues_due.clear()
            return
        self._queues_timer = loop.call_later(
            self.coalescer.window, self._announce_queues, context=uncorrelated()
        )

    def _announce_queues(self) -> None:
        self._queues_timer = None
        due, self._queues_due = self._queues_due, set()
        task = asyncio.ensure_future(self._send_queues(due))
        self._queue_tasks.add(task)
        task.add_done_callback(self._queue_tasks.discard)

    async def _send_queues(self, printer_ids: set[int]) -> None:
        for printer_id in sorted(printer_ids):
            row = self.state.printers.get(printer_id)
            if row is None:
                continue  # removed meanwhile
            whole = functools.partial(self.views.whole, row)
            try:
                await self._printer_changed(rooms_for(row), printer_id, whole, True)
            except Exception:
                log.exception("announcing the queue of printer %s failed", printer_id)

    def printer_seen(self, row: PrinterRow) -> None:
        """A status report that changed nothing: batched into ``printers:seen``."""
        self._seen.setdefault((row["company_id"], row["branch_id"]), set()).add(row["id"])

    async def _flush_seen(self, interval: float = SEEN_INTERVAL_S) -> None:
        while True:
            await asyncio.sleep(interval)
            printers = self.state.printers
            pending, self._seen = self._seen, {}
            now = time.time()
            seen = {
                pid: printers[pid]["last_seen"] or now
                for ids in pending.values()
                for pid in ids
                if pid in printers
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
