"""Star's status: the Automatic Status Back (ASB) bytes a Star printer sends when
asked with ``ESC ACK SOH`` (and by itself when ASB is switched on), or as hex in a
CloudPRNT poll, and what they mean as a PrinterMaster printer status and flags.

The first byte says how long the answer is: bits 1-3 and 5 hold the byte count
(``((b >> 2) & 8) | ((b >> 1) & 7)``, 9 for the usual ``0x23``), bit 0 is set and
bits 4 and 7 are clear. Then a version byte and the status bytes:

* status 1 (byte 3): bit 2 drawer switch, bit 3 offline, bit 5 cover open;
* status 2 (byte 4): bit 3 auto-cutter error, bit 5 unrecoverable error, bit 6 head
  overheated (recoverable);
* status 4 (byte 6): bit 2 paper near end, bit 3 paper end.

The same bytes come as hex in a CloudPRNT poll's ``status`` field
(:func:`decode_asb_hex`); a CloudPRNT ``statusCode`` alone is read by
:func:`status_of_code`. Used by the agent (``pm_agent.star_status``) and by the hub's
CloudPRNT server.
"""

from __future__ import annotations

from pm_core.protocol.statuses import printer_status

ASB_LENGTH = 9
#: status, flags
StarStatus = tuple[str, dict[str, bool]]

DRAWER = 0x04
OFFLINE = 0x08
COVER_OPEN = 0x20
CUTTER_ERROR = 0x08
UNRECOVERABLE = 0x20
HEAD_OVERHEAT = 0x40
PAPER_NEAR_END = 0x04
PAPER_END = 0x08


def asb_length(header: int) -> int:
    """How many bytes the answer that starts with ``header`` has; ValueError when
    ``header`` cannot start an ASB answer."""
    if header & 0x91 != 0x01:
        raise ValueError(f"0x{header:02x} does not start a Star status answer")
    return ((header >> 2) & 0x08) | ((header >> 1) & 0x07)


def asb_header(length: int) -> int:
    return 0x01 | ((length & 0x08) << 2) | ((length & 0x07) << 1)


def decode_asb(answer: bytes) -> StarStatus:
    """The status in an ASB answer (at least 6 bytes); ValueError for bytes that
    are not one."""
    if len(answer) < 6:
        raise ValueError(f"a Star status answer has at least 6 bytes, not {len(answer)}")
    length = asb_length(answer[0])
    if length < 6 or len(answer) < length:
        raise ValueError(f"Star status answer says {length} bytes, got {len(answer)}")
    status1, status2, status4 = answer[2], answer[3], answer[5]
    flags = {
        "offline": bool(status1 & OFFLINE),
        "cover_open": bool(status1 & COVER_OPEN),
        "paper_near_end": bool(status4 & PAPER_NEAR_END),
        "paper_end": bool(status4 & PAPER_END),
        "cutter_error": bool(status2 & CUTTER_ERROR),
        "unrecoverable_error": bool(status2 & UNRECOVERABLE),
        "recoverable_error": bool(status2 & HEAD_OVERHEAT),
        "drawer_open": bool(status1 & DRAWER),
    }
    status = printer_status(
        error=flags["cutter_error"] or flags["unrecoverable_error"] or flags["recoverable_error"],
        cover_open=flags["cover_open"],
        paper_out=flags["paper_end"],
        paper_low=flags["paper_near_end"],
        offline=flags["offline"],
    )
    return status, flags


def decode_asb_hex(text: str) -> StarStatus:
    """The ASB bytes as CloudPRNT sends them (``"23 86 00 00 00 00 00 00 00"``, or
    without spaces); ValueError for anything else."""
    parts = text.split()
    if len(parts) == 1 and len(parts[0]) > 2:
        parts = [parts[0][i : i + 2] for i in range(0, len(parts[0]), 2)]
    if not 6 <= len(parts) <= 32:
        raise ValueError("a Star status has 6 to 32 bytes")
    try:
        answer = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError("a Star status is hex bytes") from None
    return decode_asb(answer)


#: The condition a simulated Star printer reports for each state.
_STATE_BITS: dict[str, tuple[int, int, int]] = {
    "online": (0, 0, 0),
    "offline": (OFFLINE, 0, 0),
    "paper_low": (0, 0, PAPER_NEAR_END),
    "paper_out": (OFFLINE, 0, PAPER_END | PAPER_NEAR_END),
    "cover_open": (OFFLINE | COVER_OPEN, 0, 0),
    "error": (OFFLINE, CUTTER_ERROR, 0),
}


def encode_asb(state: str) -> bytes:
    """The 9 ASB bytes a Star printer in ``state`` (one of the printer statuses)
    sends."""
    try:
        status1, status2, status4 = _STATE_BITS[state]
    except KeyError:
        raise ValueError(f"unknown printer state {state!r}") from None
    return bytes([asb_header(ASB_LENGTH), 0x86, status1, status2, 0, status4, 0, 0, 0])


def encode_asb_hex(state: str) -> str:
    return " ".join(f"{b:02X}" for b in encode_asb(state))


def status_of_code(code: str) -> StarStatus:
    """A CloudPRNT ``statusCode`` (``"200 OK"``, ``"410 Out of paper"``; 2xx online,
    21x paper low, 410 paper out, 411 jam, 420 cover open, other 4xx error)."""
    number = code.strip()[:3]
    if not number.isdigit():
        return "unknown", {}
    if number.startswith("21"):
        return "paper_low", {"paper_near_end": True}
    if number.startswith("2"):
        return "online", {}
    if number == "410":
        return "paper_out", {"paper_end": True}
    if number == "420" or number.startswith("42"):
        return "cover_open", {"cover_open": True}
    if number.startswith("4"):
        return "error", {"printer_error": True}
    return "unknown", {}
