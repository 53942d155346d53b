"""Star Line mode: a ticket as text in Star's own commands (TSP650/700/800, SP700,
mC-Print in Star Line emulation).

The commands used::

    ESC @          initialise
    ESC GS t n     code page (Star's numbers: 1 CP437, 4 CP858, 10 CP866, 32 CP1252,
                   33 CP1250, 34 CP1251, 15 CP737, 13 CP862)
    ESC E / ESC F  bold on / off
    ESC - n        underline (1 on, 0 off)
    ESC GS a n     alignment (0 left, 1 centre, 2 right)
    ESC i h w      character size: h, w = times taller, wider minus one (0-5)
    LF             print the line
    ESC a n        feed n lines
    ESC d n        feed to the cutter and cut (2 full, 3 partial)
    BEL / SUB      cash drawer 1 / 2

Right-to-left text is wrapped at the columns and put in visual order first (as on
ESC/POS printers). Text that none of those code pages holds, and barcodes, QR codes,
images and PDFs go out as a raster block (``ESC * r A ... ESC * r B``,
:mod:`pm_agent.star_raster`) drawn by the ticket renderer; nothing is turned into ``?``.
"""

from __future__ import annotations

from typing import Any

from pm_agent.star_raster import DRAWER_KICK, raster_block
from pm_agent.text_paths import printable_lines
from pm_core.ticket_image import header_block, ticket_image

INIT = b"\x1b@"
BOLD_ON = b"\x1bE"
BOLD_OFF = b"\x1bF"
LF = b"\n"
FULL_CUT = b"\x1bd\x02"
PARTIAL_CUT = b"\x1bd\x03"
ALIGN = {"left": 0, "center": 1, "right": 2}
#: Star code page number -> Python codec, in the order they are tried.
CODE_PAGES: tuple[tuple[int, str], ...] = (
    (32, "cp1252"),
    (4, "cp858"),
    (33, "cp1250"),
    (34, "cp1251"),
    (15, "cp737"),
    (13, "cp862"),
    (10, "cp866"),
    (1, "cp437"),
)
CODEC_OF = dict(CODE_PAGES)


def code_page_command(number: int) -> bytes:
    return b"\x1b\x1dt" + bytes([number])


def align_command(align: str) -> bytes:
    return b"\x1b\x1da" + bytes([ALIGN.get(align, 0)])


def size_command(height: int, width: int) -> bytes:
    return b"\x1bi" + bytes([min(height, 6) - 1, min(width, 6) - 1])


def encode_text(text: str) -> tuple[int, bytes] | None:
    """The first Star code page that holds every character of ``text``, and the
    text in it; None when none does."""
    for number, codec in CODE_PAGES:
        try:
            return number, text.encode(codec)
        except UnicodeEncodeError:
            continue
    return None


class StarLineTicket:
    """Builds the bytes of one Star Line ticket, block by block. Blocks that are drawn
    (text no Star code page holds, barcodes, QR codes, images, PDFs) wait in
    :attr:`drawn` so that consecutive ones go out as one raster block."""

    def __init__(self, *, columns: int, dots: int, all_drawn: bool = False) -> None:
        self.columns = columns
        self.dots = dots
        #: ``text_mode: raster``: every text block drawn, none sent as text.
        self.all_drawn = all_drawn
        self.out = bytearray(INIT)
        self.code_page: int | None = None
        self.drawn: list[dict[str, Any]] = []

    def picture(self, block: dict[str, Any]) -> None:
        self.drawn.append(block)

    def flush(self) -> None:
        """The drawn blocks waiting, as one raster block."""
        if self.drawn:
            self.out += raster_block(ticket_image({"blocks": self.drawn}, dots=self.dots))
            self.drawn = []

    def text(self, block: dict[str, Any]) -> None:
        # Right-to-left lines (Hebrew in CP862) wrapped, shaped and in visual order:
        # the printer puts characters left to right as they come.
        text = printable_lines(block["text"].rstrip("\n"), self.columns // block["width"])
        encoded = None if self.all_drawn else encode_text(text)
        if encoded is None:
            self.picture(block)
            return
        self.flush()
        number, data = encoded
        if number != self.code_page:
            self.out += code_page_command(number)
            self.code_page = number
        sized = block["width"] != 1 or block["height"] != 1
        if block["align"] != "left":
            self.out += align_command(block["align"])
        if block["bold"]:
            self.out += BOLD_ON
        if block["underline"]:
            self.out += b"\x1b-\x01"
        if sized:
            self.out += size_command(block["height"], block["width"])
        self.out += data.replace(b"\n", LF) + LF
        if sized:
            self.out += size_command(1, 1)
        if block["underline"]:
            self.out += b"\x1b-\x00"
        if block["bold"]:
            self.out += BOLD_OFF
        if block["align"] != "left":
            self.out += align_command("left")

    def line(self, char: str) -> None:
        self.text(
            {
                "text": char * self.columns,
                "bold": False,
                "underline": 0,
                "align": "left",
                "width": 1,
                "height": 1,
            }
        )

    def feed(self, lines: int) -> None:
        self.flush()
        self.out += b"\x1ba" + bytes([lines])

    def cut(self, partial: bool) -> None:
        self.flush()
        self.out += PARTIAL_CUT if partial else FULL_CUT

    def drawer(self, pin: int) -> None:
        self.flush()
        self.out += DRAWER_KICK[pin]


def star_line_ticket(
    blocks: list[dict[str, Any]],
    *,
    columns: int,
    dots: int,
    header: str | None = None,
    all_drawn: bool = False,
) -> bytes:
    """The Star Line bytes of a validated document's ``blocks``, ended with a full cut
    unless a cut follows the last block that prints (a drawer-only document is not
    cut)."""
    ticket = StarLineTicket(columns=columns, dots=dots, all_drawn=all_drawn)
    needs_cut = False
    if header:
        needs_cut = True
        ticket.text(header_block(header))
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            ticket.text(block)
        elif kind == "line":
            ticket.line(block["char"])
        elif kind == "feed":
            ticket.feed(block["lines"])
        elif kind == "cut":
            ticket.cut(block["partial"])
            needs_cut = False
            continue
        elif kind == "drawer":
            ticket.drawer(block["pin"])
            continue
        else:  # barcode, qr, image, ticket_image, pdf: drawn
            ticket.picture(block)
        needs_cut = True
    if needs_cut:
        ticket.cut(False)
    ticket.flush()
    return bytes(ticket.out)
