"""Text in any script prints as written, or the job fails before a byte is sent.

Each line of a ticket reaches the (simulated) printer either as text in one of its
code pages, in visual order for right-to-left scripts, decoded back and compared; or
in its double-byte mode; or as an image. Never as ``?`` or as bytes the printer reads
as something else. Also: whole-ticket images and PDFs, ZPL/raw pass-through and the
drawer-only document."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from pm_agent.escpos_events import Cut, Drawer, Event, Image, Init, LineFeed, Style, Text
from pm_agent.escpos_stream import decode_all
from pm_agent.open_port import open_port
from pm_agent.printer_uri import parse_printer_uri
from pm_agent.printer_worker import PrinterWorker
from pm_agent.render import render_document
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.spool import JobSpool
from pm_core.ticket_image import UnprintableText, visual_order
from pm_hub.server import RunningHub
from tests.agent.test_printer_identity import wait_row
from tests.conftest import AgentFactory
from tests.support.fonts import need_fonts
from tests.support.helpers import OpsClient, eventually

#: One line per script the issue names.
SCRIPTS = {
    "latin": "Crème brûlée 4,50 €",
    "cyrillic": "Борщ со сметаной",  # noqa: RUF001
    "greek": "Χωριάτικη σαλάτα",
    "arabic": "شاورما دجاج كبيرة",
    "hebrew": "שקשוקה חריפה",
    "chinese": "宫保鸡丁 米饭",
    "japanese": "ラーメン 大盛り",
    "thai": "ผัดไทย กุ้งสด",
}
#: The default profile, an Epson TM-T88V and a Star TSP600 in ESC/POS mode.
PROFILES = [None, "TM-T88V", "TSP600"]
UNPRINTABLE = "\U0010fffd"


def doc(*texts: str) -> dict[str, Any]:
    return {"blocks": [{"type": "text", "text": t} for t in texts]}


def body(events: list[Event]) -> list[tuple[str, Any]]:
    """What the printer prints, line by line: ("text", the line) or ("image", width)."""
    out: list[tuple[str, Any]] = []
    line = ""
    for event in events:
        if isinstance(event, Text):
            line += event.text
        elif isinstance(event, LineFeed):
            if line:
                out.append(("text", line))
            line = ""
        elif isinstance(event, Image):
            out.append(("image", event.width))
    if line:
        out.append(("text", line))
    return out


def printed(text: str, profile: str | None, **options: Any) -> tuple[str, Any]:
    """How one line of text arrives on a printer with ``profile``."""
    events = decode_all(render_document(doc(text), profile=profile, **options), profile=profile)
    lines = body(events)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_ticket_in_eight_scripts_prints_each_line_as_text_or_image(profile: str | None) -> None:
    need_fonts("arabic", "hebrew", "thai", "chinese", "japanese")
    events = decode_all(render_document(doc(*SCRIPTS.values()), profile=profile), profile=profile)
    lines = body(events)
    assert len(lines) == len(SCRIPTS), lines
    for (script, text), (kind, value) in zip(SCRIPTS.items(), lines, strict=True):
        if kind == "text":
            assert value in (text, visual_order(text)), (script, value)
            assert "?" not in value
        else:
            assert value > 300, script  # an image as wide as the paper


def test_arabic_is_shaped_and_sent_in_visual_order() -> None:
    """Tried and failed: Arabic went out through CP720 in logical order with unjoined
    letters (reads left to right on paper). Now: shaped, in visual order, in CP864
    when it holds every letter form, else drawn."""
    need_fonts("arabic")
    held = "شاورما دجاج"  # every shaped form of these is in CP864
    kind, value = printed(held, None)
    assert (kind, value) == ("text", visual_order(held))
    assert value != held and value[0] != held[0]  # the last letter, shaped, comes first
    drawn = SCRIPTS["arabic"]  # CP864 lacks some medial and final forms of كبيرة
    assert printed(drawn, None) == ("image", 504)
    for text in (held, drawn):
        assert text.encode("cp720") not in render_document(doc(text))


def test_hebrew_is_sent_in_visual_order() -> None:
    text = SCRIPTS["hebrew"]
    assert printed(text, None) == ("text", text[::-1])
    assert printed(text, "TM-T88V") == ("text", text[::-1])


def test_chinese_is_not_sent_as_raw_gbk_to_a_western_printer() -> None:
    """Tried and failed: raw GB18030 bytes without Kanji mode, garbage on paper."""
    need_fonts("chinese")
    text = SCRIPTS["chinese"]
    for profile in PROFILES:
        data = render_document(doc(text), profile=profile)
        assert text.encode("gb18030") not in data
        assert printed(text, profile)[0] == "image"


def test_chinese_uses_kanji_mode_on_a_printer_with_a_chinese_font() -> None:
    text = SCRIPTS["chinese"]
    data = render_document(doc(text), profile="ZJ-5870")
    assert b"\x1c&" + text.encode("gbk") + b"\x1c." in data
    events = decode_all(data, profile="ZJ-5870")
    assert Style("kanji", True) in events and Style("kanji", False) in events
    assert ("text", text) in body(events)


@pytest.mark.parametrize("profile", [*PROFILES, "POS-5890", "simple"])
def test_japanese_is_printed_never_question_marks(profile: str | None) -> None:
    """Tried and failed: ``????`` on every profile."""
    need_fonts("japanese")
    kind, value = printed(SCRIPTS["japanese"], profile)
    assert kind == "image" or value == SCRIPTS["japanese"]


@pytest.mark.parametrize(
    ("script", "profile", "path"),
    [
        ("thai", None, "text"),  # CP874 in the default profile
        ("thai", "TM-T88V", "image"),  # no Thai code page
        ("greek", None, "text"),
        ("greek", "simple", "image"),  # CP437 only
        ("hebrew", "simple", "image"),
        ("cyrillic", "TSP600", "text"),
    ],
)
def test_thai_greek_hebrew_take_the_path_the_profile_allows(
    script: str, profile: str | None, path: str
) -> None:
    """Tried and failed: ``?`` on some profiles."""
    need_fonts("thai", "hebrew")
    kind, value = printed(SCRIPTS[script], profile)
    assert kind == path
    if kind == "text":
        assert value in (SCRIPTS[script], visual_order(SCRIPTS[script]))


def test_text_mode_raster_draws_all_text() -> None:
    need_fonts("latin")
    assert printed("Total 12.50", None)[0] == "text"
    assert printed("Total 12.50", None, text_mode="raster") == ("image", 504)
    assert printed("Total 12.50", "TM-T88V", text_mode="raster") == ("image", 512)


def test_a_character_no_path_prints_is_named() -> None:
    with pytest.raises(UnprintableText) as caught:
        render_document(doc("Soup", f"Special {UNPRINTABLE}"))
    assert caught.value.chars == [UNPRINTABLE] and "U+10FFFD" in str(caught.value)
    # A printer that prints no images cannot take Thai (no code page) at all.
    with pytest.raises(UnprintableText, match="prints no images"):
        render_document(doc(SCRIPTS["thai"]), profile="OCD-300")


def picture(fmt: str, pages: int = 1) -> str:
    out = io.BytesIO()
    images = [PILImage.new("L", (300, 200), 0) for _ in range(pages)]
    images[0].save(out, fmt, save_all=pages > 1, append_images=images[1:])
    return base64.b64encode(out.getvalue()).decode()


def test_whole_ticket_images_and_pdf_pages_print_at_the_paper_width() -> None:
    document = {
        "blocks": [
            {"type": "ticket_image", "image_base64": picture("JPEG")},
            {"type": "pdf", "pdf_base64": picture("PDF", pages=2)},
        ]
    }
    events = decode_all(render_document(document, profile="TM-T88V"), profile="TM-T88V")
    images = [e for e in events if isinstance(e, Image)]
    assert [i.width for i in images] == [512, 512, 512]
    assert all(330 <= i.height <= 350 for i in images)  # 512 x 200/300
    assert isinstance(events[-1], Cut)


ZPL = b"^XA^FO50,50^A0N,40,40^FDHello^FS^XZ"


@pytest.mark.parametrize("language", ["zpl", "raw"])
def test_raw_documents_pass_through_as_they_are(language: str) -> None:
    """Tried and failed: ZPL wrapped in ESC @ and an ESC/POS feed and cut."""
    raw = {"raw_base64": base64.b64encode(ZPL).decode()}
    assert render_document(raw, language=language, header="BACKUP FROM Labels-1") == ZPL
    with pytest.raises(ValueError, match="only raw_base64"):
        render_document(doc("hello"), language=language)


def test_a_drawer_only_document_kicks_the_drawer_and_neither_feeds_nor_cuts() -> None:
    """Tried and failed: a "no sale" fed six lines and fired the cutter."""
    data = render_document({"blocks": [{"type": "drawer"}]}, header="BACKUP FROM Till-1")
    assert decode_all(data) == [Init(), Drawer(pin=2)]


# -- through the simulated printer -------------------------------------------------------------


@contextlib.asynccontextmanager
async def printing_to(
    tmp_path: Path, printer: SimulatedPrinter, **worker_options: Any
) -> AsyncIterator[tuple[PrinterWorker, JobSpool]]:
    await printer.start()
    spool = JobSpool(tmp_path / "spool.sqlite", synchronous="NORMAL")
    await asyncio.to_thread(spool.open)
    spec = parse_printer_uri(printer.address, name=printer.name)

    async def on_status(worker: PrinterWorker) -> None:
        return None

    worker = PrinterWorker(
        spec, open_port(spec), spool, on_status=on_status, on_outbox=lambda: None, **worker_options
    )
    worker.printer_id = 1
    worker.start()
    try:
        yield worker, spool
    finally:
        await worker.stop()
        await asyncio.to_thread(spool.close)
        await printer.stop()


def outcomes(tmp_path: Path) -> dict[int, tuple[str, str | None, str | None]]:
    with sqlite3.connect(tmp_path / "spool.sqlite") as conn:
        rows = conn.execute("SELECT job_id, state, error_code, error_message FROM spool_jobs")
        return {r[0]: (r[1], r[2], r[3]) for r in rows.fetchall()}


async def test_an_unprintable_line_fails_the_job_before_a_byte_is_sent(tmp_path: Path) -> None:
    need_fonts("arabic")
    printer = SimulatedPrinter("Grill")
    async with printing_to(tmp_path, printer) as (worker, spool):
        bad = doc("TABLE 4", SCRIPTS["arabic"], f"1x Special {UNPRINTABLE}")
        await spool.accept({"id": 1, "printer_id": 1, "document": bad})
        await spool.accept({"id": 2, "printer_id": 1, "document": doc(SCRIPTS["arabic"])})
        worker.wake()
        receipts = await printer.wait_for_receipts(1)
        await eventually(lambda: outcomes(tmp_path)[2][0] == "completed", timeout=5)
    state, code, message = outcomes(tmp_path)[1]
    assert (state, code) == ("failed", "render_error")
    assert message is not None and "U+10FFFD" in message
    assert len(printer.receipts) == 1 and "TABLE 4" not in receipts[0].text
    assert receipts[0].text.startswith("[IMAGE ")  # job 2: its Arabic line, drawn


async def test_zpl_reaches_the_label_printer_byte_for_byte(tmp_path: Path) -> None:
    printer = SimulatedPrinter("Labels", language="zpl")
    async with printing_to(tmp_path, printer, language="zpl") as (worker, spool):
        raw = {"raw_base64": base64.b64encode(ZPL).decode()}
        await spool.accept({"id": 1, "printer_id": 1, "document": raw, "header": "BACKUP"})
        worker.wake()
        await eventually(lambda: outcomes(tmp_path)[1][0] == "completed", timeout=5)
        receipts = await printer.wait_for_receipts(1)
    assert receipts[0].raw == ZPL  # the label, as sent; ~HS around it is no part of it


async def test_no_sale_opens_the_drawer_without_paper(tmp_path: Path) -> None:
    printer = SimulatedPrinter("Till")
    async with printing_to(tmp_path, printer) as (worker, spool):
        drawer = {"blocks": [{"type": "drawer", "pin": 5}]}
        await spool.accept({"id": 1, "printer_id": 1, "document": drawer})
        worker.wake()
        await eventually(lambda: outcomes(tmp_path)[1][0] == "completed", timeout=5)
        await worker.io(worker.port.close)
        await eventually(lambda: printer.drawer_kicks == [5], timeout=5)
        await asyncio.sleep(0.1)
        assert printer.cuts == 0 and printer.receipts == []  # no feed, no text, no cut


# -- the operator's setting ---------------------------------------------------------------------


async def test_operator_forces_raster_text_for_a_printer(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory
) -> None:
    """``printer:configure {text_mode: raster}``: kept by the hub, sent to the agent, the
    next ticket's text arrives drawn; ``auto`` (or null) goes back to code pages. A bad
    value and an operator below manager are refused."""
    need_fonts("latin")
    ticket = {"blocks": [{"type": "text", "text": "TABLE 7"}]}
    async with SimulatedPrinter("Pass", serial="TXT-1", model="TM-T88V") as sim:
        await make_agent([f"Pass={sim.address}"], name="text-mode")
        row = await wait_row(ops, "registered", identity="serial:TXT-1", status="online")
        assert row["text_mode"] is None

        bad = await ops.call("printer:configure", {"printer_id": row["id"], "text_mode": "bitmap"})
        assert (
            bad["error"]["code"] == "invalid_payload" and "auto, raster" in bad["error"]["message"]
        )
        assert hub.hub.tokens is not None
        operator = await OpsClient(
            hub.url, hub.hub.tokens.create(role="operator", branch_ids=[1])
        ).connect()
        try:
            denied = await operator.call(
                "printer:configure", {"printer_id": row["id"], "text_mode": "raster"}
            )
        finally:
            await operator.close()
        assert denied["error"]["code"] == "forbidden"

        ack = await ops.call("printer:configure", {"printer_id": row["id"], "text_mode": "raster"})
        assert ack["ok"] and ack["text_mode_applied"] is True, ack
        assert ack["printer"]["text_mode"] == "raster"
        assert (await ops.call("job:submit", {"printer_id": row["id"], "document": ticket}))["ok"]
        assert (await sim.wait_for_receipts(1))[-1].text == "[IMAGE 512x32]"

        ack = await ops.call("printer:configure", {"printer_id": row["id"], "text_mode": "auto"})
        assert ack["ok"] and ack["printer"]["text_mode"] == "auto"
        assert (await ops.call("job:submit", {"printer_id": row["id"], "document": ticket}))["ok"]
        assert (await sim.wait_for_receipts(2))[-1].text == "TABLE 7"


async def test_a_job_with_unprintable_text_ends_failed_on_the_hub(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Tried and failed: such a job ended ``completed``. Now the operator sees it
    ``failed`` with ``render_error`` naming the character, and nothing was printed."""
    async with SimulatedPrinter("Grill", serial="TXT-2") as sim:
        await make_agent([f"Grill={sim.address}"], name="unprintable")
        row = await wait_row(ops, "registered", identity="serial:TXT-2", status="online")
        ack = await ops.call(
            "job:submit", {"printer_id": row["id"], "document": doc(f"Soup {UNPRINTABLE}")}
        )
        assert ack["ok"], ack
        job_id = ack["job"]["id"]

        async def finished() -> dict[str, Any] | None:
            got = await ops.call("jobs:list", {"printer_id": row["id"]})
            job = next(j for j in got["jobs"] if j["id"] == job_id)
            return job if job["status"] in ("failed", "completed") else None

        job = await eventually(finished, what="job finished")
        assert job["status"] == "failed" and job["error"]["code"] == "render_error", job
        assert "U+10FFFD" in job["error"]["message"]
        assert sim.receipts == []


