"""What the ESC/POS decoder (:mod:`pm_agent.escpos_stream`) turns a printer's input
into: small frozen events (text, line feeds, style changes, barcodes, QR codes,
images, cuts, status requests, ...). The simulated printer and the render tests
read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Text:
    """Printable text, decoded with the active code page."""

    text: str


@dataclass(frozen=True)
class LineFeed:
    """LF: print the line buffer and start a new line."""


@dataclass(frozen=True)
class Style:
    """A print-mode change, e.g. ``Style("bold", True)`` or ``Style("align", "center")``."""

    name: str
    value: Any


@dataclass(frozen=True)
class StatusRequest:
    """``DLE EOT n``: the printer must answer one status byte."""

    n: int


@dataclass(frozen=True)
class Cut:
    """A paper cut (``GS V``, ``ESC i``, ``ESC m``)."""

    partial: bool = False


@dataclass(frozen=True)
class Barcode:
    """A barcode printed by the printer (``GS k``) or a non-QR 2D symbol."""

    kind: str
    data: str


@dataclass(frozen=True)
class QRCode:
    """A native QR code (``GS ( k`` store + print)."""

    data: str


@dataclass(frozen=True)
class Image:
    """A printed bit image; fragments of one python-escpos image are merged."""

    width: int
    height: int


@dataclass(frozen=True)
class Drawer:
    """A cash drawer kick on connector pin 2 or 5."""

    pin: int


@dataclass(frozen=True)
class Feed:
    """Print and feed ``lines`` lines (``ESC d``) or ``dots`` dots (``ESC J``)."""

    lines: int
    dots: int = 0


@dataclass(frozen=True)
class IdentityRequest:
    """``GS I n``: the printer must answer its model, type, version, maker, ..."""

    n: int


@dataclass(frozen=True)
class Init:
    """``ESC @``: reset the print modes."""


@dataclass(frozen=True)
class Buzzer:
    """The internal buzzer (``ESC B n t``, as python-escpos sends it)."""

    times: int
    duration: int


@dataclass(frozen=True)
class Unknown:
    """Bytes the decoder does not interpret (kept so nothing is lost)."""

    data: bytes


Event = (
    Text
    | LineFeed
    | Style
    | StatusRequest
    | Cut
    | Barcode
    | QRCode
    | Image
    | Drawer
    | Feed
    | IdentityRequest
    | Init
    | Buzzer
    | Unknown
)


def always_processed(event: object) -> bool:
    """Events a printer deselected with ``ESC = n`` still acts on."""
    return isinstance(event, StatusRequest) or (
        isinstance(event, Style) and event.name == "peripheral"
    )


@dataclass
class ImagePart:
    """One image command; merged into :class:`Image` by the decoder."""

    kind: str  # "raster", "graphics" or "column"
    width: int
    height: int
