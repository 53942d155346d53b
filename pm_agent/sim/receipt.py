"""What a simulated printer prints: :class:`Receipt` (one piece of paper, with its
text and raw bytes) and the builder that turns decoded ESC/POS events into one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pm_agent.escpos_events import Event, IdentityRequest, StatusRequest
from pm_agent.paper_lines import PaperLines


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


class ReceiptBuilder(PaperLines):
    """Collects the events of the receipt being printed on one connection."""

    def __init__(self) -> None:
        super().__init__()
        self.raw = bytearray()
        self.images: list[Any] = []

    def add_raster(self, image: Any, raw: bytes) -> None:
        """A Star raster page or block (a Pillow image)."""
        self.raw += raw
        self.images.append(image)
        self.block(f"[RASTER {image.width}x{image.height}]")

    def add(self, event: Event, raw: bytes) -> None:
        if isinstance(event, StatusRequest | IdentityRequest):
            return  # queries are not part of the paper
        self.raw += raw
        self.add_event(event)
