"""Each printer connection on its own: a network printer that stopped accepting is
reconnected, a job whose connection broke once its bytes went out is never sent
again (it ends failed, outcome unknown), a connection that died while idle is
reconnected before anything is sent, and a printer that hangs never holds up
another one. Real hub, real agent, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pm_agent.render import render_document
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.tcp_port import TcpPrinterPort
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually, receipt_doc


async def printer_row(ops: OpsClient, name: str, **match: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        ack = await ops.call("printers:list", {})
        for row in ack["printers"]:
            if row["name"] == name and all(row.get(k) == v for k, v in match.items()):
                return row
        return None

    return await eventually(find, what=f"printer {name} {match}")


async def submit(ops: OpsClient, printer_id: int, marker: str) -> int:
    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc(marker)})
    assert ack["ok"], ack
    return int(ack["job"]["id"])


async def completed(ops: OpsClient, job_id: int, timeout: float = 10) -> dict[str, Any]:
    return await ops.wait_for(
        "job:update", lambda j: j["id"] == job_id and j["status"] == "completed", timeout=timeout
    )


JOB_START = b"\x1b@"  # ESC @: every rendered job begins with it
STATUS_QUERY = b"\x10\x04"  # DLE EOT: the status barrier the agent sends after a job


class CuttingProxy:
    """A TCP proxy in front of a printer that breaks the first connection carrying a
    job: ``where="mid-job"`` after forwarding part of the chunk that starts it (a
    cable pulled mid-print), ``where="after-job"`` right after every byte of the
    job passed, before the status question that would confirm it."""

    def __init__(self, target_port: int, *, where: str = "mid-job") -> None:
        assert where in ("mid-job", "after-job")
        self.target_port = target_port
        self.where = where
        self.cuts_left = 1
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def downstream() -> None:
            while data := await up_reader.read(4096):
                writer.write(data)
                await writer.drain()

        back = asyncio.create_task(downstream())
        self._tasks.add(back)
        in_job = False
        try:
            while data := await reader.read(4096):
                if self.cuts_left and not in_job and JOB_START in data:
                    if self.where == "mid-job":
                        self.cuts_left -= 1
                        up_writer.write(data[: len(data) // 2])
                        await up_writer.drain()
                        writer.transport.abort()  # the agent sees a reset mid-job
                        break
                    in_job = True
                    start = data.index(JOB_START)
                    up_writer.write(data[:start])
                    data = data[start:]
                if in_job and STATUS_QUERY in data:
                    # The whole job went through: cut before the printer can confirm it.
                    self.cuts_left -= 1
                    up_writer.write(data[: data.index(STATUS_QUERY)])
                    await up_writer.drain()
                    writer.transport.abort()
                    break
                up_writer.write(data)
                await up_writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            back.cancel()
            up_writer.close()
            with contextlib.suppress(Exception):
                writer.close()


class HungPrinter:
    """Accepts connections, then never answers and stops reading."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.transport.pause_reading()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()


@pytest.fixture
async def hung() -> AsyncIterator[HungPrinter]:
    printer = HungPrinter()
    await printer.start()
    yield printer
    await printer.stop()


