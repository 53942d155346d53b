"""A lean Socket.IO v5 client (Engine.IO v4 over a websocket) for the load processes.

The benchmark opens thousands of connections from a few Python processes that share
the machine with the hub, so the load side must cost much less than the server side:
one aiohttp websocket and one reader task per connection, one shared
``ClientSession`` per process, JSON text packets only (no binary attachments, no
long-polling, no reconnection). The official ``socketio.AsyncClient`` speaks the same
wire format; the real agent (``pm_agent.agent.Agent``) uses it and the benchmark runs
that too where the figure is about the real agent.

Wire format, as python-socketio 5 writes it: Engine.IO ``0{open}`` / ``2`` ping /
``3`` pong / ``4<socket.io packet>``; Socket.IO ``0/ns,{auth}`` connect,
``2/ns,ID["event",data]`` event (``ID`` present when an ack is wanted) and
``3/ns,ID[data]`` ack, ``4/ns,{...}`` connect error, ``1/ns,`` disconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from pm_bench.procs import bench_ssl

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


class ConnectRefused(Exception):
    """The server answered the namespace connect with a connect error."""

    def __init__(self, data: Any) -> None:
        super().__init__(f"connection refused: {data!r}")
        self.data = data


class Disconnected(Exception):
    """The connection closed while a call waited for its ack."""


@dataclass
class Reply:
    """What an event handler answers: the ack, then events sent right after it (each
    asking for an ack, which is counted in ``follow_up_acks`` / ``follow_up_errors``)."""

    ack: Any = None
    then: list[tuple[str, Any]] = field(default_factory=list)


def new_session() -> aiohttp.ClientSession:
    """One session per process; unlimited connections (each websocket is one); over TLS
    trusting the run's own CA (``pm bench --tls``)."""
    connector = aiohttp.TCPConnector(
        limit=0, force_close=False, enable_cleanup_closed=False, ssl=bench_ssl()
    )
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


