"""A Zebra label printer's status: ``~HS`` (host status return) and what its answer
means as a PrinterMaster printer status.

The printer answers ``~HS`` with three strings, each ``STX ... ETX CR LF``, of
comma-separated fields (Zebra's ZPL II Programming Guide, ``~HS``):

* string 1 ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l``: ``b`` paper out, ``c`` pause,
  ``f`` receive buffer full, ``j`` RAM corrupt, ``k`` under temperature, ``l`` over
  temperature (each ``1`` when set);
* string 2 ``mmm,n,o,p,q,...``: ``o`` head up (the print head is open), ``p`` ribbon
  out;
* string 3: password and static RAM; not read.

They become the :class:`~pm_agent.escpos_status.StatusReport` the ESC/POS path makes,
so everything after the port is the same for every kind of printer: ribbon out, RAM
corrupt or an overheated head is ``error``, the head up ``cover_open``, paper out
``paper_out``, a paused printer (someone pressed PAUSE, or it paused itself)
``offline``. A label printer has no paper near-end sensor, so ``paper_low`` never
comes from here.
"""

from __future__ import annotations

import re

from pm_agent.escpos_status import StatusReport
from pm_core.protocol.statuses import printer_status

#: ``~HS``: "send the host status now" (a tilde command: answered at once, even
#: between the commands of a label).
STATUS_REQUEST = b"~HS"
STX = 0x02
ETX = 0x03
#: Strings in a whole answer.
ANSWER_STRINGS = 3
#: More than any real answer (three strings of about 40 characters): past this it is
#: not one.
MAX_ANSWER = 512

_FRAME = re.compile(rb"\x02([^\x02\x03]*)\x03")

#: The keys of :attr:`StatusReport.flags` a ``~HS`` answer sets, in a stable order.
FLAG_NAMES = (
    "paper_end",
    "paused",
    "head_open",
    "ribbon_out",
    "buffer_full",
    "ram_corrupt",
    "under_temperature",
    "over_temperature",
)
#: (string, field) of each flag: string 1 or 2, field counted from 0.
_FIELDS = {
    "paper_end": (0, 1),
    "paused": (0, 2),
    "buffer_full": (0, 5),
    "ram_corrupt": (0, 9),
    "under_temperature": (0, 10),
    "over_temperature": (0, 11),
    "head_open": (1, 2),
    "ribbon_out": (1, 3),
}
#: Flags the printer cannot print with, beyond the paper and the head.
_ERRORS = ("ribbon_out", "ram_corrupt", "over_temperature")


def answer_complete(data: bytes) -> bool:
    """True once ``data`` holds all three strings of an answer."""
    return data.count(bytes([ETX])) >= ANSWER_STRINGS


def _flag(fields: list[bytes], index: int, name: str, *, required: bool) -> bool:
    if index >= len(fields):
        if required:
            raise ValueError(f"~HS answer has no {name} field")
        return False
    value = fields[index].strip()
    if value not in (b"0", b"1"):
        if required:
            raise ValueError(f"~HS {name} field is {value!r}, not 0 or 1")
        return False
    return value == b"1"


def decode_host_status(answer: bytes) -> StatusReport:
    """The status in a ``~HS`` answer (its first two strings at least); ValueError for
    bytes that are not one."""
    strings = [m.group(1).split(b",") for m in _FRAME.finditer(answer)]
    if len(strings) < 2:
        raise ValueError("not a ~HS answer (fewer than two STX...ETX strings)")
    flags: dict[str, bool] = {}
    for name in FLAG_NAMES:
        string, index = _FIELDS[name]
        # Paper, pause, head and ribbon are in every model's answer; the rest may
        # be missing on older firmware.
        required = index <= 3
        flags[name] = _flag(strings[string], index, name, required=required)
    status = printer_status(
        error=any(flags[name] for name in _ERRORS),
        cover_open=flags["head_open"],
        paper_out=flags["paper_end"],
        offline=flags["paused"],
    )
    return StatusReport(status=status, flags=flags)


#: The condition the simulator reports for each of its states (a label printer has
#: no paper near-end sensor: ``paper_low`` answers as online).
_STATE_CONDITIONS: dict[str, dict[str, bool]] = {
    "online": {},
    "paper_low": {},
    "offline": {"paused": True},
    "paper_out": {"paper_end": True, "paused": True},
    "cover_open": {"head_open": True, "paused": True},
    "error": {"ribbon_out": True, "paused": True},
}


def encode_host_status(state: str) -> bytes:
    """The ``~HS`` answer of a printer in ``state`` (one of the simulator's states),
    as a Zebra printer sends it."""
    try:
        condition = _STATE_CONDITIONS[state]
    except KeyError:
        raise ValueError(f"unknown printer state {state!r}") from None

    def bit(name: str) -> str:
        return "1" if condition.get(name) else "0"

    string1 = (
        f"030,{bit('paper_end')},{bit('paused')},1218,000,{bit('buffer_full')},0,0,000,"
        f"{bit('ram_corrupt')},{bit('under_temperature')},{bit('over_temperature')}"
    )
    string2 = f"001,0,{bit('head_open')},{bit('ribbon_out')},0,2,6,0,00000000,1,000"
    string3 = "1234,0"
    return b"".join(b"\x02" + s.encode() + b"\x03\r\n" for s in (string1, string2, string3))
