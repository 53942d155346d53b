"""What the agent answers to each event a hub sends on ``/agent``, against a stand-in
hub (a bare python-socketio server on 127.0.0.1) that can send anything: bad input
gets an error ack and changes nothing, a ``print:job`` is read with the floor's
``read_print_job``, spooled before its ack and printed once, and a second delivery of
a finished job is answered with its ``print:job:result``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import web

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.printer import SimulatedPrinter
from pm_core.protocol.correlation_ids import job_correlation_id
from tests.support.helpers import eventually, receipt_doc

PRINTER_ID = 7


class StandInHub:
    """Accepts one agent on ``/agent``, gives its printer id 7, acks whatever it sends
    (keeping it in ``received``) and sends it whatever a test asks."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncServer(async_mode="aiohttp", logger=False)
        self.app = web.Application()
        self.sio.attach(self.app)
        self.sid: str | None = None
        self.received: list[tuple[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.sio.on("connect", self._connect, namespace="/agent")
        self.sio.on("*", self._any, namespace="/agent")

    async def _connect(self, sid: str, environ: Any, auth: Any) -> None:
        self.sid = sid

    async def _any(self, event: str, sid: str, data: Any = None) -> dict[str, Any]:
        self.received.append((event, data))
        if event == "printer:discovered":
            return {"ok": True, "printer_id": PRINTER_ID}
        return {"ok": True}

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def send(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, to=self.sid, namespace="/agent", timeout=5)


Running = tuple[StandInHub, Agent, SimulatedPrinter]


@pytest.fixture
async def hub_and_agent(
    tmp_path: Path,
) -> AsyncIterator[tuple[StandInHub, Agent, SimulatedPrinter]]:
    hub = StandInHub()
    await hub.start()
    async with SimulatedPrinter("Grill") as printer:
        agent = Agent(
            hub_url=hub.url,
            license_key="stand-in",
            data_dir=tmp_path / "agent",
            printers=[parse_printer_spec(f"Grill={printer.address}")],
            poll_interval=0.2,
            spool_synchronous="NORMAL",
        )
        await agent.start()
        try:
            await eventually(lambda: PRINTER_ID in agent.by_printer_id, what="printer registered")
            yield hub, agent, printer
        finally:
            await agent.stop()
            await hub.stop()


def print_job(job_id: int, printer_id: int = PRINTER_ID, **fields: Any) -> dict[str, Any]:
    job = {
        "id": job_id,
        "printer_id": printer_id,
        "document": receipt_doc(f"J{job_id}"),
        "copies": 1,
        "created_at": 1.0,
        "expires_at": None,
        "header": None,
    }
    job.update(fields)
    return {"correlation_id": job_correlation_id(job_id, 1.0), "job": job}


BAD_INPUT = [
    ("print:job", None, "invalid_payload", "job is required"),
    ("print:job", {"job": {"id": "1", "printer_id": PRINTER_ID}}, "invalid_payload", "job.id"),
    ("print:job", print_job(1, document=None), "invalid_payload", "job.document"),
    ("print:job", print_job(1, copies=0), "invalid_payload", "job.copies"),
    ("print:job", print_job(1, created_at="now"), "invalid_payload", "job.created_at"),
    ("print:job", print_job(1, printer_id=99), "not_found", "no printer 99"),
    ("job:cancel", {"job_id": "1"}, "invalid_payload", "job_id is required"),
    ("job:release", [], "invalid_payload", "job_id is required"),
    ("printer:test", {"printer_id": PRINTER_ID}, "invalid_payload", "correlation_id"),
    ("printer:test", {"correlation_id": "t", "printer_id": 99}, "not_found", "no such printer"),
    ("printer:configure", {"printer_id": PRINTER_ID, "profile": 5}, "invalid_payload", "profile"),
    ("printer:configure", {"printer_id": 99, "profile": None}, "not_found", "no such printer"),
]


async def test_bad_input_from_the_hub_gets_an_error_ack_and_changes_nothing(
    hub_and_agent: Running,
) -> None:
    hub, agent, printer = hub_and_agent
    for event, data, code, message in BAD_INPUT:
        ack = await hub.send(event, data)
        assert ack["ok"] is False, (event, data, ack)
        assert ack["error"]["code"] == code and message in ack["error"]["message"], (event, ack)
    assert await agent.spool.get(1) is None
    assert await agent.spool.pending_counts() == {}
    assert printer.receipts == []


async def test_a_job_is_spooled_printed_once_and_a_redelivery_gets_its_result(
    hub_and_agent: Running,
) -> None:
    hub, _, printer = hub_and_agent
    ack = await hub.send("print:job", print_job(3))
    assert ack == {"ok": True, "status": "dispatched"}
    await printer.wait_for_receipts(1)

    async def result() -> Any:
        return next((d for e, d in hub.received if e == "print:job:result"), None)

    outcome = dict(await eventually(result, what="print:job:result"))
    # What the printer was sent, read back from the bytes (the dashboard shows it).
    sent = outcome.pop("sent_preview")
    assert sent["language"] == "escpos" and "TABLE 12" in sent["lines"], sent
    assert outcome == {
        "job_id": 3,
        "ok": True,
        "status": "completed",
        "attempts": 1,
        "correlation_id": job_correlation_id(3, 1.0),
    }
    again = await hub.send("print:job", print_job(3))
    assert again == {**outcome, "ok": True}
    cancel = await hub.send("job:cancel", {"job_id": 3})
    assert cancel == {"ok": True, "cancelled": False, "status": "completed"}
    assert len(printer.receipts) == 1
