"""Star printers: the command language chosen from identity, Star raster and Star
Line bytes that decode back to the ticket, Star's ASB status, and a job through a
real hub and agent to a simulated Star printer."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image, ImageChops, ImageDraw

from pm_agent.agent import Agent
from pm_agent.capabilities import capabilities_for
from pm_agent.discovery.found import FoundPrinter
from pm_agent.language_render import render_for_language
from pm_agent.printer_language import language_for_command_set, language_for_model
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.star_line import star_line_ticket
from pm_agent.star_raster import raster_ticket
from pm_agent.star_status import decode_asb, decode_asb_hex, encode_asb
from pm_agent.star_stream import RasterImage, decode_star
from pm_agent.tcp_port import TcpPrinterPort
from pm_core.protocol.documents import validate_document
from pm_core.ticket_image import is_rtl, visual_order
from tests.agent.test_text_scripts import SCRIPTS
from tests.conftest import AgentFactory
from tests.support.fonts import need_fonts
from tests.support.helpers import OpsClient, eventually


def test_usb_cmd_star_makes_a_star_printer() -> None:
    """A USB printer whose IEEE 1284 id says CMD:STAR is driven in a Star language:
    the raster-only TSP143 in star_raster, a TSP654 in Star Line; ESC/POS stays."""
    assert language_for_command_set("STAR", "TSP143IIIU (STR_T-001)") == "star_raster"
    assert language_for_command_set("STAR", "TSP654II") == "star_line"
    assert language_for_command_set("STARPRNT", "MCP31") == "starprnt"
    assert language_for_command_set("ESC/POS", "TM-T88V") == "escpos"
    found = FoundPrinter(
        uri="usb://0519:0003",
        kind="usb",
        source="usb",
        name="Star TSP143IIIU",
        model="TSP143IIIU",
        language=language_for_command_set("STAR", "TSP143IIIU"),
    )
    spec = found.spec()
    assert spec.options["language"] == "star_raster"
    assert capabilities_for("TSP143IIIU", language=spec.options["language"]).language == (
        "star_raster"
    )


def test_model_and_mdns_names_choose_the_language() -> None:
    assert language_for_model("Star TSP143IIILAN (STR_T-001)") == "star_raster"
    # A TSP650 or mC-Print may be in ESC/POS emulation: its name alone decides nothing.
    assert language_for_model("Star TSP654II") is None
    assert language_for_model("Star mC-Print3") is None
    assert language_for_model("EPSON TM-T20II") is None
    assert capabilities_for("TM-T88V").language == "escpos"
    assert capabilities_for("TSP100").language == "star_raster"


def _drawn() -> Image.Image:
    image = Image.new("1", (576, 120), 1)
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 300, 40), fill=0)
    draw.line((0, 100, 575, 110), fill=0, width=3)
    return image


def test_star_raster_bytes_decode_back_to_the_image() -> None:
    image = _drawn()
    data = raster_ticket(image, cut=True, drawers=(2,))
    assert data.startswith(b"\x1b*rR\x1b*rA") and b"\x1b*rE13\x00" in data
    events = decode_star(data)
    pages = [e for e in events if isinstance(e, RasterImage)]
    assert len(pages) == 1
    assert pages[0].image.size == image.size
    assert ImageChops.difference(pages[0].image.convert("L"), image.convert("L")).getbbox() is None
    assert [type(e).__name__ for e in events] == ["RasterImage", "Cut", "Drawer"]


def test_star_line_text_in_star_code_pages_and_raster_for_the_rest() -> None:
    doc = validate_document(
        {
            "blocks": [
                {"type": "text", "text": "Crème brûlée 4,50 €", "bold": True},
                {"type": "text", "text": "Борщ", "align": "center"},
                {"type": "text", "text": "ラーメン"},
                {"type": "drawer"},
            ]
        }
    )
    data = star_line_ticket(doc["blocks"], columns=48, dots=576)
    assert data.startswith(b"\x1b@")
    assert b"\x1bE" in data and b"\x1bF" in data  # bold on and off, Star style
    events = decode_star(data)
    texts = [e.text for e in events if type(e).__name__ == "Text"]
    assert texts == ["Crème brûlée 4,50 €", "Борщ"]
    assert "?" not in "".join(texts)
    rasters = [e for e in events if isinstance(e, RasterImage)]
    assert len(rasters) == 1 and rasters[0].width == 576  # the Japanese line, drawn
    assert data.endswith(b"\x07\x1bd\x02")  # the drawer, then the full cut


def test_star_line_sends_hebrew_in_visual_order() -> None:
    """Tried and failed: Star Line mode sent Hebrew in CP862 in logical order, so it
    printed backwards. Now it is wrapped at the columns and sent in visual order, as
    on an ESC/POS printer."""
    text = "שקשוקה חריפה"
    doc = validate_document({"blocks": [{"type": "text", "text": text}]})
    events = decode_star(star_line_ticket(doc["blocks"], columns=48, dots=576))
    texts = [e.text for e in events if type(e).__name__ == "Text"]
    assert texts == [text[::-1]]
    long = validate_document({"blocks": [{"type": "text", "text": " ".join([text] * 6)}]})
    events = decode_star(star_line_ticket(long["blocks"], columns=48, dots=576))
    lines = [e.text for e in events if type(e).__name__ == "Text"]
    assert len(lines) > 1 and all(len(line) <= 48 for line in lines)
    assert lines[0].endswith(text[::-1])  # the first words on the right of the first line


@pytest.mark.parametrize("language", ["star_line", "starprnt", "star_raster"])
def test_eight_scripts_on_a_star_printer_arrive_as_text_in_visual_order_or_drawn(
    language: str,
) -> None:
    """The issue's ticket on a Star printer in its own mode: each line arrives as text
    in a Star code page (right-to-left ones in visual order), or drawn as wide as the
    paper; never as ``?``."""
    need_fonts("arabic", "hebrew", "thai", "chinese", "japanese")
    for script, text in SCRIPTS.items():
        data = render_for_language(
            {"blocks": [{"type": "text", "text": text}]}, language=language, dots=576
        )
        events = decode_star(data)
        texts = [e.text for e in events if type(e).__name__ == "Text"]
        rasters = [e for e in events if isinstance(e, RasterImage)]
        if texts:
            assert texts == [visual_order(text) if is_rtl(text) else text], (script, texts)
            assert not rasters
        else:
            assert len(rasters) == 1 and rasters[0].width == 576, script
        assert "?" not in "".join(texts), script


def test_a_drawer_only_star_raster_ticket_is_not_fed_or_cut() -> None:
    data = render_for_language({"blocks": [{"type": "drawer"}]}, language="star_raster")
    assert data == b"\x07"


@pytest.mark.parametrize(
    ("state", "flag"),
    [("paper_out", "paper_end"), ("cover_open", "cover_open"), ("paper_low", "paper_near_end")],
)
def test_star_status_maps_to_printer_status(state: str, flag: str) -> None:
    report = decode_asb(encode_asb(state))
    assert report.status == state and report.flags[flag]
    assert decode_asb_hex("23 86 00 00 00 00 00 00 00").status == "online"
    assert decode_asb_hex("23 86 08 00 00 0C 00 00 00").status == "paper_out"
    with pytest.raises(ValueError):
        decode_asb_hex("zz")


async def test_tcp_port_asks_a_star_printer_with_esc_ack_soh() -> None:
    """The port asks a Star printer ESC ACK SOH (not DLE EOT, which it ignores) and
    reads its ASB answer: paper out and cover open come through as such."""
    async with SimulatedPrinter("Star", language="star_raster") as printer:
        port = TcpPrinterPort("127.0.0.1", printer.port)
        port.status_dialect = "star"
        try:
            report = await asyncio.to_thread(port.query_status)
            assert report is not None and report.status == "online"
            await printer.set_state("paper_out")
            report = await asyncio.to_thread(port.query_status)
            assert report is not None and report.status == "paper_out"
            await printer.set_state("cover_open")
            report = await asyncio.to_thread(port.query_status)
            assert report is not None and report.status == "cover_open"
        finally:
            port.close()


def _png(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


async def test_job_to_a_star_raster_printer_completes_and_prints_the_ticket(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """job -> hub -> agent -> simulated TSP143 in star_raster -> completed; the
    printer holds one cut raster page as wide as the paper, and its status is
    Star's (paper out shows as paper_out on the printer record)."""
    async with SimulatedPrinter("Star-1", language="star_raster") as printer:
        agent: Agent = await make_agent(
            [f"Star-1=tcp://127.0.0.1:{printer.port}?language=star_raster"]
        )

        async def online() -> dict | None:
            ack = await ops.call("printers:list", {})
            found = [p for p in ack["printers"] if p["name"] == "Star-1"]
            return found[0] if found and found[0]["status"] == "online" else None

        record = await eventually(online, what="star printer online")
        assert record["capabilities"]["language"] == "star_raster"
        ack = await ops.call(
            "job:submit",
            {
                "printer_id": record["id"],
                "document": {
                    "blocks": [
                        {"type": "text", "text": "TABLE 7", "bold": True},
                        {"type": "image", "png_base64": _png(_drawn())},
                    ]
                },
            },
        )
        assert ack["ok"], ack

        async def done() -> dict | None:
            job = (await ops.call("job:get", {"job_id": ack["job"]["id"]}))["job"]
            return job if job["status"] in ("completed", "failed") else None

        job = await eventually(done, what="job finished")
        assert job["status"] == "completed", job
        receipts = await printer.wait_for_receipts(1)
        assert receipts[0].cut and len(receipts[0].images) == 1
        assert receipts[0].images[0].width == 576
        assert printer.status_queries >= 2  # before and after the ticket, ESC ACK SOH

        await printer.set_state("paper_out")

        async def paper_out() -> dict | None:
            ack = await ops.call("printers:list", {})
            found = [p for p in ack["printers"] if p["name"] == "Star-1"]
            return found[0] if found and found[0]["status"] == "paper_out" else None

        assert (await eventually(paper_out, what="paper out shown"))["flags"]["paper_end"]
        assert agent is not None