class SioClient:
    """One Socket.IO connection to one namespace."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        namespace: str,
        auth: dict[str, Any] | None,
        handlers: dict[str, Handler] | None = None,
        raw_handlers: dict[str, Callable[[str], None]] | None = None,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.auth = auth
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.connected = False
        self.acks_sent = 0
        self.follow_up_acks = 0
        self.follow_up_errors = 0
        self.on_close: Callable[[SioClient], None] | None = None
        self._prefix = "" if namespace == "/" else f"{namespace},"
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any] | Callable[[Any], None]] = {}
        #: Events handed over as the packet's text, undecoded (no ack): a load process
        #: that only needs a few numbers out of a large event skips parsing its JSON.
        self._raw = [
            (f'42{self._prefix}["{event}",', fn) for event, fn in (raw_handlers or {}).items()
        ]

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self, timeout: float = 15.0) -> SioClient:
        async with asyncio.timeout(timeout):
            ws = await self.session.ws_connect(
                f"{self.url}/socket.io/?EIO=4&transport=websocket",
                autoping=True,
                heartbeat=None,
                max_msg_size=0,
            )
            self._ws = ws
            try:
                first = await ws.receive()
                if first.type != aiohttp.WSMsgType.TEXT or not first.data.startswith("0"):
                    raise ConnectionError(f"no Engine.IO open packet: {first.type} {first.data!r}")
                auth = json.dumps(self.auth, separators=(",", ":")) if self.auth else ""
                await ws.send_str(f"40{self._prefix}{auth}")
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(f"closed during connect: {msg.type} {msg.extra!r}")
                    text: str = msg.data
                    if text == "2":
                        await ws.send_str("3")
                    elif text.startswith("40"):
                        break
                    elif text.startswith("44"):
                        raise ConnectRefused(self._decode(text[1:])[2])
            except BaseException:
                await ws.close()
                raise
        self.connected = True
        self._reader = asyncio.create_task(self._read_loop(ws))
        return self

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        self.connected = False
        if ws is not None and not ws.closed:
            try:
                await ws.send_str(f"41{self._prefix}")
            except Exception:
                pass
            await ws.close()
        if self._reader is not None and self._reader is not asyncio.current_task():
            await asyncio.gather(self._reader, return_exceptions=True)

    # -- sending -----------------------------------------------------------------------

    def _packet(self, kind: str, ack_id: int | None, data: Any) -> str:
        body = json.dumps(data, separators=(",", ":"))
        return f"{kind}{self._prefix}{'' if ack_id is None else ack_id}{body}"

    async def emit(self, event: str, data: Any = None) -> None:
        if self._ws is None:
            raise Disconnected(f"{self.namespace} is not connected")
        await self._ws.send_str(self._packet("42", None, [event, data]))

    async def call(self, event: str, data: Any = None, timeout: float = 15.0) -> Any:
        """Send an event and wait for its ack (the ack's first argument)."""
        if self._ws is None:
            raise Disconnected(f"{self.namespace} is not connected")
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ack_id] = future
        try:
            await self._ws.send_str(self._packet("42", ack_id, [event, data]))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(ack_id, None)

    async def emit_with_ack(self, event: str, data: Any, on_ack: Callable[[Any], None]) -> None:
        """Send an event asking for an ack, and hand the ack to ``on_ack`` when it comes."""
        if self._ws is None:
            raise Disconnected(f"{self.namespace} is not connected")
        ack_id = next(self._ids)
        self._pending[ack_id] = on_ack
        await self._ws.send_str(self._packet("42", ack_id, [event, data]))

    # -- receiving ---------------------------------------------------------------------

    def _decode(self, packet: str) -> tuple[str, int | None, Any]:
        """Split ``<type>[/ns,][id][json]`` into (type, ack id, data)."""
        kind, i = packet[0], 1
        if packet.startswith("/", 1):
            comma = packet.find(",", 1)
            i = len(packet) if comma < 0 else comma + 1
        j = i
        while j < len(packet) and packet[j].isdigit():
            j += 1
        ack_id = int(packet[i:j]) if j > i else None
        data = json.loads(packet[j:]) if j < len(packet) else None
        return kind, ack_id, data

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                text: str = msg.data
                head = text[:1]
                if self._raw and self._on_raw(text):
                    continue
                if head == "4":
                    await self._on_packet(ws, text[1:])
                elif head == "2":
                    await ws.send_str("3")
                elif head == "1":
                    break
        except Exception:
            log.debug("reader of %s failed", self.namespace, exc_info=True)
        finally:
            self.connected = False
            for pending in list(self._pending.values()):
                if isinstance(pending, asyncio.Future) and not pending.done():
                    pending.set_exception(Disconnected("connection closed"))
            self._pending.clear()
            if self.on_close is not None:
                self.on_close(self)

    def _on_raw(self, text: str) -> bool:
        for prefix, fn in self._raw:
            if text.startswith(prefix):
                fn(text)
                return True
        return False

    def _count_follow_up(self, ack: Any) -> None:
        if isinstance(ack, dict) and ack.get("ok"):
            self.follow_up_acks += 1
        else:
            self.follow_up_errors += 1

    async def _on_packet(self, ws: aiohttp.ClientWebSocketResponse, packet: str) -> None:
        kind, ack_id, data = self._decode(packet)
        if kind == "2" and isinstance(data, list) and data:
            handler = self.handlers.get(data[0])
            result: Any = None
            if handler is not None:
                result = handler(*data[1:])
                if isinstance(result, Awaitable):
                    result = await result
            reply = result if isinstance(result, Reply) else Reply(ack=result)
            if ack_id is not None:
                await ws.send_str(self._packet("43", ack_id, [reply.ack]))
                self.acks_sent += 1
            for event, payload in reply.then:
                follow_id = next(self._ids)
                self._pending[follow_id] = self._count_follow_up
                await ws.send_str(self._packet("42", follow_id, [event, payload]))
        elif kind == "3" and ack_id is not None:
            pending = self._pending.pop(ack_id, None)
            value = data[0] if isinstance(data, list) and data else None
            if isinstance(pending, asyncio.Future):
                if not pending.done():
                    pending.set_result(value)
            elif pending is not None:
                pending(value)
        elif kind == "1":
            await ws.close()


async def connect_all(
    clients: list[SioClient], *, concurrency: int = 32, timeout: float = 30.0
) -> tuple[int, list[str]]:
    """Connect every client, at most ``concurrency`` at a time; (connected, errors)."""
    gate = asyncio.Semaphore(max(1, concurrency))
    errors: list[str] = []

    async def one(client: SioClient) -> bool:
        async with gate:
            try:
                await client.connect(timeout)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return False
            return True

    results = await asyncio.gather(*(one(c) for c in clients))
    return sum(results), errors


async def close_all(clients: list[SioClient], *, concurrency: int = 200) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(client: SioClient) -> None:
        async with gate:
            try:
                await asyncio.wait_for(client.close(), 5)
            except Exception:
                pass

    await asyncio.gather(*(one(c) for c in clients))
