"""A job document drawn as one black-and-white image at the printer's width: text in
any script, right-to-left lines shaped and in visual order, whole-ticket images and
PDF pages, and the characters no font holds named."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from base64 import b64decode
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from pm_core import pdf_raster
from pm_core.fonts import FONT_PATH_ENV, default_fonts, find_fonts, use_fonts
from pm_core.pdf_raster import PDFIUM_LOCK
from pm_core.protocol.documents import MAX_PDF_PAGES, validate_document
from pm_core.protocol.errors import ProtocolError
from pm_core.ticket_image import (
    UnprintableText,
    pdf_page_images,
    text_block_image,
    ticket_image,
)
from pm_core.ticket_text import BASELINE, TEXT_SIZE, visual_order
from tests.support.fonts import need_fonts


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def picture(width: int, height: int, fmt: str = "PNG", pages: int = 1) -> bytes:
    """A white picture (or PDF) with a black square in its top-left quarter."""
    out = io.BytesIO()
    images = []
    for _ in range(pages):
        img = Image.new("RGB", (width, height), "white")
        ImageDraw.Draw(img).rectangle((0, 0, width // 2 - 1, height // 2 - 1), fill="black")
        images.append(img)
    images[0].save(out, fmt, save_all=pages > 1, append_images=images[1:])
    return out.getvalue()


def ink_columns(img: Image.Image) -> list[int]:
    """The x of every column with black in it."""
    grey = img.convert("L")
    width, height = grey.size
    px = grey.load()
    assert px is not None
    return [x for x in range(width) if any(px[x, y] < 128 for y in range(height))]


def text(value: str, **style: object) -> dict[str, object]:
    return {"type": "text", "text": value, **style}


def test_text_is_drawn_at_the_paper_width_and_aligned() -> None:
    need_fonts("latin")
    left = ticket_image({"blocks": [text("TOTAL 12.50")]}, dots=384)
    right = ticket_image({"blocks": [text("TOTAL 12.50", align="right")]}, dots=384)
    assert left.mode == "1" and left.width == 384 and right.width == 384
    assert ink_columns(left)[0] < 10
    assert ink_columns(right)[-1] > 374 and ink_columns(right)[0] > 150


def test_a_header_line_comes_first() -> None:
    need_fonts("latin")
    plain = ticket_image({"blocks": [text("2x Soup")]}, dots=384)
    headed = ticket_image({"blocks": [text("2x Soup")]}, dots=384, header="BACKUP FROM Grill")
    assert headed.height == plain.height * 2
    assert headed.crop((0, plain.height, 384, headed.height)).tobytes() == plain.tobytes()


def test_bold_and_double_width_draw_more_ink() -> None:
    need_fonts("latin")
    plain = ink_columns(text_block_image(text("Kitchen"), dots=576))
    bold = text_block_image(text("Kitchen", bold=True), dots=576)
    wide = text_block_image(text("Kitchen", width=2, height=2), dots=576)
    assert ink_columns(bold)[-1] > plain[-1]
    assert ink_columns(wide)[-1] > 1.8 * plain[-1]
    assert wide.height >= 2 * TEXT_SIZE


def test_long_lines_wrap_inside_the_paper() -> None:
    need_fonts("latin")
    one = text_block_image(text("word " * 3), dots=384)
    many = text_block_image(text("word " * 40), dots=384)
    assert many.height > 4 * one.height


def test_arabic_is_shaped_and_drawn_right_to_left() -> None:
    """Tried and failed: Arabic went out in logical order, letters unjoined. Drawn
    now, the line matches the shaped text in visual order drawn glyph by glyph."""
    need_fonts("arabic")
    words = "شاورما دجاج"
    img = text_block_image(text(words), dots=576)
    face = default_fonts().face_for("ش")
    assert face is not None
    font = ImageFont.truetype(str(face), TEXT_SIZE, layout_engine=ImageFont.Layout.BASIC)
    reference = Image.new("L", (576, img.height), 255)
    ImageDraw.Draw(reference).text((0, BASELINE), visual_order(words), font=font, anchor="ls")
    wrong = Image.new("L", (576, img.height), 255)
    ImageDraw.Draw(wrong).text((0, BASELINE), words, font=font, anchor="ls")  # as stored
    drawn, expected, unshaped = ink_columns(img), ink_columns(reference), ink_columns(wrong)
    assert abs(len(drawn) - len(expected)) <= 6
    assert abs(drawn[-1] - expected[-1]) <= 4
    assert abs(drawn[-1] - unshaped[-1]) > 8  # joined letters are narrower


def test_cjk_and_thai_are_drawn() -> None:
    need_fonts("chinese", "japanese", "thai")
    for sample in ("宫保鸡丁 米饭", "ラーメン 日本語", "ผัดไทย กุ้ง"):
        assert len(ink_columns(text_block_image(text(sample), dots=384))) > 40


def test_a_character_no_font_holds_is_named() -> None:
    with pytest.raises(UnprintableText) as caught:
        ticket_image({"blocks": [text("Menu \U0010fffd ok")]}, dots=384)
    assert caught.value.chars == ["\U0010fffd"]
    assert "U+10FFFD" in str(caught.value)


def test_whole_ticket_image_fills_the_paper_width() -> None:
    for fmt in ("PNG", "JPEG"):
        doc = {"blocks": [{"type": "ticket_image", "image_base64": b64(picture(200, 400, fmt))}]}
        img = ticket_image(doc, dots=576)
        assert img.size == (576, 1152)
        black = ink_columns(img.crop((0, 0, 576, 500)))
        assert black[0] < 4 and 280 <= black[-1] <= 292  # the square: the left half


def test_pdf_pages_are_rasterized_one_after_the_other() -> None:
    pdf = picture(300, 600, "PDF", pages=2)
    img = ticket_image({"blocks": [{"type": "pdf", "pdf_base64": b64(pdf)}]}, dots=384)
    assert img.width == 384 and 1500 <= img.height <= 1560  # two pages of 384 x 768
    top_of_second = img.crop((0, img.height // 2 + 10, 384, img.height // 2 + 200))
    assert ink_columns(top_of_second)[0] < 4


def test_pdfium_is_used_by_one_thread_at_a_time() -> None:
    """pdfium is not thread-safe (a hub checks PDFs off its event loop while a
    CloudPRNT ticket is drawn; each printer of an agent draws on its own thread):
    checking and drawing PDFs wait for each other instead of crashing the process."""
    pdf = picture(300, 600, "PDF", pages=2)
    doc = {"blocks": [{"type": "pdf", "pdf_base64": b64(pdf)}]}
    with ThreadPoolExecutor(4) as pool:
        with PDFIUM_LOCK:
            drawing = pool.submit(ticket_image, doc, dots=384)
            checking = pool.submit(validate_document, doc)
            done, _ = wait([drawing, checking], timeout=0.3)
            assert not done  # both wait for the lock
        assert drawing.result(timeout=10).width == 384
        assert checking.result(timeout=10)["blocks"][0]["type"] == "pdf"
    with ThreadPoolExecutor(4) as pool:  # many at once: all drawn, none crashed
        images = list(pool.map(lambda _: ticket_image(doc, dots=384), range(8)))
    assert {img.size for img in images} == {images[0].size}


def test_a_pdf_that_keeps_pdfium_busy_makes_the_next_fail_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PDF that pdfium takes forever over (a hostile one) holds the lock: the next
    PDFs fail after a bounded wait, saying why (unavailable when submitted,
    an error when drawn), instead of waiting with it for ever."""
    monkeypatch.setattr(pdf_raster, "PDFIUM_WAIT_S", 0.2)
    doc = {"blocks": [{"type": "pdf", "pdf_base64": b64(picture(100, 100, "PDF"))}]}
    checked = validate_document(doc)
    with PDFIUM_LOCK:
        with pytest.raises(ProtocolError) as caught:
            validate_document(doc)
        assert caught.value.code == "unavailable" and "busy" in caught.value.message
        with pytest.raises(ProtocolError, match="busy"):
            ticket_image(checked, dots=384)
        with pytest.raises(TimeoutError, match="busy"):
            pdf_page_images(b64decode(checked["blocks"][0]["pdf_base64"]), 384)


