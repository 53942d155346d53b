"""The picture inside an ESC/POS image command, back as a Pillow image.

:class:`~pm_agent.escpos_stream.EscPosDecoder` reports an image by its size and its
bytes (``feed_raw``); :func:`image_from_commands` reads the dots out of those bytes:
raster (``GS v 0``, python-escpos's 960-row fragments one under the other), column
(``ESC *`` bands of 8 or 24 dots) and graphics (``GS ( L`` / ``GS 8 L`` function 112).
Other bytes among them (line spacing, the LF after a band) are skipped.
"""

from __future__ import annotations

from PIL import Image

#: The tallest picture read back (taller ones are cut there).
MAX_ROWS = 32_768


def _raster(data: bytes, i: int, rows: list[bytes]) -> int:
    """``GS v 0 m xL xH yL yH d...``: returns where the next command starts."""
    if i + 8 > len(data):
        return len(data)
    width_bytes = data[i + 4] | data[i + 5] << 8
    height = data[i + 6] | data[i + 7] << 8
    start = i + 8
    for row in range(height):
        rows.append(data[start + row * width_bytes : start + (row + 1) * width_bytes])
    return start + width_bytes * height


def _column(data: bytes, i: int, rows: list[bytes]) -> int:
    """``ESC * m nL nH d...``: a band 8 (or 24) dots tall, one column after another,
    bit 7 the top dot."""
    if i + 5 > len(data):
        return len(data)
    mode = data[i + 2]
    width = data[i + 3] | data[i + 4] << 8
    per_column = 3 if mode & 0x20 else 1
    start = i + 5
    band = data[start : start + width * per_column]
    width_bytes = (width + 7) // 8
    for dot_row in range(8 * per_column):
        byte_index, bit = divmod(dot_row, 8)
        row = bytearray(width_bytes)
        for x in range(width):
            at = x * per_column + byte_index
            if at < len(band) and band[at] & (0x80 >> bit):
                row[x // 8] |= 0x80 >> (x % 8)
        rows.append(bytes(row))
    return start + width * per_column


def _graphics(data: bytes, i: int, rows: list[bytes], size_bytes: int) -> int:
    """``GS ( L pL pH`` (``GS 8 L p1..p4``) with function 112: raster graphics stored
    for printing (the print command that follows holds no dots)."""
    header = 3 + size_bytes
    if i + header > len(data):
        return len(data)
    size = int.from_bytes(data[i + 3 : i + header], "little")
    payload = data[i + header : i + header + size]
    if len(payload) >= 10 and payload[1] == 112:
        width = payload[6] | payload[7] << 8
        height = payload[8] | payload[9] << 8
        width_bytes = (width + 7) // 8
        for row in range(height):
            rows.append(payload[10 + row * width_bytes : 10 + (row + 1) * width_bytes])
    return i + header + size


def image_from_commands(data: bytes) -> Image.Image | None:
    """The dots of the image commands in ``data`` (black on white, mode ``"1"``), or
    None when they hold none."""
    rows: list[bytes] = []
    i = 0
    while i < len(data) and len(rows) < MAX_ROWS:
        if data.startswith(b"\x1dv0", i):
            i = _raster(data, i, rows)
        elif data.startswith(b"\x1b*", i):
            i = _column(data, i, rows)
        elif data.startswith(b"\x1d(L", i):
            i = _graphics(data, i, rows, 2)
        elif data.startswith(b"\x1d8L", i):
            i = _graphics(data, i, rows, 4)
        else:
            i += 1
    if not rows:
        return None
    rows = rows[:MAX_ROWS]
    width_bytes = max(len(row) for row in rows) or 1
    packed = b"".join(row.ljust(width_bytes, b"\x00") for row in rows)
    bits = Image.frombytes("1", (width_bytes * 8, len(rows)), packed)
    return bits.point(lambda v: 0 if v else 255, mode="L").convert("1")
