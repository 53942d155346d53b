"""python-socketio's server, with the door shut on what no client may send.

- A packet that cannot be decoded (broken JSON, nesting a parser cannot follow, a
  packet type a client never sends) closes that one connection with one log line;
  the library would log a traceback and keep the client.
- The reserved event names (``connect``, ``disconnect``, ``connect_error``) sent as
  ordinary events are refused with an error ack: they would reach the connection
  handlers with arguments those never get.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from pm_core.protocol import ErrorCode, error_ack
from pm_hub.admission import Admission, remote_address
from pm_hub.engineio_socket import abort_transport

log = logging.getLogger(__name__)

#: Event names python-socketio uses for its own signals.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class HubSocketServer(socketio.AsyncServer):
    def __init__(self, *, admission: Admission, **options: Any) -> None:
        super().__init__(**options)
        self.admission = admission

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        """Every connection, before any namespace: refused (HTTP 401 with the reason)
        when its address has too many open already."""
        address = remote_address(environ)
        if not self.admission.connections.opened(eio_sid, address):
            log.warning("refused a connection from %s: too many open from there", address)
            return f"too many connections from {address}"
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, *args: Any) -> None:
        self.admission.connections.closed(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, *args)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:  # decoding: handlers run in tasks of their own
            log.warning(
                "closed connection %s: it sent a packet that cannot be decoded (%s: %s)",
                eio_sid,
                type(exc).__name__,
                str(exc)[:120],
            )
            socket = self.eio.sockets.get(eio_sid)
            await self.eio.disconnect(eio_sid)
            if socket is not None:
                abort_transport(socket)  # no closing handshake with a client like that

    async def _handle_event(self, eio_sid: str, namespace: str, id: Any, data: Any) -> None:
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ValueError("an event packet must hold [name, ...]")
        if data[0] in RESERVED_EVENTS:
            log.warning("refused reserved event %r from %s", data[0], eio_sid)
            if id is not None:
                sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
                if sid is not None:
                    answer = error_ack(
                        ErrorCode.INVALID_PAYLOAD, f"{data[0]} is reserved; not an event"
                    )
                    await self._send_packet(
                        eio_sid,
                        self.packet_class(
                            socketio.packet.ACK, namespace=namespace, id=id, data=[answer]
                        ),
                    )
            return
        await super()._handle_event(eio_sid, namespace, id, data)
