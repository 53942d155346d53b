"""Printer updates for operators that asked for them in batches.

A dashboard does not need every status change of every printer as its own message:
it needs the latest state of each printer, promptly. An operator that connects with
``{"coalesce": true}`` in its auth joins the ``…:batched`` twin of each of its rooms
and receives ``printers:update {"printers": [...]}`` instead of ``printer:update``:
the first change after a quiet spell goes out at once, later ones are held for at
most ``window`` seconds and sent together, one entry per printer (its latest state).

This is what lets one hub feed a thousand dashboards while agents report thousands of
changes a second: the cost per operator is one message per window, not one per change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

BATCHED_SUFFIX = ":batched"

Emit = Callable[[list[str], list[dict[str, Any]]], Awaitable[None]]


def batched_rooms(rooms: list[str]) -> list[str]:
    return [room + BATCHED_SUFFIX for room in rooms]


#: What one batched message costs the hub per listening operator (measured with
#: ``pm bench fanout --profile``: python-socketio + aiohttp, about 50 us a socket).
SEND_COST_S = 50e-6
#: Share of the event loop that batched printer updates may take at most.
LOOP_BUDGET = 0.25
MAX_WINDOW_S = 1.0


class PrinterUpdateCoalescer:
    """``window`` is the shortest batching interval; with many listening operators it
    widens so that sending batches keeps within ``LOOP_BUDGET`` of the event loop
    (1,000 dashboards: 0.2 s), leaving the rest for ingest and requests."""

    def __init__(
        self, emit: Emit, *, window: float = 0.1, listeners: Callable[[], int] = lambda: 0
    ) -> None:
        self._emit = emit
        self.window = window
        self._listeners = listeners
        self._pending: dict[tuple[str, ...], dict[int, dict[str, Any]]] = {}
        self._timers: dict[tuple[str, ...], asyncio.TimerHandle] = {}
        self._last_sent: dict[tuple[str, ...], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, rooms: list[str], printer: dict[str, Any]) -> None:
        """Queue the latest state of ``printer`` for the batched twins of ``rooms``."""
        key = tuple(rooms)
        self._pending.setdefault(key, {})[printer["id"]] = printer
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_sent.get(key, 0.0) + self.current_window() - loop.time())
        self._timers[key] = loop.call_later(delay, self._flush, key)

    def current_window(self) -> float:
        by_load = self._listeners() * SEND_COST_S / LOOP_BUDGET
        return min(MAX_WINDOW_S, max(self.window, by_load))

    def _flush(self, key: tuple[str, ...]) -> None:
        self._timers.pop(key, None)
        printers = self._pending.pop(key, None)
        if not printers:
            return
        self._last_sent[key] = asyncio.get_running_loop().time()
        task = asyncio.ensure_future(self._send(list(key), list(printers.values())))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, rooms: list[str], printers: list[dict[str, Any]]) -> None:
        try:
            await self._emit(batched_rooms(rooms), printers)
        except Exception:  # a broken client socket must not stop later batches
            log.exception("batched printer update failed")

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
