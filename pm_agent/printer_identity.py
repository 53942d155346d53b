"""Who a printer is: ``GS I`` (transmit printer ID) on first contact.

``GS I 0x44`` gives the serial number, ``0x43`` the model name, ``0x42`` the maker,
``0x41`` the firmware; ``GS I 1/2/3`` the model, type and version ids. A printer
that tells its serial is identified as ``serial:<SERIAL>``, so the hub keeps its id
and history when it turns up at another address (DHCP, another USB port). A
printer that answers nothing is identified by the address the user configured.

Everything here blocks; it runs on the printer's worker thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

GS_I = b"\x1dI"
FIRMWARE = 0x41
MAKER = 0x42
MODEL = 0x43
SERIAL = 0x44
MODEL_ID, TYPE_ID, VERSION_ID = 1, 2, 3
#: Answer header of the string variants (``GS I 0x41``..``0x45``).
STRING_HEADER = 0x5F
MAX_STRING = 80
#: ``GS I 2`` type id bit: an autocutter is fitted.
TYPE_AUTOCUTTER = 0x02


class IdentityPort(Protocol):
    description: str

    def query_identity(self, n: int, timeout: float) -> bytes | None:
        """The answer to ``GS I n`` (the string without header and NUL for
        n >= 0x41, one byte otherwise), or None when the printer said nothing."""
        ...


def identity_request(n: int) -> bytes:
    return GS_I + bytes([n])


def read_identity_answer(
    n: int, read: Callable[[int, float], bytes | None], timeout: float
) -> bytes | None:
    """Read the answer to ``GS I n`` with ``read(count, timeout)`` (None on timeout)."""
    deadline = time.monotonic() + timeout
    if n < FIRMWARE:
        return read(1, timeout)
    data = b""
    while len(data) <= MAX_STRING:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        byte = read(1, remaining)
        if byte is None:
            return None
        if byte == b"\x00":
            break
        data += byte
    if data[:1] == bytes([STRING_HEADER]):
        data = data[1:]
    return data


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = "".join(c for c in raw.decode("ascii", "replace") if c.isprintable()).strip()
    return text[:64] or None


@dataclass(frozen=True)
class PrinterIdentity:
    """What a printer says about itself (every field None when it said nothing)."""

    serial: str | None = None
    model: str | None = None
    maker: str | None = None
    firmware: str | None = None
    model_id: int | None = None
    type_id: int | None = None
    version_id: int | None = None

    @property
    def answered(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    @property
    def has_cutter(self) -> bool | None:
        return None if self.type_id is None else bool(self.type_id & TYPE_AUTOCUTTER)

    def key(self, fallback: str) -> str:
        """``serial:<SERIAL>`` when the printer told its serial, else ``fallback``."""
        return f"serial:{self.serial}" if self.serial else fallback

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def read_identity(port: IdentityPort, *, timeout: float = 0.8) -> PrinterIdentity:
    """Ask ``GS I``; stops early when the printer does not answer the string variants."""
    serial = _text(port.query_identity(SERIAL, timeout))
    model = _text(port.query_identity(MODEL, timeout))
    if serial is None and model is None:
        log.info("%s does not answer GS I; identified by its address", port.description)
        return PrinterIdentity()
    maker = _text(port.query_identity(MAKER, timeout))
    firmware = _text(port.query_identity(FIRMWARE, timeout))
    ids: dict[int, int | None] = {}
    for n in (MODEL_ID, TYPE_ID, VERSION_ID):
        raw = port.query_identity(n, timeout)
        ids[n] = raw[0] if raw else None
    identity = PrinterIdentity(
        serial=serial,
        model=model,
        maker=maker,
        firmware=firmware,
        model_id=ids[MODEL_ID],
        type_id=ids[TYPE_ID],
        version_id=ids[VERSION_ID],
    )
    log.info("%s is %s", port.description, identity.to_json())
    return identity
