"""A ticket in the printer's command language: the renderer chosen by ``language``.

* ``escpos`` (and ``zpl``/``raw``): :func:`pm_agent.render.render_document`;
* ``star_raster``: the whole ticket drawn as one image by the ticket renderer
  (:func:`pm_core.ticket_image.ticket_image`) and sent with Star's raster commands
  (:mod:`pm_agent.star_raster`) -- what the raster-only TSP100/TSP143 take, and
  every other Star thermal model too;
* ``star_line`` and ``starprnt``: text in Star Line commands, pictures as raster
  blocks (:mod:`pm_agent.star_line`); StarPRNT printers take the Star Line text
  commands used there.

A ``raw_base64`` document for a Star printer goes out as it is: bytes made
elsewhere for that printer.
"""

from __future__ import annotations

import base64
from typing import Any

from pm_agent.render import render_document
from pm_agent.star_line import star_line_ticket
from pm_agent.star_raster import DRAWER_KICK, raster_ticket
from pm_core.protocol.documents import validate_document
from pm_core.protocol.languages import DEFAULT_LANGUAGE, STAR_LANGUAGES
from pm_core.ticket_image import ticket_image

#: Dots per line of an 80 mm Star printer, when the profile does not say.
STAR_DEFAULT_DOTS = 576
#: Blocks that put nothing on paper.
_NOT_PRINTING = frozenset({"cut", "drawer"})


def is_star(language: str | None) -> bool:
    return language in STAR_LANGUAGES


def star_raster_document(doc: dict[str, Any], *, dots: int, header: str | None = None) -> bytes:
    """The whole ticket as one Star raster page: drawn, fed and cut (not cut when
    nothing in it prints: a drawer-only document just kicks the drawer)."""
    blocks: list[dict[str, Any]] = doc["blocks"]
    printing = [b for b in blocks if b["type"] not in _NOT_PRINTING]
    drawers = tuple(b["pin"] for b in blocks if b["type"] == "drawer")
    if not printing:
        return b"".join(DRAWER_KICK[pin] for pin in drawers)
    image = ticket_image({"blocks": printing}, dots=dots, header=header or None)
    return raster_ticket(image, cut=True, drawers=drawers)


def render_for_language(
    doc: dict[str, Any],
    *,
    language: str | None,
    columns: int = 42,
    dots: int | None = None,
    profile: str | None = None,
    header: str | None = None,
    cutter: bool | None = None,
    text_mode: str = "auto",
) -> bytes:
    """The bytes of a job document for a printer speaking ``language`` (None:
    ``escpos``); ``text_mode`` ``raster`` draws all text. Raises ``ProtocolError`` for
    an invalid document, ``ValueError`` for one the language cannot take."""
    if not is_star(language):
        return render_document(
            doc,
            columns=columns,
            profile=profile,
            header=header,
            cutter=cutter,
            language=language or DEFAULT_LANGUAGE,
            text_mode=text_mode,
        )
    doc = validate_document(doc)
    if "raw_base64" in doc:
        return base64.b64decode("".join(doc["raw_base64"].split()))
    width = dots or STAR_DEFAULT_DOTS
    width -= width % 8
    if language == "star_raster":
        return star_raster_document(doc, dots=width, header=header)
    return star_line_ticket(
        doc["blocks"], columns=columns, dots=width, header=header, all_drawn=text_mode == "raster"
    )


def star_test_page(
    *, printer_name: str, address: str, language: str, columns: int, dots: int | None
) -> bytes:
    """The test page of ``printer:test`` in a Star language."""
    text = [
        ("PRINTERMASTER TEST PAGE", True, "center"),
        (f"Printer: {printer_name}", False, "left"),
        (f"Address: {address}", False, "left"),
        (f"Language: {language}", False, "left"),
        ("If you can read this, printing works.", False, "center"),
    ]
    doc = {
        "blocks": [
            {"type": "text", "text": t, "bold": bold, "align": align} for t, bold, align in text
        ]
    }
    return render_for_language(doc, language=language, columns=columns, dots=dots)
