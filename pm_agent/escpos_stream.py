"""An incremental ESC/POS stream decoder.

:class:`EscPosDecoder` turns the bytes a POS application sends to a thermal
printer into small event objects (text, line feeds, style changes, barcodes,
QR codes, images, cuts, status requests, ...: :mod:`pm_agent.escpos_events`; the
command tables and code pages are in :mod:`pm_agent.escpos_tables`). It is fed arbitrary chunks: a
command split across two ``feed`` calls is decoded once all of its bytes have
arrived, and the events do not depend on where the chunks were split.

It knows the exact length of every command python-escpos 3.1 emits (and of
most of the Epson TM command set), so it never loses sync on real driver
output. An unknown ``ESC``/``GS``/``FS`` command becomes :class:`Unknown` with a
best-effort length that never swallows the text after it.

Text is decoded with the active code page: ``ESC t n`` is resolved with the
code page table of a python-escpos printer profile (the default profile
unless one is given), so text written by python-escpos's magic encoder comes
back as the original Unicode.
"""

from __future__ import annotations

import logging
from typing import Any

from pm_agent.escpos_events import (
    Barcode,
    Buzzer,
    Cut,
    Drawer,
    Event,
    Feed,
    IdentityRequest,
    Image,
    ImagePart,
    Init,
    LineFeed,
    QRCode,
    StatusRequest,
    Style,
    Text,
    Unknown,
    always_processed,
)
from pm_agent.escpos_tables import (
    ALIGN,
    BARCODE_KINDS_A,
    BARCODE_KINDS_B,
    ESC_FIXED,
    FS_FIXED,
    GS_FIXED,
    HRI_POSITIONS,
    KANJI_DEFAULT,
    KANJI_SYSTEMS,
    SYMBOLS_2D,
    codepage_slots,
    codepage_table,
    small,
)

logger = logging.getLogger(__name__)

NUL = 0x00
HT = 0x09
LF = 0x0A
CR = 0x0D
DLE = 0x10
EOT = 0x04
ENQ = 0x05
DC4 = 0x14
ESC = 0x1B
FS = 0x1C
GS = 0x1D

#: python-escpos splits images taller than this into several commands.
FRAGMENT_HEIGHT = 960
#: A command that announces more data than this is treated as garbage.
MAX_COMMAND_BYTES = 16 * 1024 * 1024
DEFAULT_CODEPAGE = "CP437"


