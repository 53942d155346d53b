"""One implementation of the ESC/POS conversation, for every transport that is a byte
pipe to the printer: TCP (:mod:`pm_agent.tcp_port`), USB (:mod:`pm_agent.usb_port`)
and serial (:mod:`pm_agent.serial_port`). The printer answers ``DLE EOT`` and
``GS I`` on the same pipe that carries the tickets.

Subclasses say how to open, send, receive and close; this class asks the status,
sends jobs with a status barrier behind them, drops late answers before each
question, remembers a printer that never answers status (so a job does not wait
for an answer that never comes) and turns device errors into
:class:`PrinterUnreachable` (nothing sent: the device could not be opened, or
nothing of the job left) or :class:`PrinterIOError` (the job went out in part or
in full, then the device failed or stayed silent: it may have printed, so it is
not sent again). A USB or serial write that fails part way cannot tell how much
the printer took, so any failure once the job's bytes started going out counts
as the latter; a TCP socket can tell that nothing left (:class:`NothingSent`).

**An answer that is not a status** (bytes without the fixed bits of a DLE EOT
answer, :func:`~pm_agent.escpos_status.decode_status`) makes the printer
``offline`` (:class:`PrinterUnreachable` saying "answered status with garbage"),
on every transport. Such a device is reachable but not understood: a serial line
at the wrong baud rate, something that is not an ESC/POS printer on port 9100, a
printer in another command mode. Tickets sent to it come out as stray characters
or not at all, and nobody could tell, so it must not look like a printer that
merely has no status support (``unknown``, where jobs are sent without waiting
for an answer and reported printed). As ``offline`` its jobs wait in the spool,
a station's jobs fail over to a printer that can print, the dashboard and the
alerts show it, and the message names the likely cause. The next poll asks
again, so a printer whose answers were garbled once is back at once.

**The status query follows the printer's language** (:attr:`status_dialect`, set
from :data:`~pm_core.protocol.languages.STATUS_DIALECTS`): ``DLE EOT 1-4`` (four
bytes back), Star's ``ESC ACK SOH`` (its ASB answer), a label printer's ``~HS``
(three ``STX ... ETX`` strings, :mod:`pm_agent.zpl_status`), or nothing at all
(``none``, a ``raw`` printer): then a status poll only checks that the link can be
opened (a TCP connection the printer dropped is opened again), the printer shows as
not answering status, and a job is reported printed once its bytes are sent. A
printer silent to its query is treated the same way whatever the dialect.

Everything blocks; it runs on the printer's worker thread.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

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
from pm_agent.star_status import STATUS_REQUEST as STAR_STATUS_REQUEST
from pm_agent.star_status import asb_length, decode_asb
from pm_agent.zpl_status import MAX_ANSWER as ZPL_MAX_ANSWER
from pm_agent.zpl_status import STATUS_REQUEST as ZPL_STATUS_REQUEST
from pm_agent.zpl_status import answer_complete, decode_host_status

log = logging.getLogger(__name__)
T = TypeVar("T")


#: The question each status dialect asks (``none``: nothing is sent).
STATUS_REQUESTS: dict[str, bytes] = {
    "escpos": ALL_STATUS_QUERIES,
    "star": STAR_STATUS_REQUEST,
    "zpl": ZPL_STATUS_REQUEST,
    "none": b"",
}


class NothingSent(ConnectionError):
    """Raised by :meth:`StreamPrinterPort._send` when the link broke before a single
    byte left (only a transport that can know it raises it: TCP)."""


class StreamPrinterPort(ABC):
    """A printer reached through a byte stream that is opened on demand."""

    description: str = "printer"
    #: How long a status answer may take (the printer answers DLE EOT at once).
    status_timeout: float = 1.0
    #: Said after "answered status with garbage" (serial: check the baud rate).
    garbage_hint: str = "is its language (escpos, star_line, zpl, ...) set right?"
    #: How often a question is asked again on a newly opened link when the link broke
    #: under it (a kept-open TCP connection the printer closed while idle); a USB or
    #: serial device that fails is reported at once.
    link_retries: int = 0

    def __init__(self) -> None:
        self._open_now = False
        #: None: not asked yet; False: the printer stayed silent to its status query.
        self.answers_status: bool | None = None
        self._status_dialect = "escpos"

    @property
    def status_dialect(self) -> str:
        """How the printer is asked its status: ``escpos`` (DLE EOT 1-4, four bytes
        back), ``star`` (ESC ACK SOH, the ASB answer of :mod:`pm_agent.star_status`),
        ``zpl`` (``~HS``, :mod:`pm_agent.zpl_status`) or ``none`` (never asked)."""
        return self._status_dialect

    @status_dialect.setter
    def status_dialect(self, dialect: str) -> None:
        if dialect not in STATUS_REQUESTS:
            raise ValueError(f"unknown status dialect {dialect!r}")
        if dialect != self._status_dialect:
            # Another question: whether the printer answers the old one says nothing.
            self._status_dialect = dialect
            self.answers_status = None

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

    def _drain(self) -> None:
        """Drop bytes nobody waited for (a late answer, an ASB message)."""
        for _ in range(64):
            if not self._recv(256, 0.01):
                return

    def _before_job(self) -> None:
        """Make the link ready for a job's bytes; PrinterUnreachable when it cannot be
        (nothing was sent)."""
        self._ensure_open()

    def _after_silence(self) -> None:
        """The printer did not answer a question in time (a late answer may follow):
        nothing to do here, the next question drains what came late."""
        return None

    def _job_send_timeout(self, size: int) -> float:
        """How long sending ``size`` bytes of a job may take (a serial line at 19200
        baud moves about 2 KB a second)."""
        return 5.0 + size / 2_000

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

    def _exchange(self, request: bytes, read_answer: Callable[[], T]) -> T:
        """Send a question and read its answer; a broken link is closed and, up to
        ``link_retries`` times, opened again for another go (PrinterUnreachable when
        it cannot be opened, or broke every time)."""
        attempt = 0
        while True:
            self._ensure_open()
            try:
                self._drain()
                self._send(request, self.status_timeout + 1.0)
                return read_answer()
            except OSError as exc:
                self.close()
                if attempt >= self.link_retries:
                    raise PrinterUnreachable(f"{self.description}: {exc}") from exc
                attempt += 1

    # -- PrinterPort -----------------------------------------------------------------------

    @property
    def status_request(self) -> bytes:
        return STATUS_REQUESTS[self.status_dialect]

    def _read_host_status(self, timeout: float) -> bytes | None:
        """A ``~HS`` answer: what came until its third string ended, the time ran
        out or more came than an answer holds (None: nothing came)."""
        deadline = time.monotonic() + timeout
        data = b""
        while not answer_complete(data) and len(data) <= ZPL_MAX_ANSWER:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data += self._recv(256, remaining)
        return data or None

    def _read_status(self, timeout: float) -> tuple[bytes | None, Callable[[], StatusReport]]:
        """The raw answer (None: silence) and how to decode it (ValueError: garbage)."""
        if self.status_dialect == "zpl":
            text = self._read_host_status(timeout)
            return text, lambda: decode_host_status(text or b"")
        if self.status_dialect != "star":
            answer = self._read_exact(4, timeout)
            return answer, lambda: decode_status(*(answer or b"\0\0\0\0"))
        header = self._read_exact(1, timeout)
        if header is None:
            return None, lambda: decode_asb(b"")
        try:
            length = asb_length(header[0])
        except ValueError:
            return header, lambda: decode_asb(header)
        rest = self._read_exact(max(0, length - 1), self.status_timeout)
        answer = header + (rest or b"")
        return answer, lambda: decode_asb(answer)

    def _status_answer(self, timeout: float) -> StatusReport | None:
        answer, decode = self._read_status(timeout)
        if answer is None:
            self.answers_status = False
            self._after_silence()
            return None
        try:
            report = decode()
        except ValueError:
            # Reachable but not understood: offline, not unknown (see the module doc).
            self.close()
            raise PrinterUnreachable(
                f"{self.description}: answered status with garbage {answer.hex(' ')}; "
                f"{self.garbage_hint}"
            ) from None
        self.answers_status = True
        return report

    def _check_link(self) -> None:
        """For a printer that is never asked its status: the link opens (a TCP
        connection the printer dropped is opened again); PrinterUnreachable if not."""
        try:
            self._ensure_open()
            self._drain()
        except OSError as exc:
            self.close()
            raise PrinterUnreachable(f"{self.description}: {exc}") from exc
        self.answers_status = False

    def query_status(self) -> StatusReport | None:
        if self.status_dialect == "none":
            self._check_link()
            return None
        answered_before = self.answers_status
        report = self._exchange(
            self.status_request, lambda: self._status_answer(self.status_timeout)
        )
        if report is None and answered_before:
            # It used to answer: silence now means switched off, unplugged or hung.
            self.answers_status = True
            self.close()
            raise PrinterUnreachable(
                f"{self.description}: stopped answering (switched off or disconnected?)"
            )
        return report

    def write(self, data: bytes, confirm_timeout: float = 30.0) -> StatusReport | None:
        self._before_job()  # PrinterUnreachable here: nothing was sent
        try:
            self._send(data, self._job_send_timeout(len(data)))
        except NothingSent as exc:
            self.close()
            raise PrinterUnreachable(f"{self.description}: nothing sent ({exc})") from exc
        except OSError as exc:
            raise self._broken(exc, BROKE_DURING, sent_all=False) from exc
        answered_before = self.answers_status
        if answered_before is False or self.status_dialect == "none":
            return None  # it never answers: do not wait for an answer after each job
        try:
            request = self.status_request
            self._send(request, self._job_send_timeout(len(request)))
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
        """The answer to ``GS I n`` (see :mod:`pm_agent.printer_identity`)."""

        def read_answer() -> bytes | None:
            answer = read_identity_answer(n, self._read_exact, timeout)
            if answer is None:
                self._after_silence()
            return answer

        return self._exchange(identity_request(n), read_answer)
