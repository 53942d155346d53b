"""Run the discovery sources together, merge what they find, and do it again
every N minutes when asked to."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from pm_agent.discovery.found import FoundPrinter, merge_found
from pm_agent.printer_uri import PrinterSpec
from pm_agent.task_control import cancel_tasks

log = logging.getLogger(__name__)


class DiscoverySource(Protocol):
    name: str

    async def discover(self) -> list[FoundPrinter]: ...


FoundCallback = Callable[[list[FoundPrinter]], Awaitable[None]]


class ConfiguredSource:
    """The printers the user listed (``--printer``): always there, always first."""

    name = "configured"

    def __init__(self, specs: Sequence[PrinterSpec]) -> None:
        self.specs = list(specs)

    async def discover(self) -> list[FoundPrinter]:
        return [
            FoundPrinter(uri=spec.uri, kind=spec.kind, source=self.name, name=spec.name)
            for spec in self.specs
        ]


class Discovery:
    """All sources at once (each on its own; one failing does not stop the others),
    merged into one list, handed to ``on_found``; again every ``interval`` seconds."""

    def __init__(
        self,
        sources: Sequence[DiscoverySource],
        *,
        interval: float | None = None,
        on_found: FoundCallback | None = None,
    ) -> None:
        self.sources = list(sources)
        self.interval = interval if interval and interval > 0 else None
        self.on_found = on_found
        self.last: list[FoundPrinter] = []
        self.last_run: float | None = None
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    async def _one(self, source: DiscoverySource) -> list[FoundPrinter]:
        started = time.monotonic()
        try:
            found = await source.discover()
        except Exception:
            log.exception("discovery source %s failed", source.name)
            return []
        log.debug("discovery %s: %d in %.2fs", source.name, len(found), time.monotonic() - started)
        return found

    async def run_once(self) -> list[FoundPrinter]:
        results = await asyncio.gather(*(self._one(s) for s in self.sources))
        merged = merge_found(*results)
        self.last, self.last_run = merged, time.time()
        self.runs += 1
        if self.on_found is not None:
            try:
                await self.on_found(merged)
            except Exception:
                log.exception("handling discovered printers failed")
        return merged

    def start(self) -> None:
        if self._task is None and self.sources:
            self._task = asyncio.create_task(self._loop(), name="agent:discovery")

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            if self.interval is None:
                return
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_tasks([task])
