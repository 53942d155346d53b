"""Printer commands only where they belong (issue 12, finding 7): a cut or drawer kick
hidden in ticket text is refused before anything reaches the printer (the finding: an
injected cut split one ticket into two receipts); raw ESC/POS goes only through a
``raw_base64`` document, from a manager or an admin."""

from __future__ import annotations

import asyncio
import base64

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import OpsEvent
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually, receipt_doc


async def test_a_cut_hidden_in_ticket_text_never_reaches_the_printer(
    hub: RunningHub, ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    kitchen = fleet.printers[0]
    await eventually(lambda: len(hub.hub.printers) == 2, what="printers registered")
    printer_id = next(p["id"] for p in hub.hub.printers.values() if p["name"] == kitchen.name)
    injected = {"blocks": [{"type": "text", "text": "2x Burger\x1dV\x00TABLE 9: 1x Steak"}]}
    answer = await ops.call(OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": injected})
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_payload"
    assert "blocks[0].text has control characters (\\x1d, \\x00)" in answer["error"]["message"]
    ok = await ops.call(
        OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("T7")}
    )
    assert ok["ok"], ok
    await eventually(lambda: kitchen.receipts, what="the clean ticket printed")
    await asyncio.sleep(0.5)
    assert len(kitchen.receipts) == 1 and "Steak" not in kitchen.receipts[0].text


async def test_raw_escpos_only_from_a_manager(
    hub: RunningHub, ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    assert hub.hub.tokens is not None
    kitchen = fleet.printers[0]
    await eventually(lambda: len(hub.hub.printers) == 2, what="printers registered")
    printer_id = next(p["id"] for p in hub.hub.printers.values() if p["name"] == kitchen.name)
    raw = {"raw_base64": base64.b64encode(b"\x1b@RAW TICKET\n\x1dV\x00").decode()}
    operator = await OpsClient(
        hub.url, hub.hub.tokens.create(role="operator", branch_ids=[1])
    ).connect()
    manager = await OpsClient(
        hub.url, hub.hub.tokens.create(role="manager", branch_ids=[1])
    ).connect()
    try:
        refused = await operator.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": raw}
        )
        assert refused["error"]["code"] == "forbidden"
        accepted = await manager.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": raw}
        )
        assert accepted["ok"], accepted
        await eventually(
            lambda: any("RAW TICKET" in r.text for r in kitchen.receipts), what="raw printed"
        )
    finally:
        await operator.close()
        await manager.close()
