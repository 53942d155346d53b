"""Alert notifications out: every alert change POSTed as JSON to the configured
URLs, with a timeout and retries (1 s, 2 s, 4 s ...) so a branch can page someone.

Deliveries are queued in memory per URL and sent in order; a receiver that is
down delays only its own queue.

Every POST is signed, so a receiver can tell it from anyone else's: the headers
``X-PrinterMaster-Timestamp: T`` (Unix seconds) and ``X-PrinterMaster-Signature:
sha256=HEX``, HEX being HMAC-SHA256 with the webhook secret of ``"T." + body``
(the exact bytes sent). A receiver recomputes it, compares in constant time and
refuses a timestamp more than five minutes old (docs/security.md has the code).
The secret is ``webhook_secret`` (or ``webhook_secret_file``), else one made once
into the data dir (``webhook-secret``, 0600) and named in the log at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from pm_core.private_files import write_private

log = logging.getLogger(__name__)


SECRET_FILE = "webhook-secret"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-PrinterMaster-Signature`` value of a delivery."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_text().strip().encode()
    value = secrets.token_hex(32)
    write_private(path, value + "\n")
    log.warning("webhooks are signed with the secret in %s (give it to the receivers)", path)
    return value.encode()


class WebhookNotifier:
    def __init__(
        self,
        urls: list[str],
        *,
        timeout: float = 5.0,
        attempts: int = 5,
        secret: str | None = None,
        secret_file: Path | None = None,
    ) -> None:
        self.urls = [u for u in urls if u]
        self._secret_given = secret
        self._secret_file = secret_file
        #: What deliveries are signed with (set at :meth:`start`).
        self.secret = b""
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
        if self._secret_given:
            self.secret = self._secret_given.encode()
        elif self._secret_file is not None:
            self.secret = load_or_create_secret(self._secret_file)
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
            data = json.dumps(body, separators=(",", ":"), default=str).encode()
            delay = 1.0
            for attempt in range(1, self.attempts + 1):
                stamp = int(time.time())  # per attempt: a retry is not a stale replay
                headers = {
                    "Content-Type": "application/json",
                    "X-PrinterMaster-Timestamp": str(stamp),
                    "X-PrinterMaster-Signature": sign(self.secret, stamp, data),
                }
                try:
                    async with self._session.post(url, data=data, headers=headers) as resp:
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
