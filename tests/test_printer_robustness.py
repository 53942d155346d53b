"""Each printer connection on its own: a network printer that stopped accepting is
reconnected, a connection broken in the middle of a job is a retry, and a printer
that hangs never holds up another one. Real hub, real agent, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pm_agent.sim import SimulatedPrinter
from tests.conftest import AgentFactory
from tests.helpers import OpsClient, eventually, receipt_doc


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


class CuttingProxy:
    """A TCP proxy in front of a printer that breaks the first connection carrying a
    job after forwarding part of it (like a cable pulled mid-print)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
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
        try:
            while data := await reader.read(4096):
                if self.cuts_left and b"\x1b@" in data:
                    self.cuts_left -= 1
                    up_writer.write(data[: len(data) // 2])
                    await up_writer.drain()
                    writer.transport.abort()  # the agent sees a reset mid-job
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


async def test_connection_broken_mid_job_is_a_retry(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    async with SimulatedPrinter("Grill", serial="GRL-1") as sim:
        proxy = CuttingProxy(sim.port)
        await proxy.start()
        try:
            agent = await make_agent([f"Grill=tcp://127.0.0.1:{proxy.port}"], name="cut")
            row = await printer_row(ops, "Grill", status="online")
            job_id = await submit(ops, row["id"], "after-cut")
            await completed(ops, job_id)
            assert proxy.cuts_left == 0
            full = [r for r in sim.receipts if r.cut and "ticket after-cut" in r.text]
            assert len(full) == 1
            worker = agent.workers[0]
            assert all(not t.done() for t in worker._tasks)  # nothing crashed
            second = await submit(ops, row["id"], "next")
            await completed(ops, second)
        finally:
            await proxy.stop()


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
