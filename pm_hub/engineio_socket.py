"""What the hub changes in python-engineio's sockets (version-checked): a cheaper wait
in the websocket writer, and a bound on what waits for a client that does not read.

**The bound.** Everything the hub sends a client waits in that socket's queue until
the client reads it. A client that stops reading (a stalled dashboard, or someone
asking for a 1 MiB ticket eighty times and never reading the answers) would make the
queue, and the hub's memory, grow without end. So each socket counts the bytes that
wait for it; past ``client_buffer_bytes`` the hub drops them, aborts that
connection and logs one line: the client can reconnect and ask again, the others
never notice, and the memory comes back at once.

**The wait.**
Every message the hub sends on a websocket goes through ``AsyncSocket.poll``: the
socket's writer task waits there for the next packet with
``asyncio.wait_for(queue.get(), ping_interval + ping_timeout)``. On Python 3.11 that
creates a task and a timer for every single message; with a thousand dashboards and
thousands of agent acks a second it was a fifth of the hub's event loop
(``pm bench fanout --profile``).

On a websocket that timeout guards nothing: the socket's reader loop has its own
(it stops when the client has been silent for ``ping_interval + ping_timeout``) and,
whenever it stops, puts ``None`` on the queue so the writer ends. So for websocket
sockets this waits on the queue directly and takes what is already there without
waiting at all; long-polling sockets keep the library's own poll, timeout and all.
Packets, their order, cancellation and the end of the writer are unchanged.

Applied only to the python-engineio versions it was checked against (4.x, whose
``poll`` has this shape); any other version keeps its own code.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import metadata
from typing import Any

from engineio import async_socket, exceptions

log = logging.getLogger(__name__)

_original_poll = async_socket.AsyncSocket.poll
_original_send = async_socket.AsyncSocket.send
_original_websocket_handler = async_socket.AsyncSocket._websocket_handler
_installed = False
#: Bytes that may wait for one client before it is disconnected (``install`` sets it).
_buffer_limit = 16 * 1024 * 1024


def _size(pkt: Any) -> int:
    data = getattr(pkt, "data", None)
    return len(data) if isinstance(data, str | bytes) else 16


def _taken(self: Any, packets: list[Any]) -> None:
    """Packets left the queue for the wire: they no longer count against the bound."""
    waiting = getattr(self, "_pm_waiting", 0)
    if waiting:
        self._pm_waiting = max(0, waiting - sum(_size(p) for p in packets))


async def bounded_send(self: Any, pkt: Any) -> None:
    """``AsyncSocket.send`` that refuses to let a client's backlog grow past the bound."""
    waiting = getattr(self, "_pm_waiting", 0) + _size(pkt)
    if waiting > _buffer_limit and not (self.closed or self.closing):
        _drop_slow_client(self, waiting)
        return
    self._pm_waiting = waiting
    await _original_send(self, pkt)


def _drop_slow_client(self: Any, waiting: int) -> None:
    log.warning(
        "client %s is not reading: %d bytes wait for it (limit %d); disconnected",
        self.sid,
        waiting,
        _buffer_limit,
    )
    queue: asyncio.Queue[Any] = self.queue
    while not queue.empty():  # let go of what it would never read
        queue.get_nowait()
        queue.task_done()
    self._pm_waiting = 0
    abort_transport(self)  # the writer may be stuck sending to it: cut it loose
    task = asyncio.ensure_future(
        self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
    )
    _closing.add(task)
    task.add_done_callback(_closing.discard)


_closing: set[asyncio.Future[Any]] = set()


def abort_transport(socket: Any) -> None:
    """Close a websocket client's TCP connection at once, without the closing
    handshake a hostile or stalled client would never finish."""
    ws = getattr(socket, "_pm_ws", None)
    request = getattr(ws, "environ", {}).get("aiohttp.request") if ws is not None else None
    transport = getattr(request, "transport", None)
    if transport is not None:
        transport.abort()


async def remembering_websocket_handler(self: Any, ws: Any) -> Any:
    """The library's websocket handler, with the websocket kept on the socket (so a
    client over the bound can be cut off at the transport)."""
    self._pm_ws = ws
    return await _original_websocket_handler(self, ws)


async def websocket_poll(self: Any) -> list[Any]:
    """``AsyncSocket.poll`` for a socket upgraded to websocket: the packets waiting
    (at least one), ``[]`` when the socket is closing; ``QueueEmpty`` when cancelled."""
    if not self.upgraded:
        result: list[Any] = await _original_poll(self)
        _taken(self, result)
        return result
    queue: asyncio.Queue[Any] = self.queue
    try:
        first = queue.get_nowait() if not queue.empty() else await queue.get()
    except asyncio.CancelledError:
        raise exceptions.QueueEmpty() from None
    queue.task_done()
    if first is None:
        return []
    packets = [first]
    while not queue.empty():
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)  # the next poll ends the writer, as the library does
            break
        packets.append(pkt)
    _taken(self, packets)
    return packets


def supported(version: str) -> bool:
    return version.split(".")[0] == "4"


def install(*, buffer_limit: int | None = None) -> bool:
    """Use :func:`websocket_poll` and :func:`bounded_send` in this process (idempotent;
    ``buffer_limit`` bytes may wait for one client); False if this python-engineio is
    not one they were checked against."""
    global _installed, _buffer_limit
    if buffer_limit is not None:
        _buffer_limit = buffer_limit
    if _installed:
        return True
    version = metadata.version("python-engineio")
    if not supported(version):
        log.warning(
            "python-engineio %s: keeping its own socket code (no per-client bound)", version
        )
        return False
    async_socket.AsyncSocket.poll = websocket_poll
    async_socket.AsyncSocket.send = bounded_send
    async_socket.AsyncSocket._websocket_handler = remembering_websocket_handler
    _installed = True
    return True
