"""Star raster mode: a whole ticket as one image (Star's "STAR Raster" commands).

Every Star thermal model takes these; the TSP100/TSP143 family (futurePRNT) takes
nothing else. A ticket is::

    ESC * r R            initialise raster mode
    ESC * r A            enter raster mode
    ESC * r P 0 NUL      page length: continuous (receipt paper)
    ESC * r E n NUL      what the end of the page does: 13 partial cut, 1 no cut
    b n1 n2 d1..dk       one raster line, k = n1 + 256 * n2 bytes, bit 7 the leftmost dot
    ESC * r Y n NUL      skip n blank lines (n in ASCII digits)
    ESC FF NUL           end of the page: feed and cut as ``ESC * r E`` said
    ESC * r B            quit raster mode

:func:`raster_ticket` makes those bytes from a Pillow image; the decoder the
simulated printer uses is :class:`pm_agent.star_stream.StarDecoder`.
"""

from __future__ import annotations

from PIL import Image

ESC = b"\x1b"
RASTER_INIT = b"\x1b*rR"
RASTER_ENTER = b"\x1b*rA"
RASTER_QUIT = b"\x1b*rB"
PAGE_CONTINUOUS = b"\x1b*rP0\x00"
EOT_PARTIAL_CUT = b"\x1b*rE13\x00"
EOT_NO_CUT = b"\x1b*rE1\x00"
FORM_FEED = b"\x1b\x0c\x00"
#: Cash drawer 1 (BEL) and 2 (SUB), sent outside raster mode.
DRAWER_KICK = {2: b"\x07", 5: b"\x1a"}
#: The most blank lines one ``ESC * r Y`` skips.
MAX_SKIP = 255


def image_rows(image: Image.Image) -> tuple[int, list[bytes]]:
    """The image as 1-bit rows (bit set = black dot), whole bytes per row: the row
    width in bytes and the rows."""
    grey = image.convert("L")
    bits = grey.point(lambda v: 255 if v < 128 else 0, mode="1")
    width_bytes = (bits.width + 7) // 8
    raw = bits.tobytes()
    return width_bytes, [raw[i * width_bytes : (i + 1) * width_bytes] for i in range(bits.height)]


def raster_lines(image: Image.Image) -> bytes:
    """Only the ``b n1 n2 data`` lines (and blank-line skips) of ``image``."""
    width_bytes, rows = image_rows(image)
    out = bytearray()
    blank = 0
    for row in rows:
        if not any(row):
            blank += 1
            continue
        out += _skip(blank)
        blank = 0
        out += b"b" + bytes([width_bytes & 0xFF, width_bytes >> 8]) + row
    out += _skip(blank)
    return bytes(out)


def _skip(lines: int) -> bytes:
    out = bytearray()
    while lines > 0:
        step = min(lines, MAX_SKIP)
        out += b"\x1b*rY" + str(step).encode() + b"\x00"
        lines -= step
    return bytes(out)


def raster_block(image: Image.Image) -> bytes:
    """An image in the middle of a Star Line ticket: into raster mode and out again,
    no page end (so no cut)."""
    return RASTER_INIT + RASTER_ENTER + PAGE_CONTINUOUS + raster_lines(image) + RASTER_QUIT


def raster_ticket(image: Image.Image, *, cut: bool = True, drawers: tuple[int, ...] = ()) -> bytes:
    """A whole ticket: ``image`` printed, then the paper fed and cut (``cut``), then
    the cash drawers on ``drawers`` (pins 2 or 5) kicked."""
    return (
        RASTER_INIT
        + RASTER_ENTER
        + PAGE_CONTINUOUS
        + (EOT_PARTIAL_CUT if cut else EOT_NO_CUT)
        + raster_lines(image)
        + FORM_FEED
        + RASTER_QUIT
        + b"".join(DRAWER_KICK[pin] for pin in drawers)
    )