class EscPosDecoder:
    """Incremental ESC/POS decoder: ``feed`` bytes, get events back.

    ``feed_raw`` also returns, for each event, the exact bytes it came from
    (bytes that produce no event of their own, such as NUL or the "store"
    half of a QR code, are attached to the next event). ``flush`` ends the
    stream: text still waiting for its end and an incomplete command come out.
    """

    def __init__(self, profile: str | None = None) -> None:
        self._profile = profile
        self._buf = bytearray()
        self._pos = 0
        self._need = 1
        self._pending_raw = bytearray()
        self._pending_image: list[Any] | None = None  # [kind, w, h, last_h, raw]
        self._after_band = False
        self._enabled = True
        self._codepage = DEFAULT_CODEPAGE
        self._table: tuple[str, ...] | None = None
        #: In Kanji mode (``FS &`` .. ``FS .``): the double-byte encoding of the text.
        self._kanji: str | None = None
        self._kanji_system = KANJI_DEFAULT
        self._stored_2d: dict[int, bytes] = {}
        self._stored_graphics: tuple[int, int] | None = None

    # ------------------------------------------------------------------ public

    @property
    def codepage(self) -> str:
        """Name of the active code page (``CP437`` after ``ESC @``)."""
        return self._codepage

    def feed(self, data: bytes) -> list[Event]:
        """Decode ``data`` (any chunk of the stream) into events."""
        return [event for event, _ in self.feed_raw(data)]

    def feed_raw(self, data: bytes) -> list[tuple[Event, bytes]]:
        """Like :meth:`feed`, with the bytes of each event."""
        self._buf += data
        out: list[tuple[Event, bytes]] = []
        self._run(out, final=False)
        return out

    def flush(self) -> list[Event]:
        """End of stream: return what is still held back."""
        return [event for event, _ in self.flush_raw()]

    def flush_raw(self) -> list[tuple[Event, bytes]]:
        """Like :meth:`flush`, with the bytes of each event."""
        out: list[tuple[Event, bytes]] = []
        self._run(out, final=True)
        self._flush_image(out)
        return out

    # ------------------------------------------------------------------ loop

    def _run(self, out: list[tuple[Event, bytes]], *, final: bool) -> None:
        buf = self._buf
        while self._pos < len(buf):
            avail = len(buf) - self._pos
            if avail < self._need and not final:
                break
            result = self._parse(self._pos, final)
            if isinstance(result, int):
                if final:
                    # An incomplete command at the end of the stream.
                    rest = bytes(buf[self._pos :])
                    self._pos = len(buf)
                    self._emit(out, [Unknown(rest)], rest)
                    break
                self._need = max(result, avail + 1)
                break
            length, events = result
            raw = bytes(buf[self._pos : self._pos + length])
            self._pos += length
            self._need = 1
            if not self._enabled:
                events = [e for e in events if always_processed(e)]
            self._emit(out, events, raw)
        del buf[: self._pos]
        self._pos = 0

    def _emit(self, out: list[tuple[Event, bytes]], events: list[Any], raw: bytes) -> None:
        if not events:
            if self._pending_image is not None and self._after_band_raw(raw):
                return
            self._pending_raw += raw
            return
        for index, event in enumerate(events):
            chunk = raw if index == 0 else b""
            if isinstance(event, ImagePart):
                self._add_image(out, event, chunk)
                continue
            self._flush_image(out)
            if self._pending_raw:
                chunk = bytes(self._pending_raw) + chunk
                self._pending_raw.clear()
            out.append((event, chunk))

    def _after_band_raw(self, raw: bytes) -> bool:
        """The LF that follows an ``ESC *`` band belongs to the image."""
        if raw == b"\n" and self._pending_image is not None and self._pending_image[0] == "column":
            self._pending_image[4] += raw
            return True
        return False

    def _add_image(self, out: list[tuple[Event, bytes]], part: ImagePart, raw: bytes) -> None:
        pending = self._pending_image
        if pending is not None:
            kind, width, _height, last, _raw = pending
            same = kind == part.kind and width == part.width
            if same and (kind == "column" or last == FRAGMENT_HEIGHT):
                pending[2] += part.height
                pending[3] = part.height
                pending[4] += bytes(self._pending_raw) + raw
                self._pending_raw.clear()
                return
            self._flush_image(out)
        data = bytearray(self._pending_raw) + raw
        self._pending_raw.clear()
        self._pending_image = [part.kind, part.width, part.height, part.height, data]

    def _flush_image(self, out: list[tuple[Event, bytes]]) -> None:
        pending = self._pending_image
        if pending is None:
            return
        self._pending_image = None
        out.append((Image(width=pending[1], height=pending[2]), bytes(pending[4])))

    # ------------------------------------------------------------------ parsing

    def _parse(self, p: int, final: bool) -> tuple[int, list[Any]] | int:
        """Decode the command at ``p``: ``(length, events)``, or the number of
        bytes (from ``p``) needed before it can be decoded."""
        buf = self._buf
        first = buf[p]
        if first >= 0x20 or first == HT:
            return self._parse_text(p, final)
        after_band = self._after_band
        self._after_band = False
        if first == LF:
            if after_band and self._pending_image is not None:
                return 1, []  # _emit attaches it to the image
            return 1, [LineFeed()]
        if first in (NUL, CR):
            return 1, []
        if first == ESC:
            return self._parse_esc(p)
        if first == GS:
            return self._parse_gs(p)
        if first == DLE:
            return self._parse_dle(p)
        if first == FS:
            return self._parse_fs(p)
        return 1, [Unknown(bytes([first]))]

    def _parse_text(self, p: int, final: bool) -> tuple[int, list[Any]] | int:
        buf = self._buf
        end = len(buf)
        q = p
        while q < end and (buf[q] >= 0x20 or buf[q] == HT):
            q += 1
        if q == end and not final:
            return end - p + 1  # the run may continue in the next chunk
        self._after_band = False
        return q - p, [Text(self._decode(bytes(buf[p:q])))]

    def _decode(self, data: bytes) -> str:
        if max(data) < 0x80:
            return data.decode("ascii")
        if self._kanji is not None:
            return data.decode(self._kanji, "replace")
        table = self._table
        if table is None:
            table = codepage_table(self._codepage) or codepage_table(DEFAULT_CODEPAGE)
            self._table = table
        assert table is not None
        return "".join(chr(b) if b < 0x80 else table[b - 0x80] for b in data)

    def _set_codepage(self, slot: int) -> str:
        name = codepage_slots(self._profile).get(slot)
        if name is None or codepage_table(name) is None:
            logger.debug("ESC t %d: unknown code page, decoding as %s", slot, DEFAULT_CODEPAGE)
            name = name or f"slot {slot}"
            self._table = codepage_table(DEFAULT_CODEPAGE)
        else:
            self._table = codepage_table(name)
        self._codepage = name
        return name

    @staticmethod
    def _unknown_length(buf: bytearray, p: int, prefix: int) -> int:
        """Best effort for an unknown command: include one parameter byte only
        if it looks like a parameter (a small number, not a control code that
        starts something else). Needs that byte to decide, so the result does
        not depend on where the stream was split."""
        q = p + prefix
        if q >= len(buf):
            return prefix + 1
        if buf[q] < 0x20 and buf[q] not in (LF, CR, HT, ESC, GS, FS, DLE):
            return prefix + 1
        return prefix

    @staticmethod
    def _too_big(total: int) -> bool:
        """Guard against absurd announced lengths (garbage input)."""
        if total > MAX_COMMAND_BYTES:
            logger.warning("ESC/POS command announces %d bytes; treating as garbage", total)
            return True
        return False

    def _parse_esc(self, p: int) -> tuple[int, list[Any]] | int:
        buf = self._buf
        avail = len(buf) - p
        if avail < 2:
            return 2
        cmd = buf[p + 1]
        if cmd < 0x20:
            return 1, [Unknown(bytes([ESC]))]  # a lone ESC; re-read what follows
        if cmd == ord("*"):
            if avail < 5:
                return 5
            m = buf[p + 2]
            width = buf[p + 3] | buf[p + 4] << 8
            per_column = 3 if m & 0x20 else 1
            total = 5 + width * per_column
            if avail < total:
                return total
            self._after_band = True
            return total, [ImagePart("column", width, 8 * per_column)]
        if cmd == ord("D"):
            return self._parse_terminated(p, 2, 32, lambda data: Style("tabs", tuple(data)))
        if cmd == ord("&"):
            return self._parse_user_chars(p)
        if cmd == ord("("):
            if avail < 5:
                return 5
            total = 5 + (buf[p + 3] | buf[p + 4] << 8)
            if avail < total:
                return total
            return total, [Unknown(bytes(buf[p : p + total]))]
        length = ESC_FIXED.get(cmd)
        if length is None:
            length = self._unknown_length(buf, p, 2)
            if avail < length:
                return length
            return length, [Unknown(bytes(buf[p : p + length]))]
        if avail < length:
            return length
        raw = bytes(buf[p : p + length])
        n = raw[2] if length > 2 else 0
        return length, self._esc_events(cmd, n, raw)

    def _esc_events(self, cmd: int, n: int, raw: bytes) -> list[Any]:
        c = chr(cmd)
        if c == "@":
            if self._enabled:
                self._codepage = DEFAULT_CODEPAGE
                self._table = None
                self._kanji = None
            return [Init()]
        if c == "2":
            return [Style("line_spacing", None)]
        if c in "3A+":
            return [Style("line_spacing", (n, {"3": 180, "A": 60, "+": 360}[c]))]
        if c == "!":
            return [Style("print_mode", n)]
        if c == "E":
            return [Style("bold", bool(n & 1))]
        if c == "G":
            return [Style("double_strike", bool(n & 1))]
        if c == "-":
            return [Style("underline", small(n) if small(n) in (0, 1, 2) else n)]
        if c == "M":
            return [Style("font", {0: "a", 1: "b", 2: "c"}.get(small(n), str(n)))]
        if c == "a":
            return [Style("align", ALIGN.get(small(n), str(n)))]
        if c == "{":
            return [Style("flip", bool(n & 1))]
        if c == "r":
            return [Style("color", "red" if n & 1 else "black")]
        if c == "V":
            return [Style("rotate", bool(small(n)))]
        if c == "t":
            if not self._enabled:
                return [Style("codepage", self._codepage)]
            return [Style("codepage", self._set_codepage(n))]
        if c == "R":
            return [Style("charset", n)]
        if c == " ":
            return [Style("char_spacing", n)]
        if c == "=":
            self._enabled = bool(n & 1)
            return [Style("peripheral", n)]
        if c == "d":
            return [Feed(lines=n)]
        if c == "J":
            return [Feed(lines=0, dots=n)]
        if c == "p":
            return [Drawer(pin=2 if small(raw[2]) == 0 else 5)]
        if c in "im":
            return [Cut(partial=True)]
        if c == "B":
            return [Buzzer(times=raw[2], duration=raw[3])]
        if c == "c" and raw[2] == ord("5"):
            return [Style("panel_buttons", not raw[3] & 1)]
        return [Unknown(raw)]

    def _parse_terminated(
        self, p: int, prefix: int, limit: int, make: Any
    ) -> tuple[int, list[Any]] | int:
        """A command whose data ends with NUL (at most ``limit`` data bytes)."""
        buf = self._buf
        start = p + prefix
        stop = min(len(buf), start + limit + 1)
        try:
            nul = buf.index(NUL, start, stop)
        except ValueError:
            if len(buf) - start > limit:
                return prefix + limit, [make(bytes(buf[start : start + limit]))]
            return len(buf) - p + 1
        return nul + 1 - p, [make(bytes(buf[start:nul]))]

    def _parse_user_chars(self, p: int) -> tuple[int, list[Any]] | int:
        """``ESC & y c1 c2 [x d1 ... d(y*x)] * (c2-c1+1)``."""
        buf = self._buf
        if len(buf) - p < 5:
            return 5
        y, c1, c2 = buf[p + 2], buf[p + 3], buf[p + 4]
        if c2 < c1 or y > 3:
            return 5, [Unknown(bytes(buf[p : p + 5]))]
        q = p + 5
        for _ in range(c2 - c1 + 1):
            if q >= len(buf):
                return q - p + 1
            q += 1 + y * buf[q]
        if q > len(buf):
            return q - p
        return q - p, [Unknown(bytes(buf[p:q]))]

    def _parse_gs(self, p: int) -> tuple[int, list[Any]] | int:
        buf = self._buf
        avail = len(buf) - p
        if avail < 2:
            return 2
        cmd = buf[p + 1]
        if cmd < 0x20:
            return 1, [Unknown(bytes([GS]))]
        c = chr(cmd)
        if c == "V":
            if avail < 3:
                return 3
            m = buf[p + 2]
            length = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if avail < length:
                return length
            return length, [Cut(partial=m in (1, 49, 66, 98, 104))]
        if c == "k":
            return self._parse_barcode(p)
        if c == "v":
            if avail < 3:
                return 3
            if buf[p + 2] != ord("0"):
                return 2, [Unknown(bytes(buf[p : p + 2]))]
            if avail < 8:
                return 8
            width_bytes = buf[p + 4] | buf[p + 5] << 8
            height = buf[p + 6] | buf[p + 7] << 8
            total = 8 + width_bytes * height
            if self._too_big(total):
                return 8, [Unknown(bytes(buf[p : p + 8]))]
            if avail < total:
                return total
            return total, [ImagePart("raster", width_bytes * 8, height)]
        if c == "(":
            if avail < 5:
                return 5
            size = buf[p + 3] | buf[p + 4] << 8
            total = 5 + size
            if avail < total:
                return total
            return total, self._gs_paren(buf[p + 2], bytes(buf[p + 5 : p + total]), p, total)
        if c == "8":
            if avail < 3:
                return 3
            if buf[p + 2] != ord("L"):
                return 2, [Unknown(bytes(buf[p : p + 2]))]
            if avail < 7:
                return 7
            size = int.from_bytes(buf[p + 3 : p + 7], "little")
            total = 7 + size
            if self._too_big(total):
                return 7, [Unknown(bytes(buf[p : p + 7]))]
            if avail < total:
                return total
            return total, self._gs_paren(ord("L"), bytes(buf[p + 7 : p + total]), p, total)
        if c == "*":
            if avail < 4:
                return 4
            total = 4 + buf[p + 2] * buf[p + 3] * 8
            if avail < total:
                return total
            return total, [Unknown(bytes(buf[p : p + total]))]
        if c == "g":
            if avail < 3:
                return 3
            length = 6 if buf[p + 2] in (ord("0"), ord("2")) else 3
            if avail < length:
                return length
            return length, [Unknown(bytes(buf[p : p + length]))]
        fixed = GS_FIXED.get(cmd)
        if fixed is None:
            length = self._unknown_length(buf, p, 2)
            if avail < length:
                return length
            return length, [Unknown(bytes(buf[p : p + length]))]
        length = fixed
        if avail < length:
            return length
        raw = bytes(buf[p : p + length])
        return length, self._gs_events(c, raw)

    def _gs_events(self, c: str, raw: bytes) -> list[Any]:
        n = raw[2] if len(raw) > 2 else 0
        word = raw[2] | raw[3] << 8 if len(raw) > 3 else 0
        if c == "!":
            return [Style("size", ((n >> 4) + 1, (n & 0x0F) + 1))]
        if c == "B":
            return [Style("invert", bool(n & 1))]
        if c == "b":
            return [Style("smooth", bool(n & 1))]
        if c == "|":
            return [Style("density", n)]
        if c == "H":
            return [Style("barcode_text", HRI_POSITIONS.get(small(n), str(n)))]
        if c == "f":
            return [Style("barcode_font", "b" if small(n) == 1 else "a")]
        if c == "h":
            return [Style("barcode_height", n)]
        if c == "w":
            return [Style("barcode_width", n)]
        if c == "I":
            return [IdentityRequest(n)]
        if c == "L":
            return [Style("left_margin", word)]
        if c == "W":
            return [Style("print_area_width", word)]
        return [Unknown(raw)]

    def _parse_barcode(self, p: int) -> tuple[int, list[Any]] | int:
        buf = self._buf
        avail = len(buf) - p
        if avail < 3:
            return 3
        m = buf[p + 2]
        if m in BARCODE_KINDS_A:
            kind = BARCODE_KINDS_A[m]
            return self._parse_terminated(
                p, 3, 255, lambda data: Barcode(kind, _barcode_text(kind, data))
            )
        if m in BARCODE_KINDS_B:
            if avail < 4:
                return 4
            total = 4 + buf[p + 3]
            if avail < total:
                return total
            kind = BARCODE_KINDS_B[m]
            return total, [Barcode(kind, _barcode_text(kind, bytes(buf[p + 4 : p + total])))]
        return 3, [Unknown(bytes(buf[p : p + 3]))]

    def _gs_paren(self, fn_class: int, payload: bytes, p: int, total: int) -> list[Any]:
        """``GS ( x pL pH payload`` (and ``GS 8 L`` with a 4-byte size)."""
        raw = bytes(self._buf[p : p + total])
        if fn_class == ord("k") and len(payload) >= 2:
            cn, fn = payload[0], payload[1]
            if fn == 80:  # store the symbol data (after the "m" byte)
                if self._enabled:
                    self._stored_2d[cn] = payload[3:]
                return []
            if fn == 81:  # print the stored symbol
                data = self._stored_2d.get(cn, b"").decode("utf-8", "replace")
                if cn == 49:
                    return [QRCode(data)]
                return [Barcode(SYMBOLS_2D.get(cn, f"2D-{cn}"), data)]
            if fn in (65, 66, 67, 68, 69, 70, 71):  # model, size, error correction...
                return []
            return [Unknown(raw)]
        if fn_class == ord("L") and len(payload) >= 2:
            fn = payload[1]
            if fn in (112, 113) and len(payload) >= 10:  # store raster / column graphics
                if self._enabled:
                    width = payload[6] | payload[7] << 8
                    height = payload[8] | payload[9] << 8
                    self._stored_graphics = (width, height)
                return []
            if fn in (50, 2):  # print the buffered graphics
                stored = self._stored_graphics
                if stored is None:
                    return [Unknown(raw)]
                self._stored_graphics = None
                return [ImagePart("graphics", stored[0], stored[1])]
            return [Unknown(raw)]
        return [Unknown(raw)]

    def _parse_dle(self, p: int) -> tuple[int, list[Any]] | int:
        buf = self._buf
        avail = len(buf) - p
        if avail < 2:
            return 2
        cmd = buf[p + 1]
        if cmd == EOT:
            if avail < 3:
                return 3
            n = buf[p + 2]
            if n in (7, 8):
                if avail < 4:
                    return 4
                return 4, [Unknown(bytes(buf[p : p + 4]))]
            if 1 <= n <= 6:
                return 3, [StatusRequest(n)]
            return 2, [Unknown(bytes(buf[p : p + 2]))]
        if cmd == ENQ:
            if avail < 3:
                return 3
            return 3, [Unknown(bytes(buf[p : p + 3]))]
        if cmd == DC4:
            if avail < 3:
                return 3
            fn = buf[p + 2]
            length = {1: 5, 2: 5, 3: 8, 7: 4, 8: 10}.get(fn, 3)
            if avail < length:
                return length
            raw = bytes(buf[p : p + length])
            if fn == 1:
                return length, [Drawer(pin=2 if small(raw[3]) == 0 else 5)]
            return length, [Unknown(raw)]
        return 1, [Unknown(bytes([DLE]))]

    def _parse_fs(self, p: int) -> tuple[int, list[Any]] | int:
        buf = self._buf
        avail = len(buf) - p
        if avail < 2:
            return 2
        cmd = buf[p + 1]
        if cmd == ord("("):
            if avail < 5:
                return 5
            total = 5 + (buf[p + 3] | buf[p + 4] << 8)
            if avail < total:
                return total
            return total, [Unknown(bytes(buf[p : p + total]))]
        length = FS_FIXED.get(cmd)
        if length is None:
            return 1, [Unknown(bytes([FS]))]  # python-escpos sends a bare FS (slip select)
        if avail < length:
            return length
        params = buf[p + 2 : p + length]
        if any(b == 0x20 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in params):
            # Letters are text, not parameters: this was a bare FS before text.
            return 1, [Unknown(bytes([FS]))]
        if cmd in b"&.":
            self._kanji = self._kanji_system if cmd == ord("&") else None
            return length, [Style("kanji", self._kanji is not None)]
        if cmd == ord("C"):
            self._kanji_system = KANJI_SYSTEMS.get(small(params[0]), KANJI_DEFAULT)
            if self._kanji is not None:
                self._kanji = self._kanji_system
            return length, [Style("kanji_system", self._kanji_system)]
        return length, [Unknown(bytes(buf[p : p + length]))]


def _barcode_text(kind: str, data: bytes) -> str:
    """The human-readable content of a barcode's data bytes."""
    text = data.decode("ascii", "replace")
    if kind in ("CODE128", "GS1-128"):
        # "{A"/"{B"/"{C" select a code set, "{{" is a literal "{", other "{x" are
        # function codes (FNC1..4, shift) that print nothing.
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "{" and i + 1 < len(text):
                if text[i + 1] == "{":
                    out.append("{")
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    return text


def decode_all(data: bytes, *, profile: str | None = None) -> list[Event]:
    """Decode a complete stream (``feed`` + ``flush``)."""
    decoder = EscPosDecoder(profile)
    return decoder.feed(data) + decoder.flush()
