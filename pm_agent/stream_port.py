"""The part of a printer connection that USB and serial share: a byte pipe to an
ESC/POS printer that answers ``DLE EOT`` and ``GS I`` on the same pipe.

Subclasses say how to open, send, receive and close; this class asks the status,
sends jobs with a status barrier behind them, drops late answers before each
question, remembers a printer that never answers status (so a job does not wait
for an answer that never comes) and turns device errors into
:class:`PrinterUnreachable` (nothing sent: the device could not be opened) or
:class:`PrinterIOError` (the job went out in part or in full, then the device
failed or stayed silent: it may have printed, so it is not sent again). A USB
or serial write that fails part way cannot tell how much the printer took, so
any failure once the job's bytes started going out counts as the latter.
Everything blocks; it runs on the printer's worker thread.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod

from pm_agent.escpos_status import StatusReport, decode_status
from pm_agent.printer_identity import identity_request, read_identity_answer
from pm_agent.printer_port import (
    ALL_STATUS_QUERIES,
    BROKE_AFTER,
    BROKE_DURING,
    PrinterIOError,
    PrinterUnreachable,
    not_confirmed,
)

log = logging.getLogger(__name__)


class StreamPrinterPort(ABC):
    """A printer reached through a byte stream that is opened on demand."""

    description: str = "printer"
    #: How long a status answer may take (the printer answers DLE EOT at once).
    status_timeout: float = 1.0
    #: Said after "answered status with garbage" (serial: check the baud rate).
    garbage_hint: str = "is it an ESC/POS printer?"

    def __init__(self) -> None:
        self._open_now = False
        #: None: not asked yet; False: the printer stayed silent to DLE EOT.
        self.answers_status: bool | None = None

    # -- what a subclass provides ----------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Open the device; raise PrinterUnreachable saying what to do when it fails."""

    @abstractmethod
    def _send(self, data: bytes, timeout: float) -> None:
        """Send everything; raise OSError (or a subclass) when the link breaks."""

    @abstractmethod
    def _recv(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes, or b"" when nothing came within ``timeout``."""

    @abstractmethod
    def _close_device(self) -> None: ...

    # -- plumbing ----------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if not self._open_now:
            self._open()
            self._open_now = True

    def close(self) -> None:
        if self._open_now:
            self._open_now = False
            try:
                self._close_device()
            except Exception as exc:  # closing a device that vanished
                log.debug("%s: close: %s", self.description, exc)

    def _broken(self, exc: BaseException, what: str, *, sent_all: bool) -> PrinterIOError:
        self.close()
        return PrinterIOError(f"{self.description}: {what} ({exc})", what=what, sent_all=sent_all)

    def _read_exact(self, count: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        data = b""
        while len(data) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data += self._recv(count - len(data), remaining)
        return data

    def _drain(self) -> None:
        """Drop bytes nobody waited for (a late answer, an ASB message)."""
        for _ in range(64):
            if not self._recv(256, 0.01):
                return

    def _ask(self, request: bytes) -> None:
        self._ensure_open()
        try:
            self._drain()
            self._send(request, self.status_timeout + 1.0)
        except OSError as exc:
            self.close()
            raise PrinterUnreachable(f"{self.description}: {exc}") from exc

    # -- PrinterPort -----------------------------------------------------------------------

    def _status_answer(self, timeout: float) -> StatusReport | None:
        answer = self._read_exact(4, timeout)
        if answer is None:
            self.answers_status = False
            return None
        try:
            report = decode_status(answer[0], answer[1], answer[2], answer[3])
        except ValueError:
            self.close()
            raise PrinterUnreachable(
                f"{self.description}: answered status with garbage {answer.hex(' ')}; "
                f"{self.garbage_hint}"
            ) from None
        self.answers_status = True
        return report

    def query_status(self) -> StatusReport | None:
        answered_before = self.answers_status
        self._ask(ALL_STATUS_QUERIES)
        try:
            report = self._status_answer(self.status_timeout)
        except OSError as exc:
            self.close()
            raise PrinterUnreachable(f"{self.description}: {exc}") from exc
        if report is None and answered_before:
            # It used to answer: silence now means switched off, unplugged or hung.
            self.answers_status = True
            self.close()
            raise PrinterUnreachable(
                f"{self.description}: stopped answering (switched off or disconnected?)"
            )
        return report

    def write(self, data: bytes, confirm_timeout: float = 30.0) -> StatusReport | None:
        self._ensure_open()  # PrinterUnreachable here: nothing was sent
        try:
            self._send(data, 5.0 + len(data) / 2_000)
        except OSError as exc:
            raise self._broken(exc, BROKE_DURING, sent_all=False) from exc
        answered_before = self.answers_status
        if answered_before is False:
            return None  # it never answers: do not wait for an answer after each job
        try:
            self._send(ALL_STATUS_QUERIES, 5.0)
            report = self._status_answer(confirm_timeout)
        except OSError as exc:
            raise self._broken(exc, BROKE_AFTER, sent_all=True) from exc
        except PrinterUnreachable as exc:  # garbage instead of a status answer
            raise PrinterIOError(str(exc), what=BROKE_AFTER, sent_all=True) from exc
        if report is None and answered_before:
            # It answered before the job and is silent after it: jammed, off, or unplugged.
            self.answers_status = True
            self.close()
            what = not_confirmed(confirm_timeout)
            raise PrinterIOError(f"{self.description}: {what}", what=what, sent_all=True)
        return report

    def query_identity(self, n: int, timeout: float) -> bytes | None:
        self._ask(identity_request(n))
        try:
            return read_identity_answer(n, lambda count, t: self._read_exact(count, t), timeout)
        except OSError as exc:
            self.close()
            raise PrinterUnreachable(f"{self.description}: {exc}") from exc
