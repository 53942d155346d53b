"""Talking to one printer device: send bytes, ask its real-time status (DLE EOT).

Everything here blocks; callers run it on the printer's own worker thread, never
on the event loop. A network printer keeps one socket open between jobs and is
reconnected when it stopped accepting or the connection broke.

A failed ``write`` says whether anything of the job went out: with
:class:`PrinterUnreachable` nothing did (send it again later), with
:class:`PrinterIOError` some or all of it did and the printer never confirmed
it, so it may have printed: sending it again could print it twice.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Protocol

from pm_agent.escpos_status import STATUS_QUERIES, StatusReport, decode_status

log = logging.getLogger(__name__)

ALL_STATUS_QUERIES = b"".join(STATUS_QUERIES[n] for n in (1, 2, 3, 4))


class PrinterUnreachable(Exception):
    """Could not reach the printer; nothing was sent (safe to retry)."""


class PrinterIOError(Exception):
    """Bytes of the job went out, then the link broke (or the printer never confirmed
    them): it may have printed in full, in part or not at all. Never resend blindly.

    ``what`` says what happened in words for the kitchen; ``sent_all`` whether every
    byte had been handed over before it went wrong."""

    def __init__(self, detail: str, *, what: str, sent_all: bool) -> None:
        super().__init__(detail)
        self.what = what
        self.sent_all = sent_all


BROKE_AFTER = "the connection broke after the ticket was sent"
BROKE_DURING = "the connection broke while the ticket was being sent (part of it may have printed)"


def not_confirmed(timeout: float) -> str:
    return f"the printer took the ticket but did not confirm it within {timeout:.0f} s"


class PrinterPort(Protocol):
    """What the agent needs from a printer connection (TCP, USB, serial, file)."""

    description: str

    def query_status(self) -> StatusReport | None:
        """The printer's status, or None when it does not answer status queries."""
        ...

    def write(self, data: bytes, confirm_timeout: float) -> StatusReport | None:
        """Send ``data``; then wait until the printer has taken it (status barrier)."""
        ...

    def close(self) -> None: ...


