"""A job's document as plain text: what the ticket looks like, for the preview; and
what the printer was sent (the job's ``sent_preview``) as the same kind of lines.

Blocks render onto a paper ``width`` characters wide (42 by default, an 80 mm
roll in its normal font); barcodes, QR codes and images become labelled
placeholders; raw ESC/POS bytes are stripped down to their printable text.
"""

from __future__ import annotations

import base64
import binascii
import struct
import textwrap
from dataclasses import dataclass
from typing import Any

PAPER_WIDTH = 42


@dataclass(frozen=True)
class PreviewLine:
    text: str
    bold: bool = False
    underline: bool = False
    dim: bool = False


def _aligned(text: str, align: str, width: int) -> str:
    if align == "center":
        return text.center(width).rstrip()
    if align == "right":
        return text.rjust(width)
    return text


def _png_size(data: str) -> str:
    try:
        raw = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=False)
    except (binascii.Error, ValueError):
        return "?"
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or len(raw) < 24:
        return "?"
    w, h = struct.unpack(">II", raw[16:24])
    return f"{w}x{h} px"


def _text_block(block: dict[str, Any], width: int) -> list[PreviewLine]:
    width_value, height_value = block.get("width"), block.get("height")
    scale = width_value if isinstance(width_value, int) else 1
    tall = height_value if isinstance(height_value, int) else 1
    columns = max(4, width // max(1, scale))
    align = str(block.get("align") or "left")
    bold = bool(block.get("bold")) or scale > 1 or tall > 1
    underline = bool(block.get("underline"))
    lines: list[PreviewLine] = []
    for paragraph in str(block.get("text", "")).split("\n"):
        wrapped = textwrap.wrap(paragraph, columns, drop_whitespace=False) or [""]
        for piece in wrapped:
            lines.append(PreviewLine(_aligned(piece.rstrip(), align, width), bold, underline))
    return lines


def _marker(label: str, width: int) -> PreviewLine:
    return PreviewLine(_aligned(f"[{label}]", "center", width), dim=True)


def block_lines(block: Any, width: int = PAPER_WIDTH) -> list[PreviewLine]:
    """One document block as preview lines."""
    if not isinstance(block, dict):
        return [_marker("unreadable block", width)]
    kind = block.get("type")
    if kind == "text":
        return _text_block(block, width)
    if kind == "line":
        char = str(block.get("char") or "-")[:1] or "-"
        return [PreviewLine(char * width)]
    if kind == "feed":
        value = block.get("lines")
        count = value if isinstance(value, int) else 1
        return [PreviewLine("")] * max(1, min(20, count))
    if kind == "barcode":
        label = f"barcode {block.get('kind') or 'CODE128'}: {block.get('data', '')}"
        return [_marker(label[: width - 2], width)]
    if kind == "qr":
        data = str(block.get("data", ""))
        short = data if len(data) <= width - 8 else data[: width - 9] + "…"
        return [_marker(f"QR: {short}", width)]
    if kind == "image":
        return [_marker(f"image {_png_size(str(block.get('png_base64', '')))}", width)]
    if kind == "ticket_image":
        return [_marker("whole-ticket image", width)]
    if kind == "pdf":
        return [_marker("PDF, each page as wide as the paper", width)]
    if kind == "cut":
        word = " partial cut " if block.get("partial") else " cut "
        return [PreviewLine(word.center(width, "-"), dim=True)]
    if kind == "drawer":
        return [_marker("open cash drawer", width)]
    return [_marker(f"{kind} block", width)]


def document_lines(
    document: Any, *, width: int = PAPER_WIDTH, header: str | None = None
) -> list[PreviewLine]:
    """The whole ticket. ``header`` (e.g. ``BACKUP FROM Kitchen-1``) prints first."""
    lines: list[PreviewLine] = []
    if header:
        lines.append(PreviewLine(_aligned(header, "center", width), bold=True))
    if not isinstance(document, dict):
        return [*lines, PreviewLine("(no document)", dim=True)]
    if "raw_base64" in document:
        return lines + raw_lines(str(document.get("raw_base64") or ""), width=width)
    blocks = document.get("blocks")
    if not isinstance(blocks, list):
        return [*lines, PreviewLine("(no blocks)", dim=True)]
    for block in blocks:
        lines.extend(block_lines(block, width))
    kinds = [block.get("type") if isinstance(block, dict) else None for block in blocks]
    if not any(kind not in ("cut", "drawer") for kind in kinds):
        return lines[1:] if header else lines  # a drawer kick alone: no header, feed, cut
    if kinds[-1] != "cut":
        lines.append(PreviewLine(" cut ".center(width, "-"), dim=True))
    return lines


def sent_lines(preview: Any) -> list[PreviewLine]:
    """A job's ``sent_preview`` (read back from the bytes the printer got): its lines,
    labels, thumbnails' frames and cut markers dimmed."""
    if not isinstance(preview, dict) or not isinstance(preview.get("lines"), list):
        return [PreviewLine("(nothing reported of what the printer was sent)", dim=True)]
    lines = []
    for value in preview["lines"]:
        line = str(value)
        lines.append(PreviewLine(line, dim=line.startswith(("[", "---"))))
    return lines


def document_text(document: Any, *, width: int = PAPER_WIDTH, header: str | None = None) -> str:
    """The ticket as plain text (one string, lines joined)."""
    return "\n".join(line.text for line in document_lines(document, width=width, header=header))


# ESC/POS commands and how many parameter bytes follow them (best effort).
_ESC_PARAMS = {
    ord("@"): 0, ord("2"): 0, ord("!"): 1, ord("E"): 1, ord("-"): 1, ord("a"): 1,
    ord("d"): 1, ord("J"): 1, ord("t"): 1, ord("M"): 1, ord("G"): 1, ord("{"): 1,
    ord("3"): 1, ord("R"): 1, ord("p"): 3, ord("r"): 1, ord("V"): 1, ord("c"): 2,
    ord("e"): 1, ord(" "): 1, ord("U"): 1, ord("$"): 2, ord("\\"): 2, ord("*"): -1,
}  # fmt: skip
_GS_PARAMS = {
    ord("!"): 1, ord("h"): 1, ord("w"): 1, ord("H"): 1, ord("f"): 1, ord("B"): 1,
    ord("L"): 2, ord("W"): 2, ord("a"): 1, ord("r"): 1, ord("b"): 1,
}  # fmt: skip


def raw_text(data: bytes) -> str:
    """The printable text in a stream of ESC/POS bytes, commands dropped."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == 0x1B and i + 1 < n:  # ESC
            command = data[i + 1]
            params = _ESC_PARAMS.get(command, 1)
            if params == -1 and i + 4 < n:  # ESC * m nL nH data
                count = data[i + 3] | (data[i + 4] << 8)
                mode = data[i + 2]
                i += 5 + count * (3 if mode in (32, 33) else 1)
                continue
            i += 2 + max(0, params)
        elif byte == 0x1D and i + 1 < n:  # GS
            command = data[i + 1]
            if command == ord("V"):
                mode = data[i + 2] if i + 2 < n else 0
                i += 4 if mode in (65, 66, 97, 98, 103, 104) else 3
            elif command == ord("k") and i + 2 < n:  # barcode
                mode = data[i + 2]
                if mode <= 6:
                    end = data.find(b"\x00", i + 3)
                    i = n if end < 0 else end + 1
                else:
                    length = data[i + 3] if i + 3 < n else 0
                    i += 4 + length
                out.extend(b"[barcode]\n")
            elif command == ord("v") and i + 7 < n:  # raster image
                width_bytes = data[i + 4] | (data[i + 5] << 8)
                height = data[i + 6] | (data[i + 7] << 8)
                i += 8 + width_bytes * height
                out.extend(b"[image]\n")
            elif command == ord("(") and i + 4 < n:  # GS ( k pL pH ... (QR and friends)
                length = data[i + 3] | (data[i + 4] << 8)
                i += 5 + length
            else:
                i += 2 + _GS_PARAMS.get(command, 1)
        elif byte == 0x10 and i + 1 < n:  # DLE EOT n / DLE DC4 ...
            i += 3
        elif byte == 0x1C:  # FS: kanji mode and friends
            i += 2
        elif byte == 0x0A or (byte >= 0x20 and byte != 0x7F):
            out.append(byte)
            i += 1
        else:
            i += 1
    return out.decode("cp437", errors="replace")


def raw_lines(raw_base64: str, *, width: int = PAPER_WIDTH) -> list[PreviewLine]:
    try:
        data = base64.b64decode(raw_base64, validate=False)
    except (binascii.Error, ValueError):
        return [PreviewLine("(raw document that is not valid base64)", dim=True)]
    lines = [PreviewLine(f"raw ESC/POS, {len(data)} bytes; text only:", dim=True)]
    for line in raw_text(data).split("\n"):
        lines.extend(PreviewLine(piece) for piece in (textwrap.wrap(line, width) or [""]))
    while len(lines) > 1 and not lines[-1].text:
        lines.pop()
    return lines
