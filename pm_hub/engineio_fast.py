"""A cheaper wait in python-engineio's websocket writer (one method, version-checked).

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
_installed = False


async def websocket_poll(self: Any) -> list[Any]:
    """``AsyncSocket.poll`` for a socket upgraded to websocket: the packets waiting
    (at least one), ``[]`` when the socket is closing; ``QueueEmpty`` when cancelled."""
    if not self.upgraded:
        result: list[Any] = await _original_poll(self)
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
    return packets


def supported(version: str) -> bool:
    return version.split(".")[0] == "4"


def install() -> bool:
    """Use :func:`websocket_poll` in this process (idempotent); False if this
    python-engineio is not one it was checked against."""
    global _installed
    if _installed:
        return True
    version = metadata.version("python-engineio")
    if not supported(version):
        log.info("python-engineio %s: keeping its own websocket poll", version)
        return False
    async_socket.AsyncSocket.poll = websocket_poll
    _installed = True
    return True
