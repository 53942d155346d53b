"""A job document drawn as one black-and-white image, as wide as the paper.

:func:`ticket_image` draws every block of a (validated) document top to bottom on
a white strip ``dots`` wide and returns a mode ``"1"`` Pillow image: what a
raster-only printer (Star raster, CloudPRNT's PNG) prints. :func:`text_block_image`
draws one text block; the ESC/POS renderer uses it for text its code pages cannot
hold.

Text is drawn with the fonts of a :class:`~pm_core.fonts.FontSet` (each character
with the first font that holds it) at the size of the printer's Font A (24 dots);
``width``/``height`` scale it as on the printer. Lines are wrapped at the paper's
width. Right-to-left lines (Arabic, Persian, Urdu, Hebrew) are laid out by Pillow's
libraqm where it is there and one font holds the whole line, else shaped with
arabic-reshaper and put in visual order with python-bidi. A character no font holds
raises :class:`UnprintableText` naming it.

Images, the whole-ticket ``ticket_image`` and the pages of a ``pdf`` are dithered;
text is thresholded. ``cut`` and ``drawer`` blocks draw nothing (they are printer
actions). Pure CPU work: run it off the event loop.
"""

from __future__ import annotations

import base64
import io
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, features

from pm_core.fonts import FontSet, default_fonts, needs_glyph
from pm_core.protocol.documents import barcode_payload, validate_document

#: Font A of an ESC/POS printer is 12 x 24 dots; drawn text is as tall.
TEXT_SIZE = 24
#: A line of text takes this many dots (ESC/POS default line spacing is ~1/6 inch).
LINE_DOTS = 32
#: Where the baseline sits in a line, from its top.
BASELINE = 25
#: The tallest ticket drawn (about 4 m of paper at 203 dpi).
MAX_TICKET_DOTS = 32768
#: python-barcode symbologies for the document's barcode kinds (others are printed
#: as their text).
BARCODE_CLASSES = {
    "CODE128": "code128",
    "GS1-128": "gs1_128",
    "EAN13": "ean13",
    "EAN8": "ean8",
    "UPC-A": "upca",
    "CODE39": "code39",
    "ITF": "itf",
    "NW7": "codabar",
    "CODABAR": "codabar",
}
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


