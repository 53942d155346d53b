"""What the agent needs from a printer connection, whatever the transport: the
:class:`PrinterPort` protocol and the two ways a send can fail.

The ports themselves: :mod:`pm_agent.stream_port` (the ESC/POS conversation) under
:mod:`pm_agent.tcp_port`, :mod:`pm_agent.usb_port` and :mod:`pm_agent.serial_port`;
:mod:`pm_agent.file_port`; :func:`pm_agent.open_port.open_port` picks one for an
address. Everything blocks; callers run it on the printer's own worker thread,
never on the event loop.

A failed ``write`` says whether anything of the job went out: with
:class:`PrinterUnreachable` nothing did (send it again later), with
:class:`PrinterIOError` some or all of it did and the printer never confirmed
it, so it may have printed: sending it again could print it twice.
"""

from __future__ import annotations

from typing import Protocol

from pm_agent.escpos_status import STATUS_QUERIES, StatusReport

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
