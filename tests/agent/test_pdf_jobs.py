"""PDF tickets through the agent: pages drawn in a child process with a time limit,
so a PDF that takes too long fails alone and the printer goes on printing."""

from __future__ import annotations

import base64
import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pm_agent.sim.printer import SimulatedPrinter
from pm_core import pdf_raster
from tests.agent.test_text_scripts import printing_to
from tests.support.helpers import eventually


def pdf_document() -> dict[str, object]:
    out = io.BytesIO()
    img = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(img).rectangle((0, 0, 149, 199), fill="black")
    img.save(out, "PDF")
    return {"blocks": [{"type": "pdf", "pdf_base64": base64.b64encode(out.getvalue()).decode()}]}


def outcome(tmp_path: Path, job_id: int) -> tuple[str, str | None, str | None] | None:
    with sqlite3.connect(tmp_path / "spool.sqlite") as conn:
        row = conn.execute(
            "SELECT state, error_code, error_message FROM spool_jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    return (row[0], row[1], row[2]) if row and row[0] in ("completed", "failed") else None


async def test_a_pdf_too_slow_to_render_fails_and_the_next_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PDF that pdfium does not draw within the limit ends failed with render_error
    "PDF took too long to render" (its renderer killed); the printer's next PDF job is
    drawn by a new renderer and printed."""
    printer = SimulatedPrinter("Pass")
    async with printing_to(tmp_path, printer) as (worker, spool):
        monkeypatch.setattr(pdf_raster, "PDF_RENDER_LIMIT_S", 0.0)  # nothing draws in time
        await spool.accept({"id": 1, "printer_id": 1, "document": pdf_document()})
        worker.wake()
        state, code, message = await eventually(lambda: outcome(tmp_path, 1), what="job 1 ended")
        assert (state, code) == ("failed", "render_error")
        assert message is not None and "PDF took too long to render" in message
        assert printer.receipts == []

        monkeypatch.undo()
        await spool.accept({"id": 2, "printer_id": 1, "document": pdf_document()})
        worker.wake()
        ended = await eventually(lambda: outcome(tmp_path, 2), timeout=30, what="job 2 ended")
        assert ended[0] == "completed", ended
        receipts = await printer.wait_for_receipts(1)
        assert receipts[0].text.startswith("[IMAGE ")
