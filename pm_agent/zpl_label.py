"""The test page of ``printer:test`` for a Zebra label printer (``zpl``): a small
label in ZPL, never ESC/POS bytes a label printer would print as garbage.

Text from the operator (the printer's name, its address) goes into ``^FD`` fields
hex-escaped (``^FH``): ``^`` and ``~`` start ZPL commands, so a name holding them
could otherwise inject commands; ``^CI28`` reads the escaped bytes as UTF-8.
"""

from __future__ import annotations

#: Characters written as ``_XX`` inside a ``^FH`` field: the command prefixes, the
#: escape character itself, and everything outside printable ASCII (as UTF-8 bytes).
_SPECIAL = frozenset(b"^~_")


def field_text(text: str) -> str:
    """``text`` as the data of a ``^FH_^FD ... ^FS`` field."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if byte in _SPECIAL or not 0x20 <= byte < 0x7F:
            out.append(f"_{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def zpl_test_label(*, printer_name: str, address: str, dots: int | None = None) -> bytes:
    """A test label: the title, the printer's name and address, one line of text."""
    width = dots or 812  # a 4-inch label at 203 dpi
    lines = [
        ("PRINTERMASTER TEST PAGE", 40),
        (f"Printer: {printer_name}", 25),
        (f"Address: {address}", 25),
        ("If you can read this, printing works.", 25),
    ]
    fields = []
    y = 30
    for text, height in lines:
        fields.append(f"^FO30,{y}^A0N,{height},{height}^FB{max(width - 60, 100)},1,0,L^FH_^FD")
        fields[-1] += f"{field_text(text)}^FS"
        y += height + 20
    return ("^XA^CI28^PW" + str(width) + "".join(fields) + "^XZ").encode("ascii")
