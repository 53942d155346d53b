"""Decoder of the Star commands PrinterMaster sends (Star Line text, Star raster
pages, the ``ESC ACK SOH`` status request): what the simulated Star printer reads,
and what tests decode tickets with.

:class:`StarDecoder` is fed bytes as they arrive (a command split across two reads
waits for the rest) and returns ``(event, raw bytes)`` pairs with the events of
:mod:`pm_agent.escpos_events` where they mean the same (text, line feed, cut,
drawer, feed, style), plus :class:`StarStatusRequest` and :class:`RasterImage`
(a raster page or block, as a Pillow image).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from pm_agent.escpos_events import Cut, Drawer, Event, Feed, Init, LineFeed, Style, Text, Unknown
from pm_agent.star_line import CODEC_OF

ESC = 0x1B


@dataclass(frozen=True)
class StarStatusRequest:
    """``ESC ACK SOH``: the printer must answer its ASB status."""


@dataclass(frozen=True, eq=False)
class RasterImage:
    """Raster lines printed together (one page, or one block between text)."""

    image: Image.Image = field(repr=False)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def rows_to_image(rows: list[bytes]) -> Image.Image:
    """Raster rows (bit set = black) as a black-on-white image."""
    width_bytes = max((len(r) for r in rows), default=1) or 1
    padded = b"".join(r.ljust(width_bytes, b"\x00") for r in rows)
    bits = Image.frombytes("1", (width_bytes * 8, max(1, len(rows))), padded or b"\x00")
    return bits.point(lambda v: 0 if v else 255, mode="L").convert("1")


class StarDecoder:
    """Turns Star Line / Star raster bytes into events, incrementally."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.raster = False
        self.rows: list[bytes] = []
        self.cut_at_page_end = True
        self.code_page = "cp437"

    def feed(self, data: bytes) -> list[tuple[object, bytes]]:
        self.pending += data
        out: list[tuple[object, bytes]] = []
        while self.pending:
            parsed = self._next()
            if parsed is None:
                break  # an incomplete command: wait for more bytes
            size, events = parsed
            raw = bytes(self.pending[:size])
            del self.pending[:size]
            out.extend((event, raw) for event in events)
        return out

    def flush(self) -> list[tuple[object, bytes]]:
        """At the end of the stream: what raster lines are held, as an image."""
        return [(image, b"") for image in self._end_raster()]

    def _end_raster(self) -> list[object]:
        if not self.rows:
            return []
        image = RasterImage(rows_to_image(self.rows))
        self.rows = []
        return [image]

    def _number_until_nul(self, start: int) -> tuple[int, str] | None:
        end = self.pending.find(b"\x00", start)
        if end < 0:
            return None if len(self.pending) - start < 16 else (start + 16, "")
        return end + 1, self.pending[start:end].decode("ascii", "replace")

    def _next(self) -> tuple[int, list[object]] | None:
        buf = self.pending
        first = buf[0]
        if first == ESC:
            return self._escape()
        if self.raster and first == ord("b"):
            if len(buf) < 3:
                return None
            size = buf[1] | (buf[2] << 8)
            if len(buf) < 3 + size:
                return None
            self.rows.append(bytes(buf[3 : 3 + size]))
            return 3 + size, []
        if first == 0x0A:
            return 1, [LineFeed()]
        if first == 0x07:
            return 1, [Drawer(pin=2)]
        if first == 0x1A:
            return 1, [Drawer(pin=5)]
        if first < 0x20 or self.raster:
            return 1, [Unknown(bytes([first]))]
        end = 1
        while end < len(buf) and buf[end] >= 0x20:
            end += 1
        return end, [Text(bytes(buf[:end]).decode(self.code_page, "replace"))]

    def _escape(self) -> tuple[int, list[object]] | None:
        buf = self.pending
        if len(buf) < 2:
            return None
        op = buf[1]
        simple: dict[int, list[object]] = {
            ord("@"): [Init()],
            ord("E"): [Style("bold", True)],
            ord("F"): [Style("bold", False)],
        }
        if op in simple:
            return 2, simple[op]
        if op == 0x06:
            if len(buf) < 3:
                return None
            return 3, [StarStatusRequest()] if buf[2] == 0x01 else [Unknown(bytes(buf[:3]))]
        if op == 0x0C:
            if len(buf) < 3:
                return None
            events = self._end_raster()
            if self.cut_at_page_end:
                events.append(Cut(partial=True))
            return 3, events
        if op in (ord("-"), ord("a"), ord("d")):
            if len(buf) < 3:
                return None
            n = buf[2]
            if op == ord("-"):
                return 3, [Style("underline", n)]
            if op == ord("a"):
                return 3, [Feed(lines=n)]
            return 3, [Cut(partial=n in (1, 3))]
        if op == ord("i"):
            return (4, [Style("size", (buf[2], buf[3]))]) if len(buf) >= 4 else None
        if op == 0x1D:
            if len(buf) < 4:
                return None
            if buf[2] == ord("t"):
                self.code_page = CODEC_OF.get(buf[3], "cp437")
                return 4, [Style("code_page", buf[3])]
            if buf[2] == ord("a"):
                return 4, [Style("align", buf[3])]
            return 4, [Unknown(bytes(buf[:4]))]
        if op == ord("*"):
            return self._raster_command()
        return 2, [Unknown(bytes(buf[:2]))]

    def _raster_command(self) -> tuple[int, list[object]] | None:
        buf = self.pending
        if len(buf) < 4:
            return None
        if buf[2] != ord("r"):
            return 3, [Unknown(bytes(buf[:3]))]
        letter = chr(buf[3])
        if letter in "RC":
            self.rows = [] if letter == "C" else self.rows
            return 4, []
        if letter == "A":
            self.raster = True
            self.cut_at_page_end = True
            return 4, []
        if letter == "B":
            self.raster = False
            return 4, self._end_raster()
        start = 5 if letter == "m" else 4
        if len(buf) < start:
            return None
        parsed = self._number_until_nul(start)
        if parsed is None:
            return None
        size, value = parsed
        if letter == "Y" and value.isdigit():
            self.rows.extend([b""] * int(value))
        elif letter == "E" and value.isdigit():
            self.cut_at_page_end = int(value) not in (0, 1)
        return size, []


def decode_star(data: bytes) -> list[object]:
    """Every event in ``data`` (a whole stream)."""
    decoder = StarDecoder()
    events = [event for event, _ in decoder.feed(data)]
    events.extend(event for event, _ in decoder.flush())
    return events


__all__ = ["Event", "RasterImage", "StarDecoder", "StarStatusRequest", "decode_star"]