def test_pdf_and_ticket_image_blocks_are_checked() -> None:
    def error(block: dict[str, object]) -> str:
        with pytest.raises(ProtocolError) as caught:
            validate_document({"blocks": [block]})
        return caught.value.message

    assert "not a PDF" in error({"type": "pdf", "pdf_base64": b64(b"hello")})
    assert "readable PDF" in error({"type": "pdf", "pdf_base64": b64(b"%PDF-1.4 broken")})
    many = picture(50, 50, "PDF", pages=MAX_PDF_PAGES + 1)
    assert f"1 to {MAX_PDF_PAGES} pages" in error({"type": "pdf", "pdf_base64": b64(many)})
    gif = io.BytesIO()
    Image.new("L", (4, 4)).save(gif, "GIF")
    message = error({"type": "ticket_image", "image_base64": b64(gif.getvalue())})
    assert "PNG or JPEG" in message
    tall = picture(10, 20000)
    assert "at most 4096x16384" in error({"type": "ticket_image", "image_base64": b64(tall)})


def test_a_raw_document_has_no_picture() -> None:
    with pytest.raises(ValueError, match="raw_base64"):
        ticket_image({"raw_base64": b64(b"^XA^XZ")}, dots=384)


def test_user_fonts_come_before_the_system_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--font`` files, then ``PM_FONT_PATH`` folders, then the system's; a path that
    is no font is refused with its name."""
    need_fonts("latin")
    system = default_fonts()
    dejavu = system.face_for("A")
    assert dejavu is not None
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "House-Regular.ttf").write_bytes(dejavu.read_bytes())
    assert find_fonts([mine / "House-Regular.ttf"]).face_for("A") == mine / "House-Regular.ttf"
    monkeypatch.setenv(FONT_PATH_ENV, str(mine))
    assert find_fonts().face_for("A") == mine / "House-Regular.ttf"
    monkeypatch.delenv(FONT_PATH_ENV)
    with pytest.raises(ValueError, match=r"nope\.txt: not a font file"):
        use_fonts([tmp_path / "nope.txt"])
    try:
        use_fonts([mine])
        assert default_fonts().face_for("A") == mine / "House-Regular.ttf"
    finally:
        use_fonts([])
    assert default_fonts().face_for("A") == dejavu


def test_a_pdf_that_takes_too_long_is_stopped_and_the_next_one_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tried and failed: pdfium drew inside the hub's or agent's process, so a PDF that
    kept it busy held it until a restart. Now the child drawing it is killed at the
    time limit, the PDF fails saying so, and the next PDF is drawn by a new child."""
    pdf = picture(300, 600, "PDF")
    assert pdf_page_images(pdf, 384)[0].width == 384
    child = pdf_raster._child
    assert child is not None and child.alive()
    monkeypatch.setattr(pdf_raster, "PDF_RENDER_LIMIT_S", 0.0)  # nothing draws in time
    with pytest.raises(pdf_raster.PdfRenderTimeout, match="PDF took too long to render"):
        pdf_page_images(pdf, 384)
    assert not child.alive()
    monkeypatch.undo()
    assert pdf_page_images(pdf, 384)[0].width == 384
    assert pdf_raster._child is not None and pdf_raster._child is not child