class TcpPrinterPort:
    """An ESC/POS printer on a raw TCP port (9100)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 3.0,
        status_timeout: float = 1.5,
    ) -> None:
        self.host = host
        self.port = port
        self.description = f"tcp://{host}:{port}"
        self.connect_timeout = connect_timeout
        self.status_timeout = status_timeout
        self._sock: socket.socket | None = None
        #: None: not asked yet; False: the printer stayed silent to DLE EOT.
        self.answers_status: bool | None = None

    def _connection(self) -> socket.socket:
        if self._sock is None:
            try:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=self.connect_timeout
                )
            except OSError as exc:
                raise PrinterUnreachable(f"{self.description}: {exc.strerror or exc}") from exc
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _read_exact(self, sock: socket.socket, count: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(count - len(data))
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionResetError("printer closed the connection")
            data += chunk
        return data

    def _ask_status(self, sock: socket.socket, timeout: float) -> StatusReport | None:
        sock.settimeout(self.connect_timeout)
        sock.sendall(ALL_STATUS_QUERIES)
        answer = self._read_exact(sock, 4, timeout)
        if answer is None:
            # No answer: drop the socket so a late answer cannot be misread later.
            self.close()
            return None
        try:
            return decode_status(answer[0], answer[1], answer[2], answer[3])
        except ValueError:
            self.close()
            log.warning("%s answered status with garbage %r", self.description, answer)
            return None

    def query_status(self) -> StatusReport | None:
        for attempt in (1, 2):
            sock = self._connection()
            try:
                report = self._ask_status(sock, self.status_timeout)
            except OSError as exc:
                # A kept-open socket may have gone stale; reconnect once before giving up.
                self.close()
                if attempt == 2:
                    raise PrinterUnreachable(f"{self.description}: {exc}") from exc
                continue
            if report is None and self.answers_status:
                # It used to answer: silence now means it hangs (or is not the printer).
                raise PrinterUnreachable(f"{self.description}: connected, but stopped answering")
            self.answers_status = report is not None
            return report
        return None  # pragma: no cover

    def _usable_connection(self) -> socket.socket:
        """The kept-open socket, or a new one when the printer closed or reset it
        while idle (restarted, switched off and on): found out before sending, when
        reconnecting is still safe."""
        sock = self._connection()
        try:
            sock.settimeout(0)
            try:
                stale = sock.recv(4096, socket.MSG_PEEK) == b""
                if not stale:
                    sock.recv(4096)  # a late answer nobody waits for any more: drop it
            except BlockingIOError:
                stale = False  # open and quiet: the usual case
        except OSError:
            stale = True
        if stale:
            log.info("%s: the printer closed the idle connection; reconnecting", self.description)
            self.close()
            sock = self._connection()
        return sock

    def write(self, data: bytes, confirm_timeout: float = 30.0) -> StatusReport | None:
        sock = self._usable_connection()
        sent = 0
        try:
            sock.settimeout(self.connect_timeout + len(data) / 50_000)
            view = memoryview(data)
            while sent < len(data):
                sent += sock.send(view[sent:])
        except OSError as exc:
            self.close()
            if sent == 0:  # the kernel took nothing: nothing can have reached the printer
                raise PrinterUnreachable(f"{self.description}: nothing sent ({exc})") from exc
            raise PrinterIOError(
                f"{self.description}: connection lost after {sent} of {len(data)} bytes ({exc})",
                what=BROKE_DURING,
                sent_all=False,
            ) from exc
        if self.answers_status is False:
            return None  # it never answers: do not wait for an answer after each job
        try:
            report = self._ask_status(sock, confirm_timeout)
        except OSError as exc:
            self.close()
            raise PrinterIOError(
                f"{self.description}: connection lost after sending the job ({exc})",
                what=BROKE_AFTER,
                sent_all=True,
            ) from exc
        if report is None and self.answers_status:
            # It answered before the job and is silent after it: jammed, off, or hung.
            raise PrinterIOError(
                f"{self.description}: no status answer within {confirm_timeout:.0f}s after the job",
                what=not_confirmed(confirm_timeout),
                sent_all=True,
            )
        return report

    def query_identity(self, n: int, timeout: float) -> bytes | None:
        """The answer to ``GS I n`` (see :mod:`pm_agent.printer_identity`)."""
        from pm_agent.printer_identity import identity_request, read_identity_answer

        for attempt in (1, 2):
            sock = self._connection()

            def read(count: int, wait: float, sock: socket.socket = sock) -> bytes | None:
                return self._read_exact(sock, count, wait)

            try:
                sock.settimeout(self.connect_timeout)
                sock.sendall(identity_request(n))
                answer = read_identity_answer(n, read, timeout)
            except OSError as exc:
                self.close()
                if attempt == 2:
                    raise PrinterUnreachable(f"{self.description}: {exc}") from exc
                continue
            if answer is None:
                self.close()  # a late answer must not be read as the next one
            return answer
        return None  # pragma: no cover


class FilePrinterPort:
    """A file or device node (``file:///dev/usb/lp0``): bytes appended, no status."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"file://{path}"

    def query_status(self) -> StatusReport | None:
        import os

        directory = os.path.dirname(self.path) or "."
        if not os.path.exists(self.path) and not os.access(directory, os.W_OK):
            raise PrinterUnreachable(f"{self.description}: cannot write there")
        return None

    def write(self, data: bytes, confirm_timeout: float = 30.0) -> StatusReport | None:
        opened = False
        try:
            with open(self.path, "ab") as fh:
                opened = True
                fh.write(data)
        except OSError as exc:
            if not opened:  # could not open it: nothing written
                raise PrinterUnreachable(f"{self.description}: {exc}") from exc
            raise PrinterIOError(
                f"{self.description}: {exc}", what=BROKE_DURING, sent_all=False
            ) from exc
        return None

    def close(self) -> None:
        return None


def open_port(spec: Any, *, usb_backend: Any = None) -> PrinterPort:
    """The port for a :class:`~pm_agent.printer_uri.PrinterSpec` (nothing is opened
    yet: each port connects on first use, on the printer's worker thread).
    ``usb_backend``: a pyusb backend (default: libusb, found by pyusb)."""
    if spec.scheme == "tcp":
        return TcpPrinterPort(spec.host, spec.port)
    if spec.scheme == "file":
        return FilePrinterPort(spec.path)
    if spec.scheme == "usb":
        from pm_agent.usb_port import UsbPrinterPort

        return UsbPrinterPort.from_spec(spec, backend=usb_backend)
    if spec.scheme == "serial":
        from pm_agent.serial_port import SerialPrinterPort

        return SerialPrinterPort(spec.path, options=spec.options)
    raise ValueError(f"{spec.uri}: {spec.scheme} printers are not supported")
