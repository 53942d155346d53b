"""What the printer was sent, as the dashboard's job detail reads it (``job:get``'s
``sent_preview``): made by the agent from the bytes it wrote, never from the document;
a hostile preview from an agent is dropped and the job still completes."""

from __future__ import annotations

from typing import Any

import pytest

from pm_agent.sim.printer import SimulatedPrinter
from pm_core.sent_preview import MAX_PREVIEW_BYTES, QUADRANTS
from pm_hub.server import RunningHub
from tests.agent.test_printer_identity import wait_row
from tests.conftest import AgentFactory
from tests.support.fonts import need_fonts
from tests.support.helpers import OpsClient, eventually
from tests.support.raw_agent import RawAgent

ARABIC = "شاورما دجاج كبيرة"  # CP864 lacks some joined forms of كبيرة: drawn
TICKET = {"blocks": [{"type": "text", "text": "TABLE 4"}]}
LATIN = ["Crème brûlée 4,50 €", "Café déjà vu, Ñandú", "Größe: ÀÉÎÕÜ"]


async def finished_job(ops: OpsClient, job_id: int) -> dict[str, Any]:
    """``job:get`` with the document, once the job reached a final status."""

    async def check() -> dict[str, Any] | None:
        ack = await ops.call("job:get", {"job_id": job_id, "document": True})
        job: dict[str, Any] = ack["job"]
        return job if job["status"] in ("completed", "failed") else None

    result: dict[str, Any] = await eventually(check, what=f"job {job_id} finished")
    return result


async def print_on(
    ops: OpsClient, make_agent: AgentFactory, sim: SimulatedPrinter, serial: str, doc: Any
) -> dict[str, Any]:
    await make_agent([f"{sim.name}={sim.address}"], name=f"sent-{serial}")
    row = await wait_row(ops, "registered", identity=f"serial:{serial}", status="online")
    ack = await ops.call("job:submit", {"printer_id": row["id"], "document": doc})
    assert ack["ok"], ack
    return await finished_job(ops, ack["job"]["id"])


async def test_an_arabic_ticket_shows_the_image_the_printer_got_not_the_text(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Tried and failed: the preview, made from the document, showed Arabic rightly
    while the printer got something else. On a profile whose code pages lack the joined
    forms the line is drawn: the job's sent view shows an image, not the Arabic text."""
    need_fonts("arabic")
    doc = {
        "blocks": [
            {"type": "text", "text": "TABLE 4"},
            {"type": "text", "text": ARABIC},
            {"type": "cut"},
        ]
    }
    async with SimulatedPrinter("Grill", serial="SENT-AR") as sim:
        job = await print_on(ops, make_agent, sim, "SENT-AR", doc)
        receipt = (await sim.wait_for_receipts(1))[0]
    assert job["status"] == "completed", job
    preview = job["sent_preview"]
    lines = preview["lines"]
    assert lines[0] == "TABLE 4"
    assert lines[1] == "[image 504x32 dots]"
    thumbnail = [line for line in lines[2:] if line and set(line) <= set(QUADRANTS)]
    assert thumbnail and all(len(line) <= 40 for line in thumbnail)
    assert any(set(line) - {" "} for line in thumbnail)  # ink, not a blank block
    assert not any(ch in "\n".join(lines) for ch in ARABIC.replace(" ", ""))
    assert lines[-1].strip("-") == " cut "
    assert preview["bytes"] == len(receipt.raw) and preview["language"] == "escpos"
    assert job["document"]["blocks"][1]["text"] == ARABIC  # the document stays the document


async def test_latin_text_lines_are_what_the_simulated_printer_decoded(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    doc = {"blocks": [*({"type": "text", "text": t} for t in LATIN), {"type": "cut"}]}
    async with SimulatedPrinter("Bar", serial="SENT-LA", model="TM-T88V") as sim:
        job = await print_on(ops, make_agent, sim, "SENT-LA", doc)
        receipt = (await sim.wait_for_receipts(1))[0]
    assert job["status"] == "completed", job
    lines = job["sent_preview"]["lines"]
    assert lines[:-1] == receipt.text.splitlines() == LATIN
    assert lines[-1].strip("-") == " cut "


def _preview(**changes: Any) -> dict[str, Any]:
    return {"lines": ["TABLE 4"], "bytes": 10, "language": "escpos", **changes}


@pytest.mark.parametrize(
    ("preview", "why"),
    [
        (_preview(lines=["x" * 150] * 150), f"more than {MAX_PREVIEW_BYTES}"),
        (_preview(lines=["ok"] * 201), "at most 200 lines"),
        (_preview(lines=["\x1b[2J clear the screen"]), "control characters"),
        (_preview(lines="TABLE 4"), "must be a list"),
        (_preview(lines=[{"a": 1}]), "must hold strings"),
        (_preview(bytes=-1), "bytes must be a whole number"),
        (_preview(extra=1), "unknown key 'extra'"),
        ("a string", "must be an object"),
    ],
)
async def test_a_hostile_sent_preview_is_dropped_and_the_job_still_completes(
    hub: RunningHub, ops: OpsClient, preview: Any, why: str
) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "box").connect()
    try:
        printer_id = (await agent.register("serial:HOSTILE"))["printer_id"]
        ack = await ops.call("job:submit", {"printer_id": printer_id, "document": TICKET})
        job_id = ack["job"]["id"]
        await eventually(lambda: [j for j in agent.jobs if j["job"]["id"] == job_id])
        answer = await agent.call(
            "print:job:result",
            {"job_id": job_id, "ok": True, "status": "completed", "attempts": 1,
             "sent_preview": preview},
        )  # fmt: skip
        assert answer["ok"] is True, answer
        assert why in answer["sent_preview_refused"]
        job = await finished_job(ops, job_id)
        assert job["status"] == "completed" and "sent_preview" not in job
        # A good one from the same agent is kept.
        ack = await ops.call("job:submit", {"printer_id": printer_id, "document": TICKET})
        good_id = ack["job"]["id"]
        await eventually(lambda: [j for j in agent.jobs if j["job"]["id"] == good_id])
        answer = await agent.call(
            "print:job:result",
            {"job_id": good_id, "ok": True, "status": "completed", "attempts": 1,
             "sent_preview": _preview()},
        )  # fmt: skip
        assert answer == {"ok": True}
        assert (await finished_job(ops, good_id))["sent_preview"] == _preview()
    finally:
        await agent.close()
