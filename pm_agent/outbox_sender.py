"""Delivering what the agent owes the hub: the spool's outbox (job status changes and
results, written in the same transaction as the change) is sent in order whenever
the link is up, and an entry leaves the outbox only when the hub acknowledged it
(or refused it for good: an unknown job, a forbidden or malformed entry, which
sending again would not change). Anything else waits for the next round."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pm_agent.hub_connection import HubConnection
from pm_agent.spool import JobSpool
from pm_core.protocol import ErrorCode

log = logging.getLogger(__name__)

#: Entries sent per round (their acks are awaited together).
BATCH = 200
#: How long a round waits for the hub's acks before leaving the rest for later.
ACK_TIMEOUT = 15.0
#: A round runs at least this often even if nobody wakes the sender.
IDLE_ROUND = 5.0
#: Refusals that sending again would not change: the entry is dropped.
FINAL_REFUSALS = (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.INVALID_PAYLOAD)


class OutboxSender:
    def __init__(self, spool: JobSpool, connection: HubConnection) -> None:
        self.spool = spool
        self.connection = connection
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was written to the outbox: send it now."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_ROUND)
            except TimeoutError:
                pass
            self._wake.clear()
            if self.connection.connected:
                try:
                    await self.flush()
                except Exception:
                    log.exception("outbox flush failed")

    async def flush(self) -> None:
        """Send the outbox, oldest first, until it is empty or an entry is not acked."""
        loop = asyncio.get_running_loop()
        while self.connection.connected:
            items = await self.spool.outbox(limit=BATCH)
            if not items:
                return
            futures: list[asyncio.Future[Any]] = []
            for item in items:
                fut: asyncio.Future[Any] = loop.create_future()

                def settle(*args: Any, f: asyncio.Future[Any] = fut) -> None:
                    if not f.done():
                        f.set_result(args[0] if args else None)

                await self.connection.emit(item.event, item.payload, callback=settle)
                futures.append(fut)
            done, _ = await asyncio.wait(futures, timeout=ACK_TIMEOUT)
            delivered = []
            for item, fut in zip(items, futures, strict=True):
                if fut not in done:
                    continue
                ack = fut.result()
                if isinstance(ack, dict) and (
                    ack.get("ok") or (ack.get("error") or {}).get("code") in FINAL_REFUSALS
                ):
                    if not ack.get("ok"):
                        log.warning("hub refused %s %s: %s", item.event, item.payload, ack)
                    delivered.append(item.id)
            await self.spool.outbox_done(delivered)
            if len(delivered) < len(items):
                return  # the rest waits for the next round (timeout or disconnect)
