"""Turn a job document into ESC/POS bytes with python-escpos.

:func:`render_document` renders the document of DESIGN.md ("Job document")
through ``escpos.printer.Dummy`` so the bytes are exactly what python-escpos
would send to a real printer; :func:`render_test_page` builds the page of the
"test print" action.

Given the printer's capability profile, the document is made for that printer:
images are scaled to its paper width in dots, text uses its code pages, a QR code
is sent natively only when it can draw them (else printed as an image, or as its
text when the printer cannot print images either), and images use the first
image command it supports (raster, column, graphics) or are left out.

Text goes out by the path :mod:`pm_agent.text_paths` picks for each block (code
page, double-byte mode, or drawn as an image); a character no path prints raises
:class:`~pm_core.ticket_image.UnprintableText` before any byte is made. Whole-ticket
images and PDF pages are drawn by :mod:`pm_core.ticket_image` at the paper's width.

A printer whose language is ``zpl`` or ``raw`` gets a ``raw_base64`` document's bytes
as they are (no ``ESC @``, header, feed or cut); a document that only opens the
cash drawer opens it and neither feeds nor cuts.

Rendering is pure CPU work (no I/O); run it off the event loop when documents may
be large (images).
"""

from __future__ import annotations

import base64
import copy
import functools
import io
import logging
from datetime import datetime
from typing import Any

from escpos.constants import PAPER_FULL_CUT, PAPER_PART_CUT
from escpos.magicencode import Encoder
from escpos.printer import Dummy
from PIL import Image as PILImage

from pm_agent.escpos_events import (
    Cut,
)
from pm_agent.escpos_stream import (
    decode_all,
)
from pm_agent.text_paths import DOUBLE_BYTE_PROFILES, KANJI_OFF, KANJI_ON, TextPlan, plan_text
from pm_core.fonts import FontSet, default_fonts
from pm_core.protocol.documents import PRINTING_BLOCKS, barcode_payload, validate_document
from pm_core.protocol.languages import DEFAULT_LANGUAGE, PASS_THROUGH_LANGUAGES
from pm_core.ticket_image import MAX_TICKET_DOTS, block_images, text_block_image

logger = logging.getLogger(__name__)

