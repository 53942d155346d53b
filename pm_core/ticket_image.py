"""A job document drawn as one black-and-white image, as wide as the paper.

:func:`ticket_image` draws every block of a (validated) document top to bottom on
a white strip ``dots`` wide and returns a mode ``"1"`` Pillow image: what a
raster-only printer (Star raster, CloudPRNT's PNG) prints. Text blocks are drawn by
:mod:`pm_core.ticket_text` (any script; a character no font holds raises
:class:`UnprintableText` naming it); barcodes from python-barcode's modules, QR codes
from qrcode's matrix, PDF pages by pdfium in a child process (:mod:`pm_core.pdf_raster`).

Images, the whole-ticket ``ticket_image`` and the pages of a ``pdf`` are dithered;
text is thresholded. ``cut`` and ``drawer`` blocks draw nothing (they are printer
actions). Pure CPU work: run it off the event loop.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageDraw

from pm_core.fonts import FontSet, default_fonts, needs_glyph
from pm_core.pdf_raster import render_pdf_pages
from pm_core.protocol.documents import barcode_payload, validate_document
from pm_core.ticket_text import (
    LINE_DOTS,
    UnprintableText,
    describe_chars,
    is_rtl,
    line_block_image,
    text_block_image,
    visual_order,
)

__all__ = [
    "MAX_TICKET_DOTS",
    "UnprintableText",
    "block_images",
    "decode_image",
    "describe_chars",
    "is_rtl",
    "pdf_page_images",
    "qr_matrix_image",
    "text_block_image",
    "ticket_image",
    "visual_order",
]

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
    """Each page of a PDF rendered ``dots`` wide, in grey: by pdfium in a child
    process with a time limit (:func:`pm_core.pdf_raster.render_pdf_pages`; one PDF
    at a time, waiting at most :data:`~pm_core.protocol.documents.PDFIUM_WAIT_S`)."""
    return render_pdf_pages(data, dots)


def block_images(block: dict[str, Any], *, dots: int, fonts: FontSet) -> list[Image.Image]:
    """The strips one validated block draws, top to bottom (none for cut, drawer)."""
    kind = block["type"]
    if kind == "text":
        return [text_block_image(block, dots=dots, fonts=fonts)]
    if kind == "line":
        return [line_block_image(block, dots=dots, fonts=fonts)]
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


def header_block(header: str) -> dict[str, Any]:
    """The text block of a ticket's header line (bold, centred), in every renderer."""
    shown = "".join(ch for ch in header if ch.isprintable())
    title = {"type": "text", "text": shown, "bold": True, "align": "center"}
    return {**title, "underline": 0, "width": 1, "height": 1}


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
        blocks.insert(0, header_block(header))
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
