"""Socket.IO across processes: python-socketio's Redis manager with this hub's fast
local delivery, and a channel for what the processes tell each other.

An emit to a room is delivered here the way :class:`~pm_hub.room_manager.
BroadcastManager` does it (packets straight onto each socket's queue, a hundred at a
time) and published on Redis; every other process delivers it to its own sockets
the same way. An emit to one of this process's own sockets stays here; one to a
socket held by another process (a call to a branch link, with its ack) goes through
Redis and its answer comes back the same way, which is python-socketio's own
protocol.

The same channel carries the hub's messages (``pm:<kind>``, see :meth:`tell` and
:meth:`on`): a change applied by one company-hub process, a branch link that came
or went. They are sent in the order they were told, by one writer that pipelines
whatever is waiting into one round trip.

While Redis is away, nothing is queued for later: what was told is dropped (and
counted) and the processes catch up when they hear each other again (the
``on_resubscribed`` hook; ``pm_hub.company.peers`` reloads from the database).
Anyone who can publish on this channel can send events to every client, as with
any python-socketio Redis setup: keep Redis on a private network, with a password
(``redis://:secret@host``) or TLS (``rediss://``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import socketio
from redis import asyncio as aioredis

from pm_hub.room_manager import BroadcastManager

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

#: Messages waiting for the writer; past this (Redis slower than the hub) new ones are
#: dropped and counted, like messages told while Redis is away.
MAX_WAITING = 20_000
#: Longest wait between two attempts to reach Redis again.
RETRY_MAX_S = 1.0
PREFIX = "pm:"


class RedisRoomManager(socketio.AsyncRedisManager, BroadcastManager):
    name = "printermaster-redis"

    def __init__(self, url: str, *, channel: str = "printermaster") -> None:
        socketio.AsyncRedisManager.__init__(
            self,
            url=url,
            channel=channel,
            redis_options={"socket_connect_timeout": 2.0, "health_check_interval": 10},
        )
        self._handlers: dict[str, Handler] = {}
        self._outbox: asyncio.Queue[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._publisher: aioredis.Redis | None = None
        self._subscribed: asyncio.Event | None = None
        self._times_subscribed = 0
        self._reachable = True
        #: Called (as a task) when the channel is heard again after Redis was away.
        self.on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None = None
        #: Messages dropped because Redis was away or too slow.
        self.dropped = 0
        self.published = 0

    # -- the hub's own messages -------------------------------------------------------

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(body)`` for each ``kind`` message another process tells."""
        self._handlers[PREFIX + kind] = handler

    async def tell(self, kind: str, body: dict[str, Any]) -> None:
        """Tell the other processes (never waits for Redis)."""
        await self._publish({"method": PREFIX + kind, "host_id": self.host_id, "body": body})

    @property
    def reachable(self) -> bool:
        """Whether the last attempt to reach Redis worked."""
        return self._reachable

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        """Start listening and wait until the channel is subscribed, so that nothing
        told after this returns is missed."""
        self._subscribed = asyncio.Event()
        self._outbox = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())
        self.server.manager_initialized = True
        self.initialize()  # starts python-socketio's listening task (self._thread)
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise OSError(f"cannot reach Redis at {_safe(self.redis_url)}") from None

    async def stop(self) -> None:
        for task in (self._writer, getattr(self, "thread", None)):
            if isinstance(task, asyncio.Task):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._writer = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    # -- sending ------------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        namespace = namespace or "/"
        if isinstance(room, str) and self.is_connected(room, namespace):
            kwargs["ignore_queue"] = True  # one of this process's sockets: no one else has it
        await super().emit(
            event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback,
            **kwargs,
        )  # fmt: skip

    async def _publish(self, data: Any) -> None:
        if self._outbox is None:
            return
        if self._outbox.qsize() >= MAX_WAITING:
            self.dropped += 1
            return
        self._outbox.put_nowait(self.json.dumps(data))

    async def _write_loop(self) -> None:
        assert self._outbox is not None
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 1000:
                batch.append(self._outbox.get_nowait())
            try:
                if self._publisher is None:
                    self._publisher = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for text in batch:
                        pipe.publish(self.channel, text)
                    await pipe.execute()
                self.published += len(batch)
                self._reachable = True
            except Exception as exc:  # Redis away: drop, the peers catch up when it is back
                self.dropped += len(batch)
                if self._reachable:
                    log.warning(
                        "cannot publish to Redis (%s); messages are dropped until it is back", exc
                    )
                self._reachable = False
                publisher, self._publisher = self._publisher, None
                if publisher is not None:
                    await publisher.aclose(close_connection_pool=True)
                await asyncio.sleep(0.2)

    # -- receiving ----------------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict[str, Any]]:
        retry = 0.1
        while True:
            client = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._times_subscribed += 1
                retry = 0.1
                if self._times_subscribed > 1:
                    log.warning("Redis is back: listening to the other hub processes again")
                    if self.on_resubscribed is not None:
                        task = asyncio.create_task(self.on_resubscribed())
                        task.add_done_callback(_log_failure)
                if self._subscribed is not None:
                    self._subscribed.set()
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "lost Redis at %s (%s); trying again in %.1f s",
                    _safe(self.redis_url), exc, retry,
                )  # fmt: skip
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose(close_connection_pool=True)
                except Exception:
                    log.debug("closing the Redis subscription failed", exc_info=True)
            await asyncio.sleep(retry)
            retry = min(retry * 2, RETRY_MAX_S)

    async def _listen(self) -> AsyncIterator[Any]:
        channel = self.channel.encode("utf-8")
        async for message in self._redis_listen_with_retries():
            if message.get("channel") != channel or message.get("type") != "message":
                continue
            try:
                data = self.json.loads(message["data"])
            except (ValueError, TypeError, KeyError):
                continue
            if not isinstance(data, dict):
                continue
            method = data.get("method")
            if isinstance(method, str) and method.startswith(PREFIX):
                if data.get("host_id") != self.host_id:
                    await self._dispatch(method, data)
                continue
            yield data  # Socket.IO's own: python-socketio handles it

    async def _dispatch(self, method: str, data: dict[str, Any]) -> None:
        handler = self._handlers.get(method)
        body = data.get("body")
        if handler is None or not isinstance(body, dict):
            return
        body["host_id"] = data.get("host_id")
        started = time.perf_counter()
        try:
            await handler(body)
        except Exception:  # one bad message must not stop the listener
            log.exception("handling %s from another hub process failed", method)
        spent = time.perf_counter() - started
        if spent > 0.5:
            log.warning("handling %s took %.2f s", method, spent)


def _safe(url: str) -> str:
    """A Redis URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("catching up with the other hub processes failed", exc_info=task.exception())
