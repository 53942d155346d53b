"""A job document as one image (temporary stand-in until the text helper's renderer
lands): text lines drawn with Pillow's default font, nothing else."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw, ImageFont


def ticket_image(document: dict[str, Any], *, dots: int, fonts: Any = None) -> Image.Image:
    font = ImageFont.load_default()
    lines: list[str] = []
    for block in document.get("blocks") or []:
        if block.get("type") == "text":
            lines.extend(str(block.get("text", "")).split("\n"))
        elif block.get("type") == "line":
            lines.append(str(block.get("char", "-")) * 40)
        elif block.get("type") == "feed":
            lines.extend([""] * int(block.get("lines", 1)))
    height = max(1, 14 * len(lines) + 8)
    image = Image.new("1", (dots, height), 1)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((4, 4 + 14 * i), line, font=font, fill=0)
    return image
