"""What a simulated printer prints: :class:`Receipt` (one piece of paper, with its
text and raw bytes) and the builder that turns decoded ESC/POS events into one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pm_agent.escpos_events import (
    Barcode,
    Event,
    IdentityRequest,
    Image,
    LineFeed,
    QRCode,
    StatusRequest,
    Text,
)
from pm_agent.escpos_events import (
    Feed as FeedEvent,
)


@dataclass
class Receipt:
    """One printed piece of paper.

    ``text`` has one line per line feed; barcodes appear as
    ``[BARCODE CODE128 data]``, QR codes as ``[QR data]``, images as
    ``[IMAGE WxH]`` (a Star raster page or block as ``[RASTER WxH]``, its picture in
    ``images``). ``cut`` is False when the sender closed the connection without
    cutting.
    """

    text: str
    raw: bytes
    finished_at: float
    cut: bool
    images: list[Any] = field(default_factory=list)

    def to_json(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "text": self.text,
            "cut": self.cut,
            "finished_at": self.finished_at,
            "bytes": len(self.raw),
            "images": [list(image.size) for image in self.images],
        }


class ReceiptBuilder:
    """Collects the events of the receipt being printed on one connection."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.raw = bytearray()
        self.has_content = False
        self.images: list[Any] = []

    def add_raster(self, image: Any, raw: bytes) -> None:
        """A Star raster page or block (a Pillow image)."""
        self.raw += raw
        self.images.append(image)
        self._block(f"[RASTER {image.width}x{image.height}]")

    def add(self, event: Event, raw: bytes) -> None:
        if isinstance(event, StatusRequest | IdentityRequest):
            return  # queries are not part of the paper
        self.raw += raw
        if isinstance(event, Text):
            self.line.append(event.text)
            self.has_content = True
        elif isinstance(event, LineFeed):
            self._newline()
            self.has_content = True
        elif isinstance(event, FeedEvent):
            if event.lines == 0:
                if self.line:
                    self._newline()
            else:
                self._newline()
                self.lines.extend([""] * (event.lines - 1))
        elif isinstance(event, Barcode):
            self._block(f"[BARCODE {event.kind} {event.data}]")
        elif isinstance(event, QRCode):
            self._block(f"[QR {event.data}]")
        elif isinstance(event, Image):
            self._block(f"[IMAGE {event.width}x{event.height}]")

    def _newline(self) -> None:
        self.lines.append("".join(self.line))
        self.line = []

    def _block(self, text: str) -> None:
        if self.line:
            self._newline()
        self.lines.append(text)
        self.has_content = True

    def text(self) -> str:
        lines = [*self.lines, "".join(self.line)] if self.line else list(self.lines)
        while lines and not lines[-1].strip():
            lines.pop()  # the feed before the cut
        return "\n".join(lines)