def _line_block(block: dict[str, Any], dots: int, fonts: FontSet) -> Image.Image:
    painter = _TextPainter(fonts, TEXT_SIZE, False)
    if fonts.missing(block["char"]):
        raise UnprintableText(fonts.missing(block["char"]))
    one = max(1, painter.width(block["char"]))
    count = max(1, dots // one)  # across the paper, as the printer's line of columns
    img = painter.line(block["char"] * count, 0)
    out = Image.new("L", (dots, img.height), 255)
    out.paste(img.crop((0, 0, min(dots, img.width), img.height)), (0, 0))
    return _threshold(out)


def _fit(img: Image.Image, dots: int, *, full_width: bool) -> Image.Image:
    """An image as black and white (dithered) on white, at most ``dots`` wide (exactly,
    when ``full_width``), centred on a strip ``dots`` wide."""
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("L")
    if img.width > dots or (full_width and img.width != dots):
        height = max(1, round(img.height * dots / img.width))
        img = img.resize((dots, height), Image.Resampling.LANCZOS)
    out = Image.new("1", (dots, img.height), 1)
    out.paste(img.convert("1"), ((dots - img.width) // 2, 0))
    return out


def decode_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return opened.copy()


def qr_matrix_image(data: str, size: int, dots: int) -> Image.Image:
    """A QR code, ``size`` dots a module (fewer when it would not fit), centred."""
    import qrcode

    code = qrcode.QRCode(version=None, border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = len(matrix)
    scale = max(1, min(size, dots // modules))
    img = Image.new("L", (modules, modules), 255)
    img.putdata([0 if dark else 255 for row in matrix for dark in row])
    img = img.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)
    return _fit(img, dots, full_width=False)


def _barcode_block(block: dict[str, Any], dots: int, fonts: FontSet) -> Image.Image:
    """Bars drawn from python-barcode's modules (``width`` dots each, fewer when they
    would not fit), the data below; kinds it does not draw are printed as text."""
    import barcode
    from barcode.errors import BarcodeError

    text = {"type": "text", "text": block["data"], "align": "center"}
    name = BARCODE_CLASSES.get(block["kind"])
    modules = ""
    if name is not None:
        data = block["data"]
        if name == "code128" and block["kind"] == "CODE128":
            data = barcode_payload("CODE128", data)[2:].replace("{{", "{")
        try:
            modules = "".join(barcode.get_barcode_class(name)(data).build())
        except (BarcodeError, ValueError, TypeError):
            modules = ""
    if not modules:
        return text_block_image(text, dots=dots, fonts=fonts)
    quiet = 10
    module = min(block["width"], dots // (len(modules) + 2 * quiet))
    if module < 1:
        return text_block_image(text, dots=dots, fonts=fonts)
    bars = Image.new("1", (len(modules) * module, block["height"]), 1)
    draw = ImageDraw.Draw(bars)
    for i, bit in enumerate(modules):
        if bit == "1":
            draw.rectangle((i * module, 0, (i + 1) * module - 1, block["height"] - 1), fill=0)
    caption = text_block_image(text, dots=dots, fonts=fonts)
    out = Image.new("1", (dots, bars.height + caption.height), 1)
    out.paste(bars, ((dots - bars.width) // 2, 0))
    out.paste(caption, (0, bars.height))
    return out


def pdf_page_images(data: bytes, dots: int) -> list[Image.Image]:
    """Each page of a PDF rendered ``dots`` wide, in grey (pypdfium2)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        pages = []
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                width, _ = page.get_size()
                bitmap = page.render(scale=dots / max(1.0, width), grayscale=True)
                pages.append(bitmap.to_pil().convert("L"))
            finally:
                page.close()
        return pages
    finally:
        pdf.close()


def block_images(block: dict[str, Any], *, dots: int, fonts: FontSet) -> list[Image.Image]:
    """The strips one validated block draws, top to bottom (none for cut, drawer)."""
    kind = block["type"]
    if kind == "text":
        return [text_block_image(block, dots=dots, fonts=fonts)]
    if kind == "line":
        return [_line_block(block, dots, fonts)]
    if kind == "feed":
        return [Image.new("1", (dots, LINE_DOTS * block["lines"]), 1)]
    if kind == "image":
        return [_fit(decode_image(_b64(block["png_base64"])), dots, full_width=False)]
    if kind == "ticket_image":
        return [_fit(decode_image(_b64(block["image_base64"])), dots, full_width=True)]
    if kind == "pdf":
        return [
            _fit(p, dots, full_width=True) for p in pdf_page_images(_b64(block["pdf_base64"]), dots)
        ]
    if kind == "qr":
        return [qr_matrix_image(block["data"], block["size"], dots)]
    if kind == "barcode":
        return [_barcode_block(block, dots, fonts)]
    return []


def _b64(value: str) -> bytes:
    return base64.b64decode("".join(value.split()))


def ticket_image(
    document: dict[str, Any],
    *,
    dots: int,
    fonts: FontSet | None = None,
    header: str | None = None,
) -> Image.Image:
    """The whole ``document`` drawn ``dots`` wide, mode ``"1"`` (0 = black), after the
    optional ``header`` line (bold, centred: ``BACKUP FROM Kitchen-1``).

    Raises ``ProtocolError`` for an invalid document, :class:`UnprintableText` when
    some text has characters no font holds, and ``ValueError`` for a ``raw_base64``
    document (bytes for a printer, not a picture) or a ticket taller than
    :data:`MAX_TICKET_DOTS`."""
    if not 8 <= dots <= 4096:
        raise ValueError(f"dots must be from 8 to 4096, got {dots}")
    doc = validate_document(document)
    if "raw_base64" in doc:
        raise ValueError("a raw_base64 document holds printer commands, not a picture")
    fonts = fonts or default_fonts()
    blocks: list[dict[str, Any]] = list(doc["blocks"])
    if header:
        shown = "".join(ch for ch in header if ch.isprintable())
        title = {"type": "text", "text": shown, "bold": True, "align": "center"}
        blocks.insert(0, {**title, "underline": 0, "width": 1, "height": 1})
    missing = [
        c
        for c in dict.fromkeys("".join(b.get("text", "") for b in blocks))
        if needs_glyph(c) and fonts.face_for(c) is None
    ]
    if missing:
        raise UnprintableText(missing)
    strips: list[Image.Image] = []
    height = 0
    for block in blocks:
        for strip in block_images(block, dots=dots, fonts=fonts):
            height += strip.height
            if height > MAX_TICKET_DOTS:
                raise ValueError(f"the ticket is taller than {MAX_TICKET_DOTS} dots")
            strips.append(strip)
    out = Image.new("1", (dots, max(1, height)), 1)
    y = 0
    for strip in strips:
        out.paste(strip, (0, y))
        y += strip.height
    return out