def test_a_line_of_a_character_no_code_page_holds_is_drawn_across_the_paper() -> None:
    need_fonts("symbols")
    events = decode_all(render_document({"blocks": [{"type": "line", "char": "✂"}]}))
    assert body(events) == [("image", 504)]  # one strip, not the dashes wrapped
    assert [e.height for e in events if isinstance(e, Image)] == [32]


async def test_a_pdf_job_prints_each_page_and_a_bad_one_is_refused(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    async with SimulatedPrinter("Office", serial="PDF-1", model="TM-T88V") as sim:
        await make_agent([f"Office={sim.address}"], name="pdf")
        row = await wait_row(ops, "registered", identity="serial:PDF-1", status="online")
        pdf = {"blocks": [{"type": "pdf", "pdf_base64": picture("PDF", pages=2)}]}
        ack = await ops.call("job:submit", {"printer_id": row["id"], "document": pdf})
        assert ack["ok"], ack
        receipt = (await sim.wait_for_receipts(1))[0]
        assert receipt.text.splitlines() == ["[IMAGE 512x342]", "[IMAGE 512x342]"]
        broken = {"blocks": [{"type": "pdf", "pdf_base64": base64.b64encode(b"%PDF-1.7").decode()}]}
        bad = await ops.call("job:submit", {"printer_id": row["id"], "document": broken})
        assert bad["error"]["code"] == "invalid_payload"
        assert "blocks[0].pdf_base64 is not a readable PDF" in bad["error"]["message"]


@pytest.mark.parametrize("profile", ["default", "TM-T88V", "TSP600"])
async def test_the_simulated_printer_receives_every_script_readably(
    tmp_path: Path, profile: str
) -> None:
    """The eight-script ticket through a printer worker into the simulated printer:
    what it received, decoded with the printer's code pages, is each line as text
    (visual order for right-to-left) or as an image."""
    need_fonts("arabic", "hebrew", "thai", "chinese", "japanese")
    printer = SimulatedPrinter("Pass", profile=profile)
    async with printing_to(tmp_path, printer, profile=profile) as (worker, spool):
        ticket = {"blocks": [*doc(*SCRIPTS.values())["blocks"], {"type": "cut"}]}
        await spool.accept({"id": 1, "printer_id": 1, "document": ticket})
        worker.wake()
        receipt = (await printer.wait_for_receipts(1))[0]
    lines = body(decode_all(receipt.raw, profile=profile))
    assert len(lines) == len(SCRIPTS), lines
    kinds = []
    for (script, text), (kind, value) in zip(SCRIPTS.items(), lines, strict=True):
        kinds.append(kind)
        if kind == "text":
            assert value in (text, visual_order(text)), (script, value)
        else:
            assert value == {"default": 504, "TM-T88V": 512, "TSP600": 576}[profile], script
    assert kinds[:3] == ["text", "text", "text"]  # Latin, Cyrillic, Greek in code pages
    assert kinds[5:7] == ["image", "image"]  # Chinese and Japanese drawn


def test_drawing_stops_past_four_metres_of_paper() -> None:
    """A hostile document of hundreds of long text blocks drawn as images is refused
    (render_error) instead of tying the agent up and sending megabytes."""
    need_fonts("latin")
    tall = {"blocks": [{"type": "text", "text": "x\n" * 20} for _ in range(60)]}
    with pytest.raises(ValueError, match="more than 32768 dots"):
        render_document(tall, text_mode="raster")
