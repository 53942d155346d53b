"""python-socketio's client manager with a cheaper broadcast.

``socketio.AsyncManager.emit`` sends a room broadcast by creating one task per
recipient and waiting for all of them. Each of those tasks only puts the (already
encoded) packet on the recipient's Engine.IO queue, which never waits (the queue is
unbounded); a batch to a thousand dashboards paid for a thousand tasks to do that.
This manager puts the packets on the queues itself, a hundred recipients at a time
(with the loop answering in between) and one broadcast after the other; the
per-socket writers send them exactly as before. Everything else (rooms, acks, callbacks) is the
framework's own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

log = logging.getLogger(__name__)

#: Recipients queued before the loop gets a turn: a batch to a thousand dashboards goes
#: out in ten steps with incoming events (agent reports, requests) handled in between,
#: instead of holding them back behind the whole room (``pm bench fanout``: the last of
#: 1,000 operators has a change after ~50 ms at p99 instead of ~90 ms).
CHUNK = 100


class BroadcastManager(socketio.AsyncManager):
    def __init__(self) -> None:
        super().__init__()
        # One broadcast at a time puts its packets on the queues: a room that goes out
        # in steps must not let a later event overtake it at the recipients not yet
        # reached (each operator gets the hub's events in the order they were sent).
        self._sending = asyncio.Lock()

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:  # every recipient needs its own ack id: the framework's way
            async with self._sending:
                await super().emit(
                    event, data, namespace, room=room, skip_sid=skip_sid, callback=callback,
                    to=to, **kwargs,
                )  # fmt: skip
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        recipients = [(s, e) for s, e in self.get_participants(namespace, room) if s not in skip]
        if not recipients:
            return  # nobody here (with several hub processes, often): nothing to encode
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        packets = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        async with self._sending:
            for n, (sid, eio_sid) in enumerate(recipients):
                if n and n % CHUNK == 0:
                    await asyncio.sleep(0)
                for p in packets:
                    try:
                        await self.server._send_eio_packet(eio_sid, p)
                    except Exception:  # one broken socket must not cost the others the event
                        log.debug("sending %s to %s failed", event, sid, exc_info=True)
