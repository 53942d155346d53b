"""Alert notifications out: every alert change POSTed as JSON to the configured
URLs, with a timeout and retries (1 s, 2 s, 4 s ...) so a branch can page someone.

Deliveries are queued in memory per URL and sent in order; a receiver that is
down delays only its own queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class WebhookNotifier:
    def __init__(self, urls: list[str], *, timeout: float = 5.0, attempts: int = 5) -> None:
        self.urls = [u for u in urls if u]
        self.timeout = timeout
        self.attempts = attempts
        self.sent = 0
        self.failed = 0
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if not self.urls:
            return
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "PrinterMaster-hub"},
        )
        for url in self.urls:
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
            self._queues[url] = queue
            self._tasks.append(asyncio.create_task(self._deliver(url, queue)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def notify(self, event: str, alert: Mapping[str, Any]) -> None:
        for url, queue in self._queues.items():
            try:
                queue.put_nowait({"event": event, "alert": alert})
            except asyncio.QueueFull:
                self.failed += 1
                log.error("webhook %s: queue full, dropping %s", url, event)

    async def _deliver(self, url: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        assert self._session is not None
        while True:
            body = await queue.get()
            delay = 1.0
            for attempt in range(1, self.attempts + 1):
                try:
                    async with self._session.post(url, json=body) as resp:
                        if resp.status < 300:
                            self.sent += 1
                            break
                        problem = f"HTTP {resp.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    problem = str(exc) or type(exc).__name__
                if attempt == self.attempts:
                    self.failed += 1
                    log.error(
                        "webhook %s: giving up on %s after %d tries (%s)",
                        url,
                        body["event"],
                        attempt,
                        problem,
                    )
                    break
                log.warning("webhook %s: %s; retrying in %.0f s", url, problem, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
