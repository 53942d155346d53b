"""Validation of the job ``document`` (what a print job prints).

A document is either ``{"blocks": [...]}`` (1 to 500 blocks, each an object
with a ``type``) or ``{"raw_base64": "..."}`` (ESC/POS bytes made elsewhere).
:func:`validate_document` checks every field and returns a normalized copy
with the defaults filled in; a bad document raises
``ProtocolError(ErrorCode.INVALID_PAYLOAD, message)`` whose message names the
bad field, e.g. ``blocks[3].align must be one of left, center, right``.

Block types and their fields (``?`` = optional, default in brackets):

* ``text``: ``text`` (<= 4096 chars; no control characters but line feed and tab:
  ESC/POS commands go only through ``raw_base64``), ``bold?`` [false], ``underline?`` (bool or
  0/1/2) [0], ``align?`` left|center|right [left], ``width?`` 1-8 [1],
  ``height?`` 1-8 [1]
* ``line``: ``char?`` one character ["-"]
* ``feed``: ``lines?`` 1-20 [1]
* ``barcode``: ``data``, ``kind?`` [CODE128], ``height?`` 1-255 [64],
  ``width?`` 2-6 [3]; CODE128 / GS1-128 data is plain ASCII text (the code set
  prefix is added when printing)
* ``qr``: ``data`` (<= 2000 chars), ``size?`` 1-16 [6]
* ``image``: ``png_base64`` (a PNG of at most 512 KiB and 4096x4096 pixels; the
  images of one document hold at most 4096x4096 pixels together)
* ``ticket_image``: ``image_base64`` (a PNG or JPEG of the whole ticket, at most
  1 MiB and 4096 pixels wide, 16384 high), printed as wide as the paper
* ``pdf``: ``pdf_base64`` (a PDF of at most 1 MiB and 10 pages), each page
  rasterized as wide as the paper, one after the other
* ``cut``: ``partial?`` [false]
* ``drawer``: ``pin?`` 2|5 [2]

The images of one document (``image``, ``ticket_image``, and the pages of ``pdf``
counted as drawn :data:`PDF_REFERENCE_DOTS` wide) hold at most
:data:`MAX_DOCUMENT_PIXELS` pixels together.

This module imports no python-escpos so the hub and the dashboard can use it (Pillow
reads a JPEG's size, pypdfium2 a PDF's pages); the barcode rules mirror
``escpos.constants``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any

from pm_core.pdf_raster import PdfReaderBusy, pdf_page_sizes
from pm_core.protocol.errors import ErrorCode, ProtocolError
from pm_core.protocol.validation import control_characters

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1536 * 1024  # 1.5 MiB of JSON
MAX_BLOCKS = 500
MAX_TEXT_CHARS = 4096
MAX_QR_CHARS = 2000
MAX_RAW_BYTES = 1024 * 1024
MAX_PNG_BYTES = 512 * 1024
MAX_IMAGE_SIDE = 4096
#: Pixels of all the images of one document together (one 4096x4096 image, or a
#: metre of receipt at 576 dots wide several times over): rendering and sending them
#: costs the agent and the printer in proportion.
MAX_DOCUMENT_PIXELS = 4096 * 4096
MAX_FEED_LINES = 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
PDF_SIGNATURE = b"%PDF-"
#: A whole-ticket image or PDF (base64 in JSON fits the document limit).
MAX_TICKET_FILE_BYTES = 1024 * 1024
#: A whole-ticket image is at most this high (it is printed as wide as the paper).
MAX_TICKET_IMAGE_HEIGHT = 16384
MAX_PDF_PAGES = 10
#: PDF pages count against the pixel limit as if drawn this many dots wide (the
#: widest thermal paper, 112 mm at 203 dpi).
PDF_REFERENCE_DOTS = 832

BLOCK_TYPES = (
    "text",
    "line",
    "feed",
    "barcode",
    "qr",
    "image",
    "ticket_image",
    "pdf",
    "cut",
    "drawer",
)
#: Blocks that put something on paper.
PRINTING_BLOCKS = frozenset(BLOCK_TYPES) - {"cut", "drawer"}
ALIGNS = ("left", "center", "right")

#: Barcode kinds the printer draws itself (python-escpos ``BARCODE_TYPE_B``),
#: with the length bounds and character rule of ``escpos.constants.BARCODE_FORMATS``.
BARCODE_FORMATS: dict[str, tuple[list[tuple[int, int]], str]] = {
    "UPC-A": ([(11, 12)], r"^[0-9]{11,12}$"),
    "UPC-E": ([(7, 8), (11, 12)], r"^([0-9]{7,8}|[0-9]{11,12})$"),
    "EAN13": ([(12, 13)], r"^[0-9]{12,13}$"),
    "EAN8": ([(7, 8)], r"^[0-9]{7,8}$"),
    "CODE39": ([(1, 255)], r"^([0-9A-Z \$\%\+\-\.\/]+|\*[0-9A-Z \$\%\+\-\.\/]+\*)$"),
    "ITF": ([(2, 255)], r"^([0-9]{2})+$"),
    "NW7": ([(1, 255)], r"^[A-Da-d][0-9\$\+\-\.\/\:]+[A-Da-d]$"),
    "CODABAR": ([(1, 255)], r"^[A-Da-d][0-9\$\+\-\.\/\:]+[A-Da-d]$"),
    "CODE93": ([(1, 255)], r"^[\x00-\x7F]+$"),
    "CODE128": ([(2, 255)], r"^\{[A-C][\x00-\x7F]+$"),
    "GS1-128": ([(2, 255)], r"^\{[A-C][\x00-\x7F]+$"),
    "GS1 DATABAR OMNIDIRECTIONAL": ([(13, 13)], r"^[0-9]{13}$"),
    "GS1 DATABAR TRUNCATED": ([(13, 13)], r"^[0-9]{13}$"),
    "GS1 DATABAR LIMITED": ([(13, 13)], r"^[01][0-9]{12}$"),
    "GS1 DATABAR EXPANDED": (
        [(2, 255)],
        r"^\([0-9][A-Za-z0-9 \!\"\%\&'\(\)\*\+\,\-\.\/\:\;\<\=\>\?\_\{]+$",
    ),
}
BARCODE_KINDS = tuple(BARCODE_FORMATS)
#: "ean-13", "Code 128", ... -> canonical name (same normalization as python-escpos).
_BARCODE_ALIASES = {"".join(ch for ch in name if ch.isalnum()): name for name in BARCODE_KINDS}
#: Kinds whose data gets a code set prefix ("{B") when printed.
CODE_SET_KINDS = ("CODE128", "GS1-128")

_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "bold", "underline", "align", "width", "height"),
    "line": ("char",),
    "feed": ("lines",),
    "barcode": ("data", "kind", "height", "width"),
    "qr": ("data", "size"),
    "image": ("png_base64",),
    "ticket_image": ("image_base64",),
    "pdf": ("pdf_base64",),
    "cut": ("partial",),
    "drawer": ("pin",),
}


def _fail(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, f"{field} {message}", field=field)


def barcode_payload(kind: str, data: str) -> str:
    """The data python-escpos gets for a barcode block: CODE128 and GS1-128
    text is sent in code set B, with ``{`` escaped as ``{{``."""
    if kind in CODE_SET_KINDS:
        return "{B" + data.replace("{", "{{")
    return data


def canonical_barcode_kind(kind: str) -> str | None:
    """``"ean-13"`` -> ``"EAN13"``; None if the printer cannot draw it."""
    return _BARCODE_ALIASES.get("".join(ch for ch in kind.upper() if ch.isalnum()))


def opens_files(doc: object) -> bool:
    """True when checking ``doc`` opens a PDF or a whole-ticket image (milliseconds
    of work: a server runs :func:`validate_document` off its event loop then)."""
    blocks = doc.get("blocks") if isinstance(doc, dict) else None
    return isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") in ("pdf", "ticket_image") for b in blocks
    )


def validate_document(doc: object) -> dict[str, Any]:
    """Check a job document; return a normalized copy or raise ProtocolError."""
    if not isinstance(doc, dict):
        raise _fail("document", "must be an object with blocks or raw_base64")
    try:
        size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise _fail("document", f"must be plain JSON ({exc})") from None
    if size > MAX_DOCUMENT_BYTES:
        raise _fail("document", f"is {size} bytes, more than the limit of {MAX_DOCUMENT_BYTES}")

    keys = set(doc)
    if keys == {"raw_base64"}:
        return {"raw_base64": _raw(doc["raw_base64"])}
    if keys == {"blocks"}:
        return {"blocks": _blocks(doc["blocks"])}
    unknown = sorted(str(k) for k in keys - {"blocks", "raw_base64"})
    if unknown:
        raise _fail("document", f"has unknown key {unknown[0]!r} (allowed: blocks, raw_base64)")
    if not keys:
        raise _fail("document", "must have blocks or raw_base64")
    raise _fail("document", "must have either blocks or raw_base64, not both")


def _raw(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("raw_base64", "must be a base64 string")
    data = _b64("raw_base64", value, MAX_RAW_BYTES)
    if not data:
        raise _fail("raw_base64", "must not be empty")
    return value


def _b64(field: str, value: str, limit: int) -> bytes:
    # Reject before decoding what would be too large anyway.
    if len(value) > (limit + 2) // 3 * 4 + 4:
        raise _fail(field, f"must decode to at most {limit} bytes")
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(field, "is not valid base64") from None
    if len(data) > limit:
        raise _fail(field, f"must decode to at most {limit} bytes")
    return data


def _blocks(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail("blocks", f"must be a list of 1 to {MAX_BLOCKS} blocks")
    if not 1 <= len(value) <= MAX_BLOCKS:
        raise _fail("blocks", f"must hold 1 to {MAX_BLOCKS} blocks, got {len(value)}")
    blocks = [_block(f"blocks[{i}]", block) for i, block in enumerate(value)]
    pixels = sum(b.pop("_pixels", 0) for b in blocks)
    if pixels > MAX_DOCUMENT_PIXELS:
        raise _fail(
            "blocks",
            f"hold images of {pixels} pixels together, more than the limit of "
            f"{MAX_DOCUMENT_PIXELS}",
        )
    return blocks


def _block(where: str, block: object) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise _fail(where, "must be an object with a type")
    kind = block.get("type")
    if kind is None:
        raise _fail(f"{where}.type", f"is required (one of {', '.join(BLOCK_TYPES)})")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise _fail(f"{where}.type", f"must be one of {', '.join(BLOCK_TYPES)}")
    for key in block:
        if key != "type" and key not in _FIELDS[kind]:
            allowed = ", ".join(_FIELDS[kind])
            raise _fail(
                where, f"has unknown key {str(key)!r} for a {kind} block (allowed: {allowed})"
            )
    return _VALIDATORS[kind](where, block)


def _get_str(where: str, block: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = block.get(key)
    if value is None:
        if required:
            raise _fail(f"{where}.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", "must be a string")
    return value


def _get_bool(where: str, block: dict[str, Any], key: str) -> bool:
    value = block.get(key, False)
    if not isinstance(value, bool):
        raise _fail(f"{where}.{key}", "must be true or false")
    return value


def _get_int(where: str, block: dict[str, Any], key: str, low: int, high: int, default: int) -> int:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{where}.{key}", f"must be an integer from {low} to {high}")
    return value


def _text(where: str, block: dict[str, Any]) -> dict[str, Any]:
    text = _get_str(where, block, "text", required=True)
    assert text is not None
    if len(text) > MAX_TEXT_CHARS:
        raise _fail(f"{where}.text", f"must be at most {MAX_TEXT_CHARS} characters")
    bad = control_characters(text, allowed="\n\t")
    if bad:
        raise _fail(
            f"{where}.text",
            f"has control characters ({', '.join(bad)}); printer commands go only in "
            "raw_base64 documents",
        )
    underline = block.get("underline", 0)
    if isinstance(underline, bool):
        underline = int(underline)
    if not isinstance(underline, int) or underline not in (0, 1, 2):
        raise _fail(f"{where}.underline", "must be true, false, 0, 1 or 2")
    align = block.get("align", "left")
    if align not in ALIGNS:
        raise _fail(f"{where}.align", f"must be one of {', '.join(ALIGNS)}")
    return {
        "type": "text",
        "text": text,
        "bold": _get_bool(where, block, "bold"),
        "underline": underline,
        "align": align,
        "width": _get_int(where, block, "width", 1, 8, 1),
        "height": _get_int(where, block, "height", 1, 8, 1),
    }


def _line(where: str, block: dict[str, Any]) -> dict[str, Any]:
    char = _get_str(where, block, "char", required=False)
    if char is None:
        char = "-"
    if len(char) != 1 or not char.isprintable():
        raise _fail(f"{where}.char", "must be a single printable character")
    return {"type": "line", "char": char}


def _feed(where: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "feed", "lines": _get_int(where, block, "lines", 1, MAX_FEED_LINES, 1)}


def _barcode(where: str, block: dict[str, Any]) -> dict[str, Any]:
    data = _get_str(where, block, "data", required=True)
    assert data is not None
    raw_kind = block.get("kind", "CODE128")
    kind = canonical_barcode_kind(raw_kind) if isinstance(raw_kind, str) else None
    if kind is None:
        raise _fail(f"{where}.kind", f"must be one of {', '.join(BARCODE_KINDS)}")
    bounds, pattern = BARCODE_FORMATS[kind]
    payload = barcode_payload(kind, data)
    if not any(low <= len(payload) <= high for low, high in bounds) or not re.match(
        pattern, payload
    ):
        raise _fail(f"{where}.data", f"is not valid {kind} data")
    return {
        "type": "barcode",
        "data": data,
        "kind": kind,
        "height": _get_int(where, block, "height", 1, 255, 64),
        "width": _get_int(where, block, "width", 2, 6, 3),
    }


def _qr(where: str, block: dict[str, Any]) -> dict[str, Any]:
    data = _get_str(where, block, "data", required=True)
    assert data is not None
    if not data:
        raise _fail(f"{where}.data", "must not be empty")
    if len(data) > MAX_QR_CHARS:
        raise _fail(f"{where}.data", f"must be at most {MAX_QR_CHARS} characters")
    return {"type": "qr", "data": data, "size": _get_int(where, block, "size", 1, 16, 6)}


def _image(where: str, block: dict[str, Any]) -> dict[str, Any]:
    field = f"{where}.png_base64"
    value = _get_str(where, block, "png_base64", required=True)
    assert value is not None
    png = _b64(field, value, MAX_PNG_BYTES)
    if not png.startswith(PNG_SIGNATURE) or len(png) < 24 or png[12:16] != b"IHDR":
        raise _fail(field, "is not a PNG image")
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise _fail(field, f"must be at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels")
    return {"type": "image", "png_base64": value, "_pixels": width * height}


def _ticket_image(where: str, block: dict[str, Any]) -> dict[str, Any]:
    field = f"{where}.image_base64"
    value = _get_str(where, block, "image_base64", required=True)
    assert value is not None
    data = _b64(field, value, MAX_TICKET_FILE_BYTES)
    if not (data.startswith(PNG_SIGNATURE) or data.startswith(JPEG_SIGNATURE)):
        raise _fail(field, "is not a PNG or JPEG image")
    width, height = _image_size(field, data)
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_TICKET_IMAGE_HEIGHT):
        raise _fail(field, f"must be at most {MAX_IMAGE_SIDE}x{MAX_TICKET_IMAGE_HEIGHT} pixels")
    return {"type": "ticket_image", "image_base64": value, "_pixels": width * height}


def _image_size(field: str, data: bytes) -> tuple[int, int]:
    """Width and height from the image's header (Pillow reads no pixels for this)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in ("PNG", "JPEG"):
                raise _fail(field, "is not a PNG or JPEG image")
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise _fail(field, "is not a readable PNG or JPEG image") from None


def _pdf(where: str, block: dict[str, Any]) -> dict[str, Any]:
    field = f"{where}.pdf_base64"
    value = _get_str(where, block, "pdf_base64", required=True)
    assert value is not None
    data = _b64(field, value, MAX_TICKET_FILE_BYTES)
    if not data.startswith(PDF_SIGNATURE):
        raise _fail(field, "is not a PDF")
    try:
        sizes = pdf_page_sizes(data)
    except PdfReaderBusy as exc:
        raise ProtocolError(ErrorCode.UNAVAILABLE, f"{field} could not be opened now: {exc}",
                            field=field) from None  # fmt: skip
    if sizes is None:
        raise _fail(field, "is not a readable PDF (damaged or password-protected)")
    if not 1 <= len(sizes) <= MAX_PDF_PAGES:
        raise _fail(field, f"must have 1 to {MAX_PDF_PAGES} pages, has {len(sizes)}")
    pixels = 0
    for width, height in sizes:
        if width < 1 or height < 1:
            raise _fail(field, "has a page with no size")
        pixels += round(PDF_REFERENCE_DOTS * PDF_REFERENCE_DOTS * height / width)
    return {"type": "pdf", "pdf_base64": value, "_pixels": pixels}


def _cut(where: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "cut", "partial": _get_bool(where, block, "partial")}


def _drawer(where: str, block: dict[str, Any]) -> dict[str, Any]:
    pin = block.get("pin", 2)
    if isinstance(pin, bool) or pin not in (2, 5):
        raise _fail(f"{where}.pin", "must be 2 or 5")
    return {"type": "drawer", "pin": pin}


_VALIDATORS = {
    "text": _text,
    "line": _line,
    "feed": _feed,
    "barcode": _barcode,
    "qr": _qr,
    "image": _image,
    "ticket_image": _ticket_image,
    "pdf": _pdf,
    "cut": _cut,
    "drawer": _drawer,
}
