"""The tables the ESC/POS decoder needs: the length of every fixed-length ESC, GS and
FS command, barcode kind numbers, 2D symbol names, and the code pages of a
python-escpos printer profile (so text comes back as the original Unicode)."""

from __future__ import annotations

import functools
import logging

logger = logging.getLogger(__name__)

BARCODE_KINDS_A: dict[int, str] = {
    0: "UPC-A",
    1: "UPC-E",
    2: "EAN13",
    3: "EAN8",
    4: "CODE39",
    5: "ITF",
    6: "CODABAR",
}
BARCODE_KINDS_B: dict[int, str] = {
    65: "UPC-A",
    66: "UPC-E",
    67: "EAN13",
    68: "EAN8",
    69: "CODE39",
    70: "ITF",
    71: "CODABAR",
    72: "CODE93",
    73: "CODE128",
    74: "GS1-128",
    75: "GS1 DATABAR OMNIDIRECTIONAL",
    76: "GS1 DATABAR TRUNCATED",
    77: "GS1 DATABAR LIMITED",
    78: "GS1 DATABAR EXPANDED",
}
#: ``cn`` of ``GS ( k`` -> symbol name (49 is QR, reported as :class:`QRCode`).
SYMBOLS_2D: dict[int, str] = {
    48: "PDF417",
    49: "QR",
    50: "MAXICODE",
    51: "GS1 DATABAR",
    52: "COMPOSITE",
    53: "AZTEC",
    54: "DATAMATRIX",
}

# ESC commands of fixed total length (second byte -> length).
ESC_FIXED: dict[int, int] = {
    **{c: 2 for c in b"@2<LSimv"},
    **{c: 3 for c in b" !%-3=?AEGJKMRTUVadejlrtu{+"},
    **{c: 4 for c in b"$\\Bfc"},
    ord("p"): 5,
    ord("W"): 10,
}
# GS commands of fixed total length.
GS_FIXED: dict[int, int] = {
    **{c: 2 for c in b":"},
    **{c: 3 for c in b"!BEHITabfhjrw|/Z"},
    **{c: 4 for c in b"$\\LWP"},
    ord("^"): 5,
}
# FS commands of fixed total length; any other byte after FS leaves FS alone.
FS_FIXED: dict[int, int] = {
    **{c: 2 for c in b"&."},
    **{c: 3 for c in b"!-CW"},
    **{c: 4 for c in b"Sp"},
}
#: ``FS C n``: the code system of Kanji mode (Python codec names). A printer with a
#: Chinese font takes GBK (GB18030) in Kanji mode and is decoded so until ``FS C``.
KANJI_SYSTEMS = {1: "shift_jis", 2: "shift_jis_2004"}
KANJI_DEFAULT = "gb18030"
ALIGN = {0: "left", 1: "center", 2: "right"}
HRI_POSITIONS = {0: "off", 1: "above", 2: "below", 3: "both"}


def small(n: int) -> int:
    """ESC/POS accepts both 0/1/2 and '0'/'1'/'2' for many parameters."""
    return n - 48 if 48 <= n <= 57 else n


@functools.lru_cache(maxsize=8)
def codepage_slots(profile: str | None) -> dict[int, str]:
    """``ESC t`` slot number -> code page name for a python-escpos profile."""
    from escpos.capabilities import get_profile

    slots: dict[int, str] = {}
    try:
        pages = get_profile(profile).get_code_pages()
    except Exception:  # unknown profile name: fall back to the default table
        logger.warning("unknown printer profile %r, using the default code pages", profile)
        pages = get_profile(None).get_code_pages()
    for name, slot in pages.items():
        try:
            slots[int(slot)] = str(name)
        except (TypeError, ValueError):
            continue
    return slots


@functools.lru_cache(maxsize=64)
def codepage_table(name: str) -> tuple[str, ...] | None:
    """The characters of bytes 0x80..0xFF in a code page, as python-escpos
    encodes them (so decoding inverts its magic encoder), or None if unknown."""
    from escpos.codepages import CodePages

    try:
        info = CodePages.get_encoding(name)
    except Exception:
        return None
    if "data" in info:
        chars = list("".join(info["data"]))
        return tuple(chars) if len(chars) == 128 else None
    encoding = info.get("python_encode")
    if not encoding:
        return None
    table: list[str] = []
    for code in range(128, 256):
        try:
            table.append(bytes([code]).decode(encoding))
        except UnicodeDecodeError:
            table.append("\ufffd")
    return tuple(table)