#: Width in dots of one Font A character; used when the profile does not say
#: how wide the paper is.
DOTS_PER_COLUMN = 12
#: Image commands in the order they are preferred (python-escpos ``impl`` names,
#: which are also the profile's feature names).
IMAGE_COMMANDS = ("bitImageRaster", "bitImageColumn", "graphics")
TEST_PAGE_TITLE = "PRINTERMASTER TEST PAGE"
_BARCODE_TYPE_A = frozenset({"UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "NW7", "CODABAR"})


def _printer(profile: str | None, columns: int) -> tuple[Any, int]:
    """A Dummy printer whose profile knows its paper width in dots (so
    python-escpos neither complains on stdout nor refuses images)."""
    data, max_width, encoder = _profile_setup(profile, columns)
    printer = Dummy(profile=profile, magic_encode_args={"encoder": encoder})
    printer.profile.profile_data = data  # instance copy; the class data stays shared
    return printer, max_width


@functools.lru_cache(maxsize=64)
def _profile_setup(profile: str | None, columns: int) -> tuple[dict[str, Any], int, Encoder]:
    """Per profile and width, once (a ticket is rendered in ~0.1 ms; copying the
    profile and building the code page tables each time took as long again): the
    profile data with the width in dots, and the code page encoder (its tables are
    caches; each ticket still starts by selecting its code page)."""
    try:
        printer = Dummy(profile=profile)
    except KeyError:
        raise ValueError(f"unknown printer profile {profile!r}") from None
    data = copy.deepcopy(printer.profile.profile_data)
    width = data.setdefault("media", {}).setdefault("width", {})
    try:
        max_width = int(width.get("pixels"))
    except (TypeError, ValueError):
        max_width = columns * DOTS_PER_COLUMN
    max_width -= max_width % 8  # images are sent in whole bytes of 8 dots
    width["pixels"] = max_width
    return data, max_width, Encoder(printer.profile.get_code_pages())


def _image_command(p: Any) -> str | None:
    """The first image command the printer's profile supports, or None."""
    return next((c for c in IMAGE_COMMANDS if p.profile.supports(c)), None)


class _Layout:
    """What laying out one document for one printer needs besides python-escpos's
    printer: its paper, profile, text mode and fonts."""

    def __init__(
        self,
        p: Any,
        *,
        max_width: int,
        columns: int,
        profile: str | None,
        text_mode: str,
        fonts: FontSet | None,
    ) -> None:
        self.p = p
        self.max_width = max_width
        self.columns = columns
        self.profile = profile
        self.raster_only = text_mode == "raster"
        self.fonts = fonts
        self.image_command = _image_command(p)
        self.raster_dots = 0  # how tall the drawn parts are together

    def _raster(self, img: Any) -> None:
        """Send a drawn strip; ValueError past MAX_TICKET_DOTS of them together (about
        4 m of paper: a document of 500 blocks of CJK text would be more)."""
        assert self.image_command is not None
        self.raster_dots += img.height
        if self.raster_dots > MAX_TICKET_DOTS:
            raise ValueError(f"the ticket would be more than {MAX_TICKET_DOTS} dots of images")
        _print_image(self.p, img, self.image_command)

    def _plan(self, block: dict[str, Any]) -> TextPlan:
        return plan_text(
            block,
            encoder=self.p.magic.encoder,
            columns=self.columns,
            profile=self.profile,
            raster_only=self.raster_only,
            can_raster=self.image_command is not None,
            fonts=self.fonts or default_fonts(),
        )

    def line(self, block: dict[str, Any]) -> None:
        """A line block: its character across the paper, as text or drawn as wide."""
        as_text = _text_of(block["char"] * self.columns)
        plan = self._plan(as_text)
        if plan.path != "raster":
            self._send(as_text, plan)
            return
        for img in block_images(block, dots=self.max_width, fonts=self.fonts or default_fonts()):
            self._raster(img)

    def text(self, block: dict[str, Any]) -> None:
        """A text block by the path that prints every character of it."""
        self._send(block, self._plan(block))

    def _send(self, block: dict[str, Any], plan: TextPlan) -> None:
        if plan.path == "raster":
            fonts = self.fonts or default_fonts()
            self._raster(text_block_image(block, dots=self.max_width, fonts=fonts))
        elif plan.path == "double_byte":
            encoding = DOUBLE_BYTE_PROFILES[self.profile or ""]
            _text_block(self.p, block, plan.text, double_byte=encoding)
        else:
            _text_block(self.p, block, plan.text)

    def pictures(self, block: dict[str, Any]) -> None:
        """A whole-ticket image or a PDF, each page as wide as the paper."""
        if self.image_command is None:
            raise ValueError(
                f"printer profile {self.p.profile.name} cannot print images "
                f"(a {block['type']} block)"
            )
        for img in block_images(block, dots=self.max_width, fonts=self.fonts or default_fonts()):
            self._raster(img)


def _text_block(
    p: Any, block: dict[str, Any], text: str, *, double_byte: str | None = None
) -> None:
    styled = {}
    if block["bold"]:
        styled["bold"] = True
    if block["underline"]:
        styled["underline"] = block["underline"]
    if block["align"] != "left":
        styled["align"] = block["align"]
    sized = block["width"] != 1 or block["height"] != 1
    if sized:
        p.set(custom_size=True, width=block["width"], height=block["height"])
    if styled:
        p.set(**styled)
    if double_byte:
        p._raw(KANJI_ON + text.rstrip("\n").encode(double_byte) + KANJI_OFF + b"\n")
    else:
        p.text(text if text.endswith("\n") else text + "\n")
    reset: dict[str, Any] = {}
    if "bold" in styled:
        reset["bold"] = False
    if "underline" in styled:
        reset["underline"] = 0
    if "align" in styled:
        reset["align"] = "left"
    if reset:
        p.set(**reset)
    if sized:
        p.set(custom_size=True, width=1, height=1)


def _print_image(p: Any, img: Any, command: str) -> None:
    p.set(align="center")
    p.image(img, impl=command)
    p.set(align="left")


def _image_block(p: Any, block: dict[str, Any], max_width: int) -> None:
    command = _image_command(p)
    if command is None:
        logger.info("image left out: printer profile %s cannot print images", p.profile.name)
        return
    data = base64.b64decode("".join(block["png_base64"].split()))
    with PILImage.open(io.BytesIO(data)) as opened:
        opened.load()
        img = opened.copy()
    if img.width > max_width:
        height = max(1, round(img.height * max_width / img.width))
        img = img.resize((max_width, height))
    _print_image(p, img, command)


def _qr_image(data: str, size: int, max_width: int) -> Any:
    """The QR code as a black-on-white image, ``size`` dots per module (smaller when
    it would not fit the paper), with a one-module quiet zone."""
    import qrcode

    code = qrcode.QRCode(version=None, border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = len(matrix)
    scale = max(1, min(size, max_width // modules))
    img = PILImage.new("L", (modules, modules), 255)
    img.putdata([0 if dark else 255 for row in matrix for dark in row])
    return img.resize((modules * scale, modules * scale), PILImage.Resampling.NEAREST)


def _qr_block(layout: _Layout, block: dict[str, Any]) -> None:
    p, max_width = layout.p, layout.max_width
    if p.profile.supports("qrCode"):
        p.set(align="center")
        p.qr(block["data"], size=block["size"], native=True)
        p.set(align="left")
        return
    command = _image_command(p)
    if command is not None:
        _print_image(p, _qr_image(block["data"], block["size"], max_width), command)
        return
    # Neither QR codes nor images: the text at least (a link can still be typed).
    layout.text(_text_of(block["data"], align="center"))


def _barcode_block(p: Any, block: dict[str, Any]) -> None:
    kind = block["kind"]
    # _hw_barcode is what Escpos.barcode() calls for printer-drawn barcodes;
    # calling it directly avoids barcode()'s print() to stdout (which would
    # scribble over the terminal dashboard).
    p._hw_barcode(
        barcode_payload(kind, block["data"]),
        kind,
        height=block["height"],
        width=block["width"],
        pos="BELOW",
        font="A",
        align_ct=True,
        function_type="A" if kind in _BARCODE_TYPE_A else "B",
        check=True,
    )
    p.set(align="left")


def _cut(p: Any, mode: str, cutter: bool | None) -> None:
    """Feed the paper past the tear bar and cut. ``cutter`` is what the printer says
    about itself (``GS I 2``): True sends the cut even when its profile lists no
    cutter (many 58 mm models come with and without one), False only feeds; None
    leaves it to the profile."""
    if cutter is None:
        p.cut(mode=mode)
    elif not cutter:
        p.print_and_feed(6)
    elif p.profile.supports("paperFullCut") or p.profile.supports("paperPartCut"):
        p.cut(mode=mode)
    else:
        p.print_and_feed(6)
        p._raw(PAPER_PART_CUT if mode == "PART" else PAPER_FULL_CUT)


def _text_of(text: str, **style: Any) -> dict[str, Any]:
    """A text block (as validation leaves it) for text the renderer adds."""
    block = {"type": "text", "text": text, "bold": False, "underline": 0, "align": "left"}
    return {**block, "width": 1, "height": 1, **style}


def _header(layout: _Layout, header: str) -> None:
    # The header names a printer (BACKUP FROM Kitchen-1): text, never printer commands,
    # whatever a name might carry.
    header = "".join(ch for ch in header if ch.isprintable())
    layout.text(_text_of(header, align="center", bold=True))


def render_document(
    doc: dict[str, Any],
    *,
    columns: int = 42,
    profile: str | None = None,
    header: str | None = None,
    cutter: bool | None = None,
    language: str = DEFAULT_LANGUAGE,
    text_mode: str = "auto",
    fonts: FontSet | None = None,
) -> bytes:
    """The bytes for a job document (validated first), for a printer with the
    python-escpos capability ``profile`` (None: the default profile) and ``columns``
    characters per line, whose command ``language`` is ``escpos`` (or ``zpl``/``raw``:
    pass-through only). ``text_mode`` ``raster`` draws all text as images; ``fonts``
    draw it (None: the machine's, :func:`pm_core.fonts.default_fonts`).

    The output starts with ``ESC @``, then the optional ``header`` line (bold,
    centred), then the blocks. A job that prints something always ends cut: a full
    cut is appended unless a cut block follows the last block that prints something
    (a printer without a cutter gets its paper fed instead: ``cutter`` is what the
    printer told about itself, see :func:`_cut`). A document that prints nothing (a
    drawer kick alone) gets no header, feed or cut. A ``raw_base64`` document is
    passed through after the header, with a cut appended if its bytes contain none;
    on a ``zpl`` or ``raw`` printer, its bytes alone are the output.

    Raises ``ProtocolError`` for an invalid document, ``UnprintableText`` (a
    ``ValueError``) for text no path prints, and ``ValueError`` for an unknown
    profile or a document the printer's language cannot take.
    """
    doc = validate_document(doc)
    if language in PASS_THROUGH_LANGUAGES:
        if "raw_base64" not in doc:
            raise ValueError(
                f"a {language} printer prints only raw_base64 documents (bytes in its own "
                "language), not blocks"
            )
        return base64.b64decode("".join(doc["raw_base64"].split()))
    if language != DEFAULT_LANGUAGE:
        raise ValueError(f"ESC/POS rendering cannot make {language} bytes")
    p, max_width = _printer(profile, columns)
    layout = _Layout(
        p, max_width=max_width, columns=columns, profile=profile, text_mode=text_mode, fonts=fonts
    )
    p.hw("INIT")

    if "raw_base64" in doc:
        if header:
            _header(layout, header)
        raw = base64.b64decode("".join(doc["raw_base64"].split()))
        p._raw(raw)
        if not any(isinstance(event, Cut) for event in decode_all(raw, profile=profile)):
            _cut(p, "FULL", cutter)
        return bytes(p.output)

    blocks: list[dict[str, Any]] = doc["blocks"]
    if header and any(block["type"] in PRINTING_BLOCKS for block in blocks):
        _header(layout, header)
    needs_cut = False
    for block in blocks:
        kind = block["type"]
        if kind in PRINTING_BLOCKS:
            needs_cut = True
        if kind == "text":
            layout.text(block)
        elif kind == "line":
            layout.line(block)
        elif kind == "feed":
            p.ln(block["lines"])
        elif kind == "barcode":
            _barcode_block(p, block)
        elif kind == "qr":
            _qr_block(layout, block)
        elif kind == "image":
            _image_block(p, block, max_width)
        elif kind in ("ticket_image", "pdf"):
            layout.pictures(block)
        elif kind == "cut":
            _cut(p, "PART" if block["partial"] else "FULL", cutter)
            needs_cut = False
        elif kind == "drawer":
            p.cashdraw(block["pin"])
    if needs_cut:
        _cut(p, "FULL", cutter)
    return bytes(p.output)


def _ruler(columns: int) -> str:
    """``....:....1....:....2`` up to ``columns`` characters."""
    chars = []
    for i in range(1, columns + 1):
        if i % 10 == 0:
            chars.append(str(i // 10 % 10))
        elif i % 5 == 0:
            chars.append(":")
        else:
            chars.append(".")
    return "".join(chars)


def render_test_page(
    *,
    printer_name: str,
    address: str,
    columns: int = 42,
    when: datetime | None = None,
) -> bytes:
    """A recognisable test page: title, printer name and address, time, a
    character ruler as wide as the paper, a few special characters, a cut."""
    when = when or datetime.now().astimezone()
    p, _ = _printer(None, columns)
    p.hw("INIT")
    p.set(align="center", bold=True)
    p.set(double_height=True)
    p.text(TEST_PAGE_TITLE + "\n")
    p.set(normal_textsize=True)
    p.set(align="left", bold=False)
    p.text("=" * columns + "\n")
    p.text(f"Printer: {printer_name}\n")
    p.text(f"Address: {address}\n")
    p.text(f"Time:    {when.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}\n")
    p.text("-" * columns + "\n")
    p.text(_ruler(columns) + "\n")
    p.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\n")
    p.text("Accents: àéèç ÄÖÜ äöü ß ñ\n")
    p.text("-" * columns + "\n")
    p.set(align="center")
    p.text("If you can read this, printing works.\n")
    p.set(align="left")
    p.cut()
    return bytes(p.output)
