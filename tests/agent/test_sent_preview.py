"""The agent's sent preview, read back from the bytes: pictures in every ESC/POS image
command come back dot for dot, Star tickets and raw bytes get their own lines, and a
preview stays within its bounds."""

from __future__ import annotations

import base64

import pytest
from escpos.printer import Dummy
from PIL import Image, ImageDraw

from pm_agent.escpos_image import image_from_commands
from pm_agent.language_render import render_for_language
from pm_agent.sent_preview import sent_lines, sent_preview
from pm_core.sent_preview import MAX_LINES, validate_sent_preview


def picture() -> Image.Image:
    image = Image.new("1", (64, 48), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, 30, 40), fill=0)
    draw.line((0, 47, 63, 0), fill=0)
    return image


@pytest.mark.parametrize("impl", ["bitImageRaster", "bitImageColumn", "graphics"])
def test_every_image_command_comes_back_dot_for_dot(impl: str) -> None:
    printer = Dummy()
    printer.image(picture(), impl=impl, center=False)
    back = image_from_commands(printer.output)
    assert back is not None
    original = picture().convert("L")
    crop = back.convert("L").crop((0, 0, 64, 48))
    assert crop.tobytes() == original.tobytes()


def test_a_star_line_ticket_keeps_its_text_and_draws_its_qr_code() -> None:
    doc = {"blocks": [{"type": "text", "text": "Crème brûlée"}, {"type": "qr", "data": "x"}]}
    lines = sent_lines(render_for_language(doc, language="star_line"), language="star_line")
    assert lines[0] == "Crème brûlée"
    assert lines[1].startswith("[image 576x") and len(lines) > 3


def test_raw_bytes_show_their_size_and_an_excerpt() -> None:
    zpl = b"^XA^FO50,50^ADN,36,20^FDHello label^FS^XZ\x00\x01"
    doc = {"raw_base64": base64.b64encode(zpl).decode()}
    preview = sent_preview(render_for_language(doc, language="zpl"), language="zpl")
    assert preview["lines"] == [
        f"[raw {len(zpl)} bytes]",
        "^XA^FO50,50^ADN,36,20^FDHello label^FS^XZ··",
    ]


def test_a_long_ticket_is_cut_short_within_the_bounds() -> None:
    doc = {"blocks": [{"type": "text", "text": f"line {i}"} for i in range(500)]}
    preview = sent_preview(render_for_language(doc, language="escpos"), language="escpos", copies=2)
    assert len(preview["lines"]) == MAX_LINES
    assert preview["lines"][-1].endswith("more lines not shown]")
    assert validate_sent_preview(preview) == preview
    big = {"blocks": [{"type": "text", "text": "é" * 40} for _ in range(190)]}
    preview = sent_preview(render_for_language(big, language="escpos"), language="escpos")
    assert validate_sent_preview(preview) == preview  # within MAX_PREVIEW_BYTES