async def test_job_to_a_star_line_printer_prints_text_in_star_code_pages(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A Star printer in Star Line mode (its USB id said CMD:STAR): the ticket arrives
    as text the simulated printer decodes back (accents, euro, Cyrillic), bold in
    Star's ESC E / ESC F, and cut with ESC d."""
    async with SimulatedPrinter("Star-L", language="star_line") as printer:
        await make_agent([f"Star-L=tcp://127.0.0.1:{printer.port}?language=star_line"])

        async def online() -> dict | None:
            ack = await ops.call("printers:list", {})
            found = [p for p in ack["printers"] if p["name"] == "Star-L"]
            return found[0] if found and found[0]["status"] == "online" else None

        record = await eventually(online, what="star line printer online")
        ack = await ops.call(
            "job:submit",
            {
                "printer_id": record["id"],
                "document": {
                    "blocks": [
                        {"type": "text", "text": "Crème brûlée 4,50 €", "bold": True},
                        {"type": "text", "text": "Борщ"},
                    ]
                },
            },
        )
        assert ack["ok"], ack
        receipts = await printer.wait_for_receipts(1)
        assert receipts[0].text.splitlines() == ["Crème brûlée 4,50 €", "Борщ"]
        assert receipts[0].cut and b"\x1bE" in receipts[0].raw
        test = await ops.call("printer:test", {"printer_id": record["id"]})
        assert test["ok"], test
        receipts = await printer.wait_for_receipts(2)
        assert receipts[1].text.startswith("PRINTERMASTER TEST PAGE")
        assert "Language: star_line" in receipts[1].text


def test_star_line_draws_consecutive_pictures_as_one_raster_block() -> None:
    """Lines no Star code page holds and a QR code next to each other go out as one
    raster block (one image, not one per line); text around them stays text."""
    doc = validate_document(
        {
            "blocks": [
                {"type": "text", "text": "TABLE 3"},
                {"type": "text", "text": "拉面"},
                {"type": "text", "text": "ラーメン"},
                {"type": "qr", "data": "https://example.test/o/3"},
                {"type": "text", "text": "Thanks"},
            ]
        }
    )
    events = decode_star(star_line_ticket(doc["blocks"], columns=48, dots=576))
    kinds = [type(e).__name__ for e in events if type(e).__name__ in ("Text", "RasterImage")]
    assert kinds == ["Text", "RasterImage", "Text"]


def test_a_pdf_ticket_prints_on_a_star_raster_printer() -> None:
    """A document of one PDF block (no text) is a ticket, not a drawer-only job: it
    goes out as a raster page as wide as the paper, cut."""
    page = Image.new("L", (300, 400), 255)
    ImageDraw.Draw(page).rectangle((20, 20, 280, 120), fill=0)
    pdf = io.BytesIO()
    page.save(pdf, format="PDF")
    doc = {"blocks": [{"type": "pdf", "pdf_base64": base64.b64encode(pdf.getvalue()).decode()}]}
    events = decode_star(render_for_language(doc, language="star_raster", dots=576))
    pages = [e for e in events if isinstance(e, RasterImage)]
    assert len(pages) == 1 and pages[0].width == 576 and pages[0].height > 300
    assert type(events[-1]).__name__ == "Cut"
