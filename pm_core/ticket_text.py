"""Text drawn as black-and-white strips at the printer's width, in any script.

:func:`text_block_image` draws one text block (the ESC/POS renderer sends text its
code pages cannot hold this way; :mod:`pm_core.ticket_image` draws whole tickets).
Text is drawn with the fonts of a :class:`~pm_core.fonts.FontSet` (each character
with the first font that holds it) at the size of the printer's Font A (24 dots);
``width``/``height`` scale it as on the printer. Lines are wrapped at the paper's
width. Right-to-left lines (Arabic, Persian, Urdu, Hebrew) are laid out by Pillow's
libraqm where it is there and one font holds the whole line, else shaped with
arabic-reshaper and put in visual order with python-bidi. A character no font holds
raises :class:`UnprintableText` naming it. Text is thresholded (not dithered).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, features

from pm_core.fonts import FontSet, default_fonts, needs_glyph

#: Font A of an ESC/POS printer is 12 x 24 dots; drawn text is as tall.
TEXT_SIZE = 24
#: A line of text takes this many dots (ESC/POS default line spacing is ~1/6 inch).
LINE_DOTS = 32
#: Where the baseline sits in a line, from its top.
BASELINE = 25
_RTL_CLASSES = frozenset({"R", "AL"})
_TOKENS = re.compile(r"\s+|[^\s]+")


class UnprintableText(ValueError):
    """Text no font of the set can draw; ``chars`` are the characters."""

    def __init__(self, chars: list[str], *, why: str = "no font holds them") -> None:
        self.chars = chars
        super().__init__(f"cannot print {describe_chars(chars)}: {why}")


def describe_chars(chars: list[str], limit: int = 8) -> str:
    """``U+0E01 'ก', U+4E2D '中'`` (at most ``limit``, then how many more)."""
    shown = [f"U+{ord(c):04X} {c!r}" for c in chars[:limit]]
    if len(chars) > limit:
        shown.append(f"and {len(chars) - limit} more")
    return ", ".join(shown)


def has_raqm() -> bool:
    """Pillow has libraqm (complex layout: shaping, bidi) here."""
    return bool(features.check("raqm"))


def is_rtl(text: str) -> bool:
    """``text`` holds right-to-left letters (Arabic, Hebrew, ...)."""
    return any(unicodedata.bidirectional(c) in _RTL_CLASSES for c in text)


def visual_order(text: str) -> str:
    """One line shaped (Arabic presentation forms) and in visual order, left to right
    as it appears on paper: what a printer that draws characters one by one needs."""
    import arabic_reshaper
    from bidi import get_display

    return str(get_display(arabic_reshaper.reshape(text)))


_fonts_here = threading.local()


def _font(path: Path, size: int, complex_layout: bool) -> ImageFont.FreeTypeFont:
    """An opened font, kept per thread (a FreeType face must not be used by two
    threads at once; each printer renders on its own)."""
    cache: dict[tuple[Path, int, bool], ImageFont.FreeTypeFont] | None
    cache = getattr(_fonts_here, "cache", None)
    if cache is None:
        cache = _fonts_here.cache = {}
    key = (path, size, complex_layout)
    font = cache.get(key)
    if font is None:
        if len(cache) >= 64:
            cache.clear()
        engine = ImageFont.Layout.RAQM if complex_layout else ImageFont.Layout.BASIC
        font = cache[key] = ImageFont.truetype(str(path), size, layout_engine=engine)
    return font


class _TextPainter:
    """Draws lines of one size and weight with a font set."""

    def __init__(self, fonts: FontSet, size: int, bold: bool) -> None:
        self.fonts = fonts
        self.size = size
        self.stroke = 1 if bold else 0
        self.raqm = has_raqm()
        self.line_dots = round(LINE_DOTS * size / TEXT_SIZE)
        self.baseline = round(BASELINE * size / TEXT_SIZE)

    def runs(self, text: str) -> list[tuple[str, Path]]:
        """``text`` cut where the font changes; characters with nothing to draw stay
        with the run they are in."""
        runs: list[tuple[str, Path]] = []
        current: list[str] = []
        face: Path | None = None
        for char in text:
            if needs_glyph(char):
                wanted = face if face is not None and self.fonts.covers(face, char) else None
                wanted = wanted or self.fonts.face_for(char)
                if wanted is None:
                    raise UnprintableText([char])
                if face is not None and wanted != face and current:
                    runs.append(("".join(current), face))
                    current = []
                face = wanted
            current.append(char)
        if current:
            first = face or self.fonts.face_for("A") or next(iter(self.fonts.files), None)
            if first is None:
                raise UnprintableText([c for c in text if needs_glyph(c)] or ["A"])
            runs.append(("".join(current), first))
        return runs

    def _pieces(self, text: str) -> list[tuple[str, ImageFont.FreeTypeFont, str | None]]:
        """What to draw left to right: (text, font, raqm direction or None)."""
        runs = self.runs(text)
        if not is_rtl(text):
            return [
                (t, _font(f, self.size, self.raqm), "ltr" if self.raqm else None) for t, f in runs
            ]
        if self.raqm and len(runs) == 1:
            direction = "rtl" if _first_strong_rtl(text) else "ltr"
            return [(text, _font(runs[0][1], self.size, True), direction)]
        visual = visual_order(text)
        return [(t, _font(f, self.size, False), None) for t, f in self.runs(visual)]

    def width(self, text: str) -> int:
        total = 0.0
        for piece, font, direction in self._pieces(text):
            total += font.getlength(piece, direction=direction) + 2 * self.stroke
        return int(total + 0.999)

    def line(self, text: str, underline: int) -> Image.Image:
        """One line, black on white, as wide as it is."""
        pieces = self._pieces(text)
        widths = [
            int(font.getlength(p, direction=d) + 0.999) + 2 * self.stroke for p, font, d in pieces
        ]
        img = Image.new("L", (max(1, sum(widths)), self.line_dots), 255)
        draw = ImageDraw.Draw(img)
        x = 0
        for (piece, font, direction), w in zip(pieces, widths, strict=True):
            draw.text(
                (x + self.stroke, self.baseline),
                piece,
                font=font,
                fill=0,
                anchor="ls",
                direction=direction,
                stroke_width=self.stroke,
                stroke_fill=0,
            )
            x += w
        if underline:
            y = min(self.line_dots - 1, self.baseline + 3)
            thickness = underline * max(1, self.size // 24)
            draw.rectangle((0, y, img.width - 1, min(self.line_dots - 1, y + thickness - 1)), 0)
        return img


def _first_strong_rtl(text: str) -> bool:
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _RTL_CLASSES:
            return True
        if kind == "L":
            return False
    return False


def _wrap(text: str, limit: int, measure: Callable[[str], int]) -> Iterator[str]:
    """Lines of ``text`` (split at line feeds) no wider than ``limit``, broken after
    spaces, or between characters in a word too long for a line (CJK has no spaces)."""
    for paragraph in text.expandtabs(4).split("\n"):
        if measure(paragraph) <= limit:  # most receipt lines fit: one measure
            yield paragraph.rstrip()
            continue
        line = ""
        for token in _TOKENS.findall(paragraph):
            if measure(line + token) <= limit:
                line += token
                continue
            if line.strip():
                yield line.rstrip()
                line = ""
            token = token if token.strip() else ""
            while token:
                cut = _fitting(token, limit, measure)
                if cut == len(token):
                    break
                yield token[:cut]
                token = token[cut:]
            line = token
        yield line.rstrip()


def _fitting(token: str, limit: int, measure: Callable[[str], int]) -> int:
    """How many leading characters of ``token`` fit in ``limit`` (at least one), with
    few measures of short prefixes (a 4096-character word costs milliseconds)."""
    low, high = 1, 2
    while high <= len(token) and measure(token[:high]) <= limit:
        low, high = high, high * 2
    high = min(high, len(token) + 1)  # token[:high] does not fit (or is past the end)
    while high - low > 1:
        middle = (low + high) // 2
        if measure(token[:middle]) <= limit:
            low = middle
        else:
            high = middle
    return low


def _threshold(img: Image.Image) -> Image.Image:
    return img.point(lambda v: 255 if v >= 128 else 0, mode="1")


def text_block_image(
    block: dict[str, Any], *, dots: int, fonts: FontSet | None = None
) -> Image.Image:
    """A validated ``text`` block drawn ``dots`` wide (mode ``"1"``); raises
    :class:`UnprintableText` when no font holds some of its characters."""
    fonts = fonts or default_fonts()
    missing = fonts.missing(block["text"])
    if missing:
        raise UnprintableText(missing)
    wide, high = block.get("width", 1), block.get("height", 1)
    painter = _TextPainter(fonts, TEXT_SIZE * high, bool(block.get("bold")))
    stretch = wide / high
    limit = max(1, int(dots / stretch))
    lines: list[Image.Image] = []
    for text in _wrap(block["text"], limit, painter.width):
        img = painter.line(text, int(block.get("underline", 0)))
        if stretch != 1:
            img = img.resize((max(1, round(img.width * stretch)), img.height))
        lines.append(img)
    out = Image.new("L", (dots, sum(i.height for i in lines)), 255)
    y = 0
    align = block.get("align", "left")
    for img in lines:
        img = img.crop((0, 0, min(img.width, dots), img.height))
        x = {"left": 0, "center": (dots - img.width) // 2, "right": dots - img.width}[align]
        out.paste(img, (x, y))
        y += img.height
    return _threshold(out)


def line_block_image(block: dict[str, Any], *, dots: int, fonts: FontSet) -> Image.Image:
    """A validated ``line`` block: its character repeated across the paper."""
    painter = _TextPainter(fonts, TEXT_SIZE, False)
    if fonts.missing(block["char"]):
        raise UnprintableText(fonts.missing(block["char"]))
    one = max(1, painter.width(block["char"]))
    count = max(1, dots // one)  # across the paper, as the printer's line of columns
    img = painter.line(block["char"] * count, 0)
    out = Image.new("L", (dots, img.height), 255)
    out.paste(img.crop((0, 0, min(dots, img.width), img.height)), (0, 0))
    return _threshold(out)
