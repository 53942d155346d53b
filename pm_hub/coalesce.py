"""Printer and job updates for operators that asked for them in batches.

A dashboard does not need every change of every printer and job as its own message:
it needs the latest state of each, promptly. An operator that connects with
``{"coalesce": true}`` in its auth joins the ``…:batched`` twin of each of its rooms
and receives ``printers:update {"printers": [...]}`` and ``jobs:update {"jobs": [...]}``
instead of ``printer:update`` and ``job:update``: the first change after a quiet spell
goes out at once, later ones are held for at most one window and sent together, one
entry per printer or job (its latest state; a job's full trail stays in ``job:get``).

This is what lets one hub feed a thousand dashboards while agents report thousands of
changes a second: the cost per operator is one message per window, not one per change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pm_core.logs import uncorrelated
from pm_core.protocol import HubEvent

log = logging.getLogger(__name__)

BATCHED_SUFFIX = ":batched"

#: Which single-object events are batched, as (batch event, list field).
BATCHED_EVENTS = {
    HubEvent.PRINTER_UPDATE: (HubEvent.PRINTERS_UPDATE, "printers"),
    HubEvent.JOB_UPDATE: (HubEvent.JOBS_UPDATE, "jobs"),
    HubEvent.BRANCH_UPDATE: (HubEvent.BRANCHES_UPDATE, "branches"),
}

#: What one batched message costs the hub per listening operator (measured with
#: ``pm bench fanout --profile``: python-socketio + aiohttp, about 50 us a socket).
SEND_COST_S = 50e-6
#: Share of the event loop that batched updates may take at most.
LOOP_BUDGET = 0.25
MAX_WINDOW_S = 1.0

Emit = Callable[[str, list[str], dict[str, Any]], Awaitable[None]]


def batched_rooms(rooms: list[str]) -> list[str]:
    return [room + BATCHED_SUFFIX for room in rooms]


class UpdateCoalescer:
    """``window`` is the shortest batching interval; with many listening operators it
    widens so that sending batches stays within ``LOOP_BUDGET`` of the event loop
    (1,000 dashboards: 0.2 s), leaving the rest for ingest and requests."""

    def __init__(
        self, emit: Emit, *, window: float = 0.1, listeners: Callable[[], int] = lambda: 0
    ) -> None:
        self._emit = emit
        self.window = window
        self._listeners = listeners
        self._pending: dict[tuple[str, str], dict[int, Any]] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, event: str, rooms: list[str], record: Mapping[str, Any]) -> None:
        """Queue the latest state of ``record`` (a printer or job) for the batched twins
        of ``rooms``."""
        self.add_lazy(event, rooms, record["id"], record)

    def add_lazy(
        self,
        event: str,
        rooms: list[str],
        record_id: int,
        record: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
    ) -> None:
        """Like :meth:`add`; ``record`` may be a function of the room that builds it,
        called when the room's batch goes out (a printer changing 50 times in a window
        is rendered once). Each room has its batch: a company's operators get one
        message per window with the changes of every branch, not one per branch."""
        loop = asyncio.get_running_loop()
        for room in rooms:
            key = (event, room)
            self._pending.setdefault(key, {})[record_id] = record
            if key in self._timers:
                continue
            delay = max(0.0, self._last_sent.get(key, 0.0) + self.current_window() - loop.time())
            # The batch is every change of the window, not the request that opened it.
            self._timers[key] = loop.call_later(delay, self._flush, key, context=uncorrelated())

    def current_window(self) -> float:
        by_load = self._listeners() * SEND_COST_S / LOOP_BUDGET
        return min(MAX_WINDOW_S, max(self.window, by_load))

    def _flush(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)
        records = self._pending.pop(key, None)
        if not records:
            return
        self._last_sent[key] = asyncio.get_running_loop().time()
        event, room = key
        batch_event, field = BATCHED_EVENTS[event]
        entries = []
        for record in records.values():
            try:
                entries.append(record(room) if callable(record) else record)
            except Exception:  # one bad record must not lose the others' updates
                log.exception("building a %s entry failed", batch_event)
        payload = {field: entries}
        log.debug("%s to %s: %d changes", batch_event, room, len(entries))
        task = asyncio.ensure_future(self._send(batch_event, batched_rooms([room]), payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, event: str, rooms: list[str], payload: dict[str, Any]) -> None:
        try:
            await self._emit(event, rooms, payload)
        except Exception:  # a broken client socket must not stop later batches
            log.exception("batched %s failed", event)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
