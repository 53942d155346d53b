"""ESC/POS real-time status (``DLE EOT n``): the query bytes, the Epson bit
patterns of the four answers, and the translation between those bytes and a
PrinterMaster printer status.

``decode_status`` turns the four answer bytes of a real printer into a
:class:`StatusReport`; ``encode_status`` does the reverse and is what the
simulated printer answers with. Both follow the Epson TM command reference:

* every answer byte has bit 0 and bit 7 clear and bits 1 and 4 set
  (``byte & 0x93 == 0x12``); anything else is not a status answer;
* a real printer sets the *offline* bit of ``n=1`` whenever the cover is open,
  the paper has run out or an error occurred, so the status is derived from the
  cause bytes (``n=2``, ``n=3``, ``n=4``), not from the offline bit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pm_core.protocol.statuses import printer_status

logger = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"

#: ``n`` of ``DLE EOT n``.
PRINTER_STATUS = 1
OFFLINE_CAUSE = 2
ERROR_CAUSE = 3
PAPER_SENSOR = 4

#: The query for each status kind: ``n -> DLE EOT n``.
STATUS_QUERIES: dict[int, bytes] = {n: DLE_EOT + bytes([n]) for n in (1, 2, 3, 4)}

#: Bits that are fixed in every answer byte, and the value they must have.
FIXED_MASK = 0x93
FIXED_BITS = 0x12

# n=1: printer status
PRINTER_DRAWER_PIN3 = 0x04  #: drawer kick-out connector pin 3 is high
PRINTER_OFFLINE = 0x08
PRINTER_WAITING_RECOVERY = 0x20  #: waiting for online recovery
PRINTER_FEED_BUTTON = 0x40  #: the paper feed button is being pressed

# n=2: offline cause
OFFLINE_COVER_OPEN = 0x04
OFFLINE_FEED_BUTTON = 0x08  #: paper is being fed by the feed button
OFFLINE_PAPER_END_STOP = 0x20  #: printing stopped because the paper ran out
OFFLINE_ERROR = 0x40  #: an error occurred

# n=3: error cause
ERROR_RECOVERABLE = 0x04
ERROR_AUTOCUTTER = 0x08
ERROR_UNRECOVERABLE = 0x20
ERROR_AUTO_RECOVERABLE = 0x40

# n=4: roll paper sensor
PAPER_NEAR_END = 0x0C  #: both near-end sensor bits
PAPER_END = 0x60  #: both paper-end sensor bits

#: Every status a printer can report through DLE EOT (the hub adds "unknown").
STATUSES = ("online", "offline", "paper_low", "paper_out", "cover_open", "error")

#: The keys of :attr:`StatusReport.flags`, in a stable order.
FLAG_NAMES = (
    "offline",
    "cover_open",
    "paper_near_end",
    "paper_end",
    "cutter_error",
    "unrecoverable_error",
    "auto_recoverable_error",
    "recoverable_error",
    "drawer_open",
    "feed_button",
)


@dataclass(frozen=True)
class StatusReport:
    """What the four DLE EOT answers say: one status plus every raw flag."""

    status: str
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def can_print(self) -> bool:
        """True when a job sent now would come out of the printer."""
        return self.status in ("online", "paper_low")


def _check_byte(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} status must be a byte, got {value!r}")
    if value & FIXED_MASK != FIXED_BITS:
        raise ValueError(f"{name} status byte 0x{value:02x} is not a DLE EOT answer")


def decode_status(printer: int, offline_cause: int, error_cause: int, paper: int) -> StatusReport:
    """Turn the answers to DLE EOT 1, 2, 3 and 4 into a :class:`StatusReport`.

    Raises :class:`ValueError` when a byte does not have the fixed bit pattern
    (the device answered garbage, or something other than an ESC/POS printer).
    """
    _check_byte("printer", printer)
    _check_byte("offline cause", offline_cause)
    _check_byte("error cause", error_cause)
    _check_byte("paper sensor", paper)

    flags = {
        "offline": bool(printer & PRINTER_OFFLINE),
        "cover_open": bool(offline_cause & OFFLINE_COVER_OPEN),
        "paper_near_end": bool(paper & PAPER_NEAR_END),
        "paper_end": bool(paper & PAPER_END) or bool(offline_cause & OFFLINE_PAPER_END_STOP),
        "cutter_error": bool(error_cause & ERROR_AUTOCUTTER),
        "unrecoverable_error": bool(error_cause & ERROR_UNRECOVERABLE),
        "auto_recoverable_error": bool(error_cause & ERROR_AUTO_RECOVERABLE),
        "recoverable_error": bool(error_cause & ERROR_RECOVERABLE),
        "drawer_open": bool(printer & PRINTER_DRAWER_PIN3),
        "feed_button": bool(printer & PRINTER_FEED_BUTTON),
    }
    any_error = (
        flags["cutter_error"]
        or flags["unrecoverable_error"]
        or flags["auto_recoverable_error"]
        or flags["recoverable_error"]
        or bool(offline_cause & OFFLINE_ERROR)
    )
    status = printer_status(
        error=any_error,
        cover_open=flags["cover_open"],
        paper_out=flags["paper_end"],
        paper_low=flags["paper_near_end"],
        offline=flags["offline"],
    )
    return StatusReport(status=status, flags=flags)


def encode_status(
    *,
    offline: bool = False,
    cover_open: bool = False,
    paper_near_end: bool = False,
    paper_end: bool = False,
    cutter_error: bool = False,
    unrecoverable_error: bool = False,
    auto_recoverable_error: bool = False,
    recoverable_error: bool = False,
    drawer_open: bool = False,
) -> dict[int, int]:
    """The answer bytes (``n -> byte`` for n = 1..4) a real printer sends in
    the given condition.

    Like a real printer, an open cover, a paper end or any error also sets the
    offline bit of ``n=1``, and a paper end also reports paper near end (the
    near-end sensor sees no paper either).
    """
    any_error = cutter_error or unrecoverable_error or auto_recoverable_error or recoverable_error
    printer = FIXED_BITS
    if offline or cover_open or paper_end or any_error:
        printer |= PRINTER_OFFLINE
    if drawer_open:
        printer |= PRINTER_DRAWER_PIN3
    if any_error and not unrecoverable_error:
        printer |= PRINTER_WAITING_RECOVERY

    offline_cause = FIXED_BITS
    if cover_open:
        offline_cause |= OFFLINE_COVER_OPEN
    if paper_end:
        offline_cause |= OFFLINE_PAPER_END_STOP
    if any_error:
        offline_cause |= OFFLINE_ERROR

    error_cause = FIXED_BITS
    if recoverable_error:
        error_cause |= ERROR_RECOVERABLE
    if cutter_error:
        error_cause |= ERROR_AUTOCUTTER
    if unrecoverable_error:
        error_cause |= ERROR_UNRECOVERABLE
    if auto_recoverable_error:
        error_cause |= ERROR_AUTO_RECOVERABLE

    paper = FIXED_BITS
    if paper_near_end or paper_end:
        paper |= PAPER_NEAR_END
    if paper_end:
        paper |= PAPER_END

    return {
        PRINTER_STATUS: printer,
        OFFLINE_CAUSE: offline_cause,
        ERROR_CAUSE: error_cause,
        PAPER_SENSOR: paper,
    }


#: The condition the simulator reports for each of its states.
_STATE_CONDITIONS: dict[str, dict[str, bool]] = {
    "online": {},
    "offline": {"offline": True},
    "paper_low": {"paper_near_end": True},
    "paper_out": {"paper_end": True},
    "cover_open": {"cover_open": True},
    "error": {"cutter_error": True},
}


def encode_state(state: str) -> dict[int, int]:
    """The answer bytes for one of :data:`STATUSES` ("error" is reported as an
    autocutter error, the most common error of a kitchen printer)."""
    try:
        condition = _STATE_CONDITIONS[state]
    except KeyError:
        raise ValueError(f"unknown printer state {state!r}") from None
    return encode_status(**condition)