def test_the_hubs_check_of_a_pdf_never_loads_pdfium_in_its_own_process() -> None:
    """Tried and failed: the hub opened every submitted PDF with pdfium in its own
    process to count and measure its pages, so a hostile PDF could hang or crash the
    hub. The check now runs in the child, and the hub's process never loads pdfium."""
    code = (
        "import sys, base64\n"
        "from pm_core.protocol.documents import validate_document\n"
        "pdf = base64.b64decode(sys.stdin.read())\n"
        "doc = validate_document({'blocks': [{'type': 'pdf', "
        "'pdf_base64': base64.b64encode(pdf).decode()}]})\n"
        "print(doc['blocks'][0]['type'], 'pypdfium2' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=b64(picture(300, 600, "PDF", pages=2)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pdf", "False"]


def test_a_pdf_too_slow_to_check_is_refused_and_the_next_one_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PDF the child cannot measure within the check's limit is refused as
    unreadable (the child is killed), and the next PDF is checked by a new child."""
    doc = {"blocks": [{"type": "pdf", "pdf_base64": b64(picture(100, 100, "PDF"))}]}
    monkeypatch.setattr(pdf_raster, "PDF_CHECK_LIMIT_S", 0.0)
    with pytest.raises(ProtocolError, match="not a readable PDF"):
        validate_document(doc)
    monkeypatch.undo()
    assert validate_document(doc)["blocks"][0]["type"] == "pdf"


def test_an_answer_from_the_reader_that_does_not_add_up_is_not_believed() -> None:
    """What the child says is parsed as numbers and pixels, checked against its
    length: a page that claims more pixels than were sent is refused."""
    import struct

    claim = struct.pack(">I", 1) + struct.pack(">II", 4096, 4096) + b"\x00" * 10
    with pytest.raises(ValueError, match="cut short"):
        pdf_raster._pages(claim)
    extra = struct.pack(">I", 1) + struct.pack(">II", 1, 1) + b"\x00" + b"junk"
    with pytest.raises(ValueError, match="after the last page"):
        pdf_raster._pages(extra)
