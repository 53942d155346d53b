"""ESC/POS printers on a raw TCP port (9100, "JetDirect"): the socket under
:class:`~pm_agent.stream_port.StreamPrinterPort`.

A network printer keeps one socket open between jobs. Many accept one connection
at a time, and a printer that restarted while the agent was idle has dropped it,
so the socket is checked before each question and each job: a connection the
printer closed is opened again while that is still safe (nothing sent yet), and a
question whose connection broke under it is asked once more on a new one. A
question that got no answer closes the socket, so a late answer cannot be read as
the answer to the next one. Everything blocks; it runs on the printer's thread.
"""

from __future__ import annotations

import logging
import socket

from pm_agent.printer_port import PrinterUnreachable
from pm_agent.stream_port import NothingSent, StreamPrinterPort

log = logging.getLogger(__name__)

#: What a LAN moves at the least, for the time a job may take to send.
SEND_RATE = 50_000


class TcpPrinterPort(StreamPrinterPort):
    """An ESC/POS printer on a raw TCP port (9100)."""

    link_retries = 1

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 3.0,
        status_timeout: float = 1.5,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.description = f"tcp://{host}:{port}"
        self.connect_timeout = connect_timeout
        self.status_timeout = status_timeout
        self._sock: socket.socket | None = None

    def _open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise PrinterUnreachable(f"{self.description}: {exc.strerror or exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionResetError("the connection is closed")
        return self._sock

    def _close_device(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _send(self, data: bytes, timeout: float) -> None:
        sock = self._socket()
        sock.settimeout(timeout)
        view = memoryview(data)
        sent = 0
        try:
            while sent < len(data):
                sent += sock.send(view[sent:])
        except OSError as exc:
            if sent == 0:  # the kernel took nothing: nothing can have reached the printer
                raise NothingSent(str(exc)) from exc
            raise ConnectionResetError(
                f"connection lost after {sent} of {len(data)} bytes ({exc})"
            ) from exc

    def _recv(self, size: int, timeout: float) -> bytes:
        sock = self._socket()
        sock.settimeout(max(timeout, 0.001))
        try:
            chunk = sock.recv(size)
        except TimeoutError:
            return b""
        if not chunk:
            raise ConnectionResetError("printer closed the connection")
        return chunk

    def _drain(self) -> None:
        """Drop what came unasked (a late answer), without waiting; a connection the
        printer closed while idle (restarted, switched off and on) is opened again."""
        sock = self._socket()
        try:
            sock.settimeout(0)
            try:
                stale = sock.recv(4096) == b""
                while not stale:
                    stale = sock.recv(4096) == b""
            except BlockingIOError:
                stale = False  # open and quiet: the usual case
        except OSError:
            stale = True
        if stale:
            log.info("%s: the printer closed the idle connection; reconnecting", self.description)
            self.close()
            self._ensure_open()

    def _before_job(self) -> None:
        self._ensure_open()
        self._drain()

    def _after_silence(self) -> None:
        self.close()

    def _job_send_timeout(self, size: int) -> float:
        return self.connect_timeout + size / SEND_RATE
