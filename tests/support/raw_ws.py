"""A Socket.IO client written by hand on a plain socket, for the clients no library
would be: one that sends and then never reads (a small receive buffer, no reader), or
one that sends bytes the protocol does not allow. Blocking calls; tests run them in a
thread (``asyncio.to_thread``)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any


class RawSocketIO:
    def __init__(self, host: str, port: int, *, receive_buffer: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # set before connecting: it bounds the TCP window
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        self.open = self.read_text()  # the Engine.IO OPEN packet: "0{...}"

    # -- frames -------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        self.send_frame(text.encode(), opcode=1)

    def send_frame(self, payload: bytes, *, opcode: int) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the hub")
            data += chunk
        return data

    def read_text(self) -> str:
        """The next text frame (pings are answered on the way)."""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            opcode = first & 0x0F
            if opcode == 8:
                raise ConnectionError("closed by the hub")
            text = payload.decode()
            if text == "2":  # Engine.IO ping
                self.send_text("3")
                continue
            return text

    # -- Socket.IO ------------------------------------------------------------------------

    def connect_namespace(self, namespace: str, auth: dict[str, Any]) -> str:
        self.send_text(f"40{namespace},{json.dumps(auth)}")
        return self.read_text()

    def emit(self, namespace: str, event: str, payload: Any, ack_id: int | None = None) -> None:
        ack = "" if ack_id is None else str(ack_id)
        self.send_text(f"42{namespace},{ack}{json.dumps([event, payload])}")

    def closed_by_peer(self, timeout: float = 10) -> bool:
        """True once the hub has closed the connection (a close frame, or the socket
        itself); what comes before is read and dropped."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self.read_text()
        except (ConnectionError, OSError) as exc:
            return not isinstance(exc, TimeoutError)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
