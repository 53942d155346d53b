"""How a text block goes out on an ESC/POS printer: as text in its code pages, in its
double-byte (Kanji) mode, or drawn as an image, or not at all.

For each block, :func:`plan_text` picks the first path that prints every character:

1. **code page**: every character is in one of the code pages of the printer's
   python-escpos profile (python-escpos's magic encoder switches between them with
   ``ESC t``). Right-to-left lines (Arabic, Persian, Urdu, Hebrew) are first wrapped at
   the printer's columns, shaped (Arabic presentation forms) and put in visual order,
   because the printer prints characters left to right as they come.
2. **double-byte**: the profile is of a printer with a Chinese font (its Kanji mode,
   ``FS &``, takes GBK) and GBK holds every character.
3. **raster**: the text is drawn with the agent's fonts (:mod:`pm_core.ticket_text`)
   and sent as an image, when the printer prints images and a font holds every
   character. ``text_mode: raster`` takes this path for all text.

Otherwise :class:`~pm_core.ticket_text.UnprintableText` names the characters: the job
fails with ``render_error`` before a byte is sent.
"""

from __future__ import annotations

import textwrap
import unicodedata
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from escpos.magicencode import Encoder

from pm_core.fonts import FontSet, needs_glyph
from pm_core.ticket_text import UnprintableText, is_rtl, visual_order

#: Profiles of printers sold with a Chinese (GB18030/GBK) font, whose Kanji mode
#: (``FS &``) prints GBK double-byte characters. The capability database does not say
#: which printers have one; these makers ship it by default.
DOUBLE_BYTE_PROFILES: dict[str, str] = {
    "ZJ-5870": "gbk",
    "POS-5890": "gbk",
    "NT-5890K": "gbk",
}
#: ``FS &``: enter Kanji (double-byte) mode; ``FS .``: leave it.
KANJI_ON = b"\x1c&"
KANJI_OFF = b"\x1c."

Path = Literal["code_page", "double_byte", "raster"]


@dataclass(frozen=True)
class TextPlan:
    """The path of one block and, for the text paths, the text to send (lines in the
    order they print, each in visual order)."""

    path: Path
    text: str = ""


def _is_cjk(char: str) -> bool:
    name = unicodedata.name(char, "")
    return name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "IDEOGRAPHIC"))


def printable_lines(text: str, columns: int) -> str:
    """Right-to-left paragraphs wrapped at ``columns`` characters and each line shaped
    and in visual order; other text as it is (the printer wraps it)."""
    if not is_rtl(text):
        return text
    out: list[str] = []
    for paragraph in text.expandtabs(4).split("\n"):
        lines = textwrap.wrap(paragraph, width=max(1, columns)) if paragraph.strip() else [""]
        out += [visual_order(line) for line in lines]
    return "\n".join(out)


#: Per encoder (one per profile, kept while python-escpos's printer setup is cached):
#: whether a character is in none of its code pages (looking that up tries them all).
_MISSES: weakref.WeakKeyDictionary[Encoder, dict[str, bool]] = weakref.WeakKeyDictionary()


def _misses(encoder: Encoder, char: str) -> bool:
    known = _MISSES.setdefault(encoder, {})
    missed = known.get(char)
    if missed is None:
        missed = encoder.find_suitable_encoding(char) is None
        if len(known) < 65_536:
            known[char] = missed
    return missed


def _code_page_misses(encoder: Encoder, text: str) -> list[str]:
    return [
        c
        for c in dict.fromkeys(text)
        if c not in "\n\t " and (ord(c) >= 0x80 or not c.isprintable())
        if _misses(encoder, c)
    ]


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def plan_text(
    block: dict[str, Any],
    *,
    encoder: Encoder,
    columns: int,
    profile: str | None,
    raster_only: bool,
    can_raster: bool,
    fonts: FontSet,
) -> TextPlan:
    """The path for a validated ``text`` block (see the module's docstring); raises
    UnprintableText when there is none."""
    text = block["text"]
    if not raster_only:
        sent = printable_lines(text, columns // max(1, block.get("width", 1)))
        misses = _code_page_misses(encoder, sent)
        if not misses:
            return TextPlan("code_page", sent)
        double_byte = DOUBLE_BYTE_PROFILES.get(profile or "")
        if double_byte and any(_is_cjk(c) for c in misses) and _encodes(text, double_byte):
            return TextPlan("double_byte", text)
    else:
        misses = [c for c in dict.fromkeys(text) if needs_glyph(c)]
    if not can_raster:
        raise UnprintableText(misses, why="its code pages lack them and it prints no images")
    missing = fonts.missing(text)
    if missing:
        raise UnprintableText(missing)
    return TextPlan("raster")