async def test_printer_that_stopped_accepting_is_reconnected(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Switched off with a job waiting: the job prints once the printer is back."""
    async with SimulatedPrinter("Fryer", serial="FRY-1") as sim:
        await make_agent([f"Fryer={sim.address}"], name="reconnect")
        row = await printer_row(ops, "Fryer", status="online")
        await sim.set_state("offline")
        await printer_row(ops, "Fryer", status="offline")
        job_id = await submit(ops, row["id"], "while-off")
        await asyncio.sleep(0.5)
        assert sim.receipts == []
        await sim.set_state("online")
        await completed(ops, job_id)
        receipts = await sim.wait_for_receipts(1)
        assert "ticket while-off" in receipts[0].text and receipts[0].cut


async def final(ops: OpsClient, job_id: int, timeout: float = 10) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await ops.call("job:get", {"job_id": job_id}))["job"]
        return job if job["status"] in ("completed", "failed", "cancelled", "expired") else None

    return dict(await eventually(done, timeout=timeout, what=f"job {job_id} finished"))


def copies_of(sim: SimulatedPrinter, marker: str) -> list[bool]:
    """Each receipt (torn or whole) that carries ``marker``: whether it was cut."""
    return [r.cut for r in sim.receipts if f"ticket {marker}" in r.text]


async def assert_not_resent(
    ops: OpsClient, sim: SimulatedPrinter, printer_id: int, job_id: int, marker: str
) -> dict[str, Any]:
    """The broken job ended failed, outcome unknown, with a reason staff can act on;
    the printer works again (the next job prints) and the broken one was not resent."""
    job = await final(ops, job_id)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "outcome_unknown", job
    assert "reprint if needed" in job["error"]["message"], job
    after = await submit(ops, printer_id, "after-break")
    assert (await final(ops, after))["status"] == "completed"
    await asyncio.sleep(0.3)  # a resend, if any, would have come out by now
    assert len(copies_of(sim, marker)) <= 1, sim.receipts
    assert copies_of(sim, "after-break") == [True]
    alerts = (await ops.call("alerts:list", {}))["alerts"]
    assert any(
        a["kind"] == "job_failed" and (a.get("details") or {}).get("job_id") == job_id
        for a in alerts
    ), alerts
    return job


async def test_connection_broken_mid_job_is_not_resent(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Half a ticket reached the printer, then the link broke: the torn ticket is all
    there is; the job ends failed with "outcome unknown", not printed a second time."""
    async with SimulatedPrinter("Grill", serial="GRL-1") as sim:
        proxy = CuttingProxy(sim.port, where="mid-job")
        await proxy.start()
        try:
            agent = await make_agent([f"Grill=tcp://127.0.0.1:{proxy.port}"], name="cut")
            row = await printer_row(ops, "Grill", status="online")
            job_id = await submit(ops, row["id"], "mid-cut")
            await assert_not_resent(ops, sim, row["id"], job_id, "mid-cut")
            assert proxy.cuts_left == 0
            worker = agent.workers[0]
            assert all(not t.done() for t in worker._tasks)  # nothing crashed
        finally:
            await proxy.stop()


@pytest.mark.parametrize("scheme", ["tcp", "serial"])
async def test_job_sent_then_link_cut_prints_once_and_says_outcome_unknown(
    ops: OpsClient, make_agent: AgentFactory, scheme: str
) -> None:
    """Every byte of the ticket reached the printer (it printed), then the link broke
    before the printer could confirm: one receipt, and the job says what happened.
    Over TCP, and over a serial line (pyserial's socket:// through the same proxy)."""
    async with SimulatedPrinter("Wok", serial=f"WOK-{scheme}") as sim:
        proxy = CuttingProxy(sim.port, where="after-job")
        await proxy.start()
        try:
            uri = f"{scheme}://127.0.0.1:{proxy.port}"
            if scheme == "serial":
                uri = f"serial://socket://127.0.0.1:{proxy.port}"
            await make_agent([f"Wok={uri}"], name=f"after-{scheme}")
            row = await printer_row(ops, "Wok", status="online")
            job_id = await submit(ops, row["id"], "sent-then-cut")
            job = await assert_not_resent(ops, sim, row["id"], job_id, "sent-then-cut")
            assert proxy.cuts_left == 0
            assert copies_of(sim, "sent-then-cut") == [True]  # it did print, once
            assert "broke after the ticket was sent" in job["error"]["message"]
        finally:
            await proxy.stop()


async def test_usb_printer_unplugged_after_the_ticket_prints_it_once(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A USB printer that takes the whole ticket and is unplugged before it confirms:
    one receipt, the job ends failed (outcome unknown), not resent once plugged back."""
    from pm_agent.usb_port import UsbPrinterPort
    from tests.support.fake_usb import FakeBackend, FakeUsbDevice

    async with SimulatedPrinter("Till", serial="TILL-1") as sim:
        device = FakeUsbDevice(0x04B8, 0x0E15, far_side=("127.0.0.1", sim.port))

        def unplug_after_the_ticket(raw: bytes) -> None:
            if b"ticket usb-unplugged" in raw:
                device.unplug()

        device.after_write = unplug_after_the_ticket
        uri = "usb://04b8:0e15"
        port = UsbPrinterPort(0x04B8, 0x0E15, backend=FakeBackend(device))
        await make_agent([f"Till={uri}"], name="usb-unplug", ports={uri: port})
        row = await printer_row(ops, "Till", status="online")
        job_id = await submit(ops, row["id"], "usb-unplugged")
        job = await final(ops, job_id)
        assert (job["status"], job["error"]["code"]) == ("failed", "outcome_unknown"), job
        assert "broke after the ticket was sent" in job["error"]["message"]
        device.after_write = None
        device.plug()
        await assert_not_resent(ops, sim, row["id"], job_id, "usb-unplugged")
        assert copies_of(sim, "usb-unplugged") == [True]


async def test_idle_connection_closed_by_the_printer_is_reopened_before_sending() -> None:
    """The printer restarted while the kept-open connection sat idle: the next job
    goes out on a new connection and prints, instead of into the dead one (where it
    would be lost and, now, reported as outcome unknown)."""
    async with SimulatedPrinter("Salad", serial="SAL-1") as sim:
        port = TcpPrinterPort("127.0.0.1", sim.port)
        try:
            assert await asyncio.to_thread(port.query_status) is not None
            await sim.set_state("offline")  # switched off and on: its connections drop
            await sim.set_state("online")
            await asyncio.sleep(0.05)
            doc = {"blocks": [{"type": "text", "text": "ticket after-restart"}, {"type": "cut"}]}
            report = await asyncio.to_thread(port.write, render_document(doc), 5.0)
            assert report is not None and report.status == "online"
            assert copies_of(sim, "after-restart") == [True]
        finally:
            await asyncio.to_thread(port.close)


async def test_a_hung_printer_never_blocks_another(
    ops: OpsClient, make_agent: AgentFactory, hung: HungPrinter
) -> None:
    async with SimulatedPrinter("Bar", serial="BAR-1") as sim:
        agent = await make_agent(
            [f"Hung=tcp://127.0.0.1:{hung.port}", f"Bar={sim.address}"],
            name="hung",
            identify_wait=0.5,
        )
        bar = await printer_row(ops, "Bar", status="online")
        for i in range(3):
            started = time.monotonic()
            job_id = await submit(ops, bar["id"], f"bar-{i}")
            await completed(ops, job_id, timeout=3)
            assert time.monotonic() - started < 1.5
        stuck = await printer_row(ops, "Hung", status_supported=False)
        assert stuck["status"] == "unknown" and hung.connections >= 1
        assert len(sim.receipts) == 3
        assert agent.workers[0].status == "unknown"
