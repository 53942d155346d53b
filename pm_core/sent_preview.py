"""What a printer was sent, as a few lines of text: the "sent preview".

The agent makes one from the bytes it wrote to the printer (text decoded back from
the code page or double-byte bytes, in the order printed; every raster image as a
small block-art thumbnail), the hub from the PNG it serves a CloudPRNT printer. It
travels with the job's result (``print:job:result``'s ``sent_preview``), is stored
with the job's document and is shown by the dashboard's job detail. It is what staff
check when a ticket "looks right" in the document but not on paper.

A preview is ``{"lines": [str, ...], "bytes": N, "language": L}``. This module holds
the shared parts: the thumbnail (:func:`thumbnail_lines`), the bounds
(:func:`bounded_preview`) and the check a receiver runs on one it is given
(:func:`validate_sent_preview`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from PIL import Image

#: The most lines a preview holds (the rest is summed up in one last line).
MAX_LINES = 200
#: The most characters of one line.
MAX_LINE_CHARS = 160
#: The most bytes of a whole preview as compact JSON.
MAX_PREVIEW_BYTES = 16 * 1024
#: How wide and tall a thumbnail is at most, in characters.
THUMB_COLUMNS = 40
THUMB_ROWS = 12
#: The grey level (0 black .. 255 white) under which a thumbnail cell is ink.
INK_BELOW = 192
#: Unicode quadrant characters by their four cells: bit 8 upper left, 4 upper right,
#: 2 lower left, 1 lower right.
QUADRANTS = " ▗▖▄▝▐▞▟▘▚▌▙▀▜▛█"
_KEYS = frozenset({"lines", "bytes", "language"})


def image_label(width: int, height: int) -> str:
    """The line above a thumbnail: ``[image 576x312 dots]``."""
    return f"[image {width}x{height} dots]"


def thumbnail_lines(
    image: Image.Image, *, columns: int = THUMB_COLUMNS, rows: int = THUMB_ROWS
) -> list[str]:
    """``image`` (black ink on white) as at most ``rows`` lines of at most ``columns``
    quadrant characters, its shape kept (a character cell is about twice as tall as
    wide, so each of its four quadrants is square)."""
    width, height = max(1, image.width), max(1, image.height)
    # Quadrant cells: 2 per character across, 2 per character down.
    scale = min(2 * columns / width, 2 * rows / height)
    cells_w = max(2, min(2 * columns, math.ceil(width * scale)))
    cells_h = max(2, min(2 * rows, math.ceil(height * scale)))
    cells_w += cells_w % 2
    cells_h += cells_h % 2
    grey = image.convert("L").resize((cells_w, cells_h), Image.Resampling.BOX)
    ink = [value < INK_BELOW for value in grey.tobytes()]
    lines = []
    for y in range(0, cells_h, 2):
        chars = []
        for x in range(0, cells_w, 2):
            top, bottom = y * cells_w + x, (y + 1) * cells_w + x
            index = 8 * ink[top] + 4 * ink[top + 1] + 2 * ink[bottom] + 1 * ink[bottom + 1]
            chars.append(QUADRANTS[index])
        lines.append("".join(chars).rstrip())
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def image_lines(image: Image.Image) -> list[str]:
    """An image's label and thumbnail."""
    return [image_label(image.width, image.height), *thumbnail_lines(image)]


def _clean(line: str) -> str:
    text = "".join(ch if ch.isprintable() else "·" for ch in line)
    if len(text) > MAX_LINE_CHARS:
        text = text[: MAX_LINE_CHARS - 1] + "…"
    return text


def bounded_preview(lines: list[str], *, sent_bytes: int, language: str) -> dict[str, Any]:
    """The preview of ``lines``, within :data:`MAX_LINES` and :data:`MAX_PREVIEW_BYTES`
    (lines past either limit are left off and counted in one last line)."""
    kept: list[str] = []
    size = 0
    budget = MAX_PREVIEW_BYTES - 200  # room for the other fields and the last line
    for index, line in enumerate(lines):
        text = _clean(line)
        cost = len(json.dumps(text, ensure_ascii=False).encode()) + 1
        if len(kept) >= MAX_LINES - 1 or size + cost > budget:
            kept.append(f"[… {len(lines) - index} more lines not shown]")
            break
        kept.append(text)
        size += cost
    return {"lines": kept, "bytes": sent_bytes, "language": language[:20]}


def validate_sent_preview(value: Any) -> dict[str, Any]:
    """A preview received from elsewhere, checked: the same dict, or ``ValueError``
    saying what is wrong with it (wrong type, too big, control characters)."""
    if not isinstance(value, dict):
        raise ValueError("sent_preview must be an object")
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        raise ValueError(f"sent_preview has unknown key {unknown[0][:40]!r}")
    lines = value.get("lines")
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise ValueError(f"sent_preview.lines must be a list of at most {MAX_LINES} lines")
    for line in lines:
        if not isinstance(line, str) or len(line) > MAX_LINE_CHARS:
            raise ValueError(
                f"sent_preview.lines must hold strings of at most {MAX_LINE_CHARS} characters"
            )
        if not line.isprintable():
            raise ValueError("sent_preview.lines must not hold control characters")
    sent = value.get("bytes")
    if isinstance(sent, bool) or not isinstance(sent, int) or sent < 0:
        raise ValueError("sent_preview.bytes must be a whole number, 0 or more")
    language = value.get("language")
    if not isinstance(language, str) or not 0 < len(language) <= 20:
        raise ValueError("sent_preview.language must be a short string")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PREVIEW_BYTES:
        raise ValueError(f"sent_preview is {size} bytes, more than {MAX_PREVIEW_BYTES}")
    return {"lines": list(lines), "bytes": sent, "language": language}
