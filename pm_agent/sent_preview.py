"""The sent preview of a job (:mod:`pm_core.sent_preview`), made from the bytes the
agent wrote to the printer, not from the document.

The bytes are decoded the way the printer reads them: ESC/POS by
:class:`~pm_agent.escpos_stream.EscPosDecoder` with the printer's profile (text back
from its code page or double-byte mode), Star Line and Star raster by
:class:`~pm_agent.star_stream.StarDecoder`; the lines are laid out by
:class:`~pm_agent.paper_lines.PaperLines`, as the simulated printer lays out a
receipt. Every picture (a text block drawn as an image, a QR code, a logo, a whole
Star raster ticket) becomes a thumbnail under ``[image WxH dots]``; cuts and drawer
kicks a short marker line. ``zpl``/``raw`` bytes are not decoded: ``[raw N bytes]``
and a short printable excerpt.

Pure CPU work, bounded by the bytes; the printer's thread runs it after a write.
"""

from __future__ import annotations

import logging
from typing import Any

from pm_agent.escpos_events import Cut, Drawer, Image
from pm_agent.escpos_image import image_from_commands
from pm_agent.escpos_stream import EscPosDecoder
from pm_agent.paper_lines import PaperLines
from pm_agent.star_stream import RasterImage, StarDecoder
from pm_core.protocol.languages import DEFAULT_LANGUAGE, PASS_THROUGH_LANGUAGES, STAR_LANGUAGES
from pm_core.sent_preview import bounded_preview, image_label, image_lines, thumbnail_lines

log = logging.getLogger(__name__)

#: Lines and characters per line of a ``zpl``/``raw`` excerpt.
EXCERPT_LINES = 4
EXCERPT_CHARS = 60
#: Cut and drawer markers.
CUT_LINE = "-" * 16 + " cut " + "-" * 16
PARTIAL_CUT_LINE = "-" * 13 + " partial cut " + "-" * 12


class _SentLines(PaperLines):
    """Paper lines with pictures drawn small and printer actions marked."""

    def __init__(self) -> None:
        super().__init__()
        self._raw = b""

    def add_pair(self, event: object, raw: bytes) -> None:
        self._raw = raw
        if isinstance(event, RasterImage):
            self._picture_lines(image_lines(event.image))
        elif isinstance(event, Cut):
            self.lines = self.all_lines()  # the feed to the cutter
            self.line = []
            self.block(PARTIAL_CUT_LINE if event.partial else CUT_LINE)
        elif isinstance(event, Drawer):
            self.block(f"[drawer kick, pin {event.pin}]")
        else:
            self.add_event(event)

    def picture(self, event: Image) -> None:
        image = image_from_commands(self._raw)
        label = image_label(event.width, event.height)
        self._picture_lines([label, *(thumbnail_lines(image) if image is not None else [])])

    def _picture_lines(self, lines: list[str]) -> None:
        for line in lines:
            self.block(line)


def _excerpt(data: bytes) -> list[str]:
    text = "".join(
        chr(b) if 0x20 <= b < 0x7F or b == 0x0A else "·" for b in data[: EXCERPT_LINES * 120]
    )
    lines = [line[:EXCERPT_CHARS] for line in text.split("\n") if line.strip()]
    return lines[:EXCERPT_LINES]


def sent_lines(data: bytes, *, language: str, profile: str | None = None) -> list[str]:
    """The lines of paper ``data`` makes on a printer speaking ``language``."""
    if language in PASS_THROUGH_LANGUAGES:
        return [f"[raw {len(data)} bytes]", *_excerpt(data)]
    paper = _SentLines()
    if language in STAR_LANGUAGES:
        star = StarDecoder()
        for event, raw in [*star.feed(data), *star.flush()]:
            paper.add_pair(event, raw)
    else:
        decoder = EscPosDecoder(profile)
        for event, raw in [*decoder.feed_raw(data), *decoder.flush_raw()]:
            paper.add_pair(event, raw)
    return paper.all_lines()


def sent_preview(
    data: bytes, *, language: str | None, profile: str | None = None, copies: int = 1
) -> dict[str, Any]:
    """The bounded preview of one copy's ``data`` (sent ``copies`` times)."""
    language = language or DEFAULT_LANGUAGE
    lines = sent_lines(data, language=language, profile=profile)
    if copies > 1:
        lines.append(f"[{copies} copies of this]")
    return bounded_preview(lines, sent_bytes=len(data) * copies, language=language)


def try_sent_preview(
    data: bytes, *, language: str | None, profile: str | None = None, copies: int = 1
) -> dict[str, Any] | None:
    """:func:`sent_preview`, or None (with a log line) if the bytes cannot be read
    back: a preview is never a reason for a job to fail."""
    try:
        return sent_preview(data, language=language, profile=profile, copies=copies)
    except Exception:
        log.warning("no sent preview: the bytes sent could not be read back", exc_info=True)
        return None
