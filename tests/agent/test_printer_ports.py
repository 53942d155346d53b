"""USB and serial printers, and true status on every kind of connection.

USB goes through real pyusb on a fake backend (tests/fake_usb.py) whose device is
wired to a simulated printer; serial goes through a pseudo-terminal pair or
pyserial's socket:// URL with the simulated printer on the far side."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent.discovery import DiscoveryConfig
from pm_agent.discovery.serial_ports import SerialSource
from pm_agent.discovery.usb import UsbSource, parse_1284_id
from pm_agent.escpos_status import DLE_EOT, STATUSES
from pm_agent.open_port import open_port
from pm_agent.printer_identity import read_identity
from pm_agent.printer_port import PrinterPort, PrinterUnreachable
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.printer_worker import PrinterWorker
from pm_agent.render import render_document
from pm_agent.serial_port import SerialPrinterPort
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.spool import JobSpool
from pm_agent.tcp_port import TcpPrinterPort
from pm_agent.usb_port import UsbPrinterPort
from tests.conftest import AgentFactory
from tests.support.fake_usb import FakeBackend, FakeUsbDevice
from tests.support.helpers import AnonymousPrinter, OpsClient, eventually, receipt_doc
from tests.support.serial_bridge import PtyPrinterBridge

EXPECTED_FLAGS = {
    "online": set(),
    "offline": {"offline"},
    "paper_low": {"paper_near_end"},
    "paper_out": {"offline", "paper_end", "paper_near_end"},
    "cover_open": {"offline", "cover_open"},
    "error": {"offline", "cutter_error"},
}


def ticket(text: str) -> bytes:
    return render_document({"blocks": [{"type": "text", "text": text}, {"type": "cut"}]})


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedPrinter]:
    async with SimulatedPrinter("Far side", serial="FAR-42", model="TM-T20II") as printer:
        yield printer


@pytest.fixture
def bridge(sim: SimulatedPrinter) -> Iterator[PtyPrinterBridge]:
    pty = PtyPrinterBridge(sim.port, baudrate=19200)
    yield pty
    pty.close()


def epson(sim: SimulatedPrinter, **kw: Any) -> FakeUsbDevice:
    """An Epson TM on USB: vendor-specific interface, usblp bound, wired to ``sim``."""
    values: dict[str, Any] = {
        "interface_class": 0xFF,
        "manufacturer": "EPSON",
        "product": "TM-T20II",
        "serial_number": "X4HT012345",
        "kernel_driver": True,
        "far_side": ("127.0.0.1", sim.port),
    }
    values.update(kw)
    return FakeUsbDevice(0x04B8, 0x0E15, **values)


PortFactory = Callable[[SimulatedPrinter], PrinterPort]


def tcp_port(sim: SimulatedPrinter) -> PrinterPort:
    return TcpPrinterPort("127.0.0.1", sim.port)


def serial_socket_port(sim: SimulatedPrinter) -> PrinterPort:
    return open_port(parse_printer_spec(f"serial://socket://127.0.0.1:{sim.port}"))


def usb_port(sim: SimulatedPrinter) -> PrinterPort:
    return UsbPrinterPort(0x04B8, 0x0E15, backend=FakeBackend(epson(sim)))


KINDS = {"tcp": tcp_port, "serial": serial_socket_port, "usb": usb_port}


# -- status on every kind of connection ---------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_fault_of_the_printer_is_decoded(kind: str, sim: SimulatedPrinter) -> None:
    """Each state the simulator can show comes back as that status with its flags, over
    TCP, serial and USB alike; switched off, it is unreachable, and back when on again."""
    port = KINDS[kind](sim)
    try:
        for state in STATUSES:
            await sim.set_state(state)
            if state == "offline":  # the simulator is switched off
                with pytest.raises(PrinterUnreachable):
                    await asyncio.to_thread(port.query_status)
                continue
            report = await asyncio.to_thread(port.query_status)
            assert report is not None, state
            assert report.status == state
            assert {k for k, v in report.flags.items() if v} == EXPECTED_FLAGS[state], state
            assert report.can_print is (state in ("online", "paper_low"))
    finally:
        await asyncio.to_thread(port.close)


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_job_then_status_barrier_and_identity(kind: str, sim: SimulatedPrinter) -> None:
    port = KINDS[kind](sim)
    try:
        after = await asyncio.to_thread(port.write, ticket(f"via {kind}"), 5.0)
        assert after is not None and after.status == "online"
        assert sim.receipts[-1].text == f"via {kind}" and sim.receipts[-1].cut
        identity = await asyncio.to_thread(read_identity, port)
        assert (identity.serial, identity.model, identity.has_cutter) == (
            "FAR-42",
            "TM-T20II",
            True,
        )
        assert identity.key("tcp://x") == "serial:FAR-42"
    finally:
        await asyncio.to_thread(port.close)


async def test_tcp_printer_that_is_off_is_unreachable(sim: SimulatedPrinter) -> None:
    port = TcpPrinterPort("127.0.0.1", sim.port, connect_timeout=0.5)
    await sim.set_state("offline")
    with pytest.raises(PrinterUnreachable):
        await asyncio.to_thread(port.query_status)
    await sim.set_state("online")
    report = await asyncio.to_thread(port.query_status)  # reconnects by itself
    assert report is not None and report.status == "online"
    port.close()


@pytest.mark.parametrize("kind", ["tcp", "serial"])
async def test_printer_that_never_answers_status(kind: str) -> None:
    """No DLE EOT answer: status None (unsupported), and a job is not held up waiting
    for an answer that never comes."""
    async with SimulatedPrinter("Cheap", status_supported=False) as cheap:
        port = KINDS[kind](cheap)
        port.status_timeout = 0.3  # type: ignore[attr-defined]
        try:
            assert await asyncio.to_thread(port.query_status) is None
            started = time.monotonic()
            assert await asyncio.to_thread(port.write, ticket("no status"), 30.0) is None
            assert time.monotonic() - started < 2
            await cheap.wait_for_receipts(1, timeout=2)
        finally:
            await asyncio.to_thread(port.close)


# -- serial ----------------------------------------------------------------------------------


async def test_serial_printer_on_a_pty_prints_and_reports(bridge: PtyPrinterBridge) -> None:
    port = open_port(parse_printer_spec(f"serial://{bridge.path}?baudrate=19200"))
    try:
        assert isinstance(port, SerialPrinterPort) and port.baudrate == 19200
        report = await asyncio.to_thread(port.write, ticket("over the pty"), 5.0)
        assert report is not None and report.status == "online"
        assert bridge.garbled == 0
    finally:
        await asyncio.to_thread(port.close)


async def test_serial_discovery_finds_the_baud_rate(
    bridge: PtyPrinterBridge, sim: SimulatedPrinter
) -> None:
    """Probed at 9600 and 38400 first (noise), then found at 19200 with its serial."""
    source = SerialSource(
        ports=lambda: [bridge.path, "/dev/does-not-exist"],
        baudrates=(9600, 38400, 19200),
        timeout=0.3,
    )
    found = await source.discover()
    assert [(f.uri, f.identity, f.status) for f in found] == [
        (f"serial://{bridge.path}?baudrate=19200", "serial:FAR-42", "online")
    ]
    assert bridge.garbled > 0
    skipping = SerialSource(ports=lambda: [bridge.path], exclude=lambda: [bridge.path])
    assert await skipping.discover() == []


async def test_wrong_baud_rate_says_so(sim: SimulatedPrinter) -> None:
    pty = PtyPrinterBridge(sim.port, baudrate=19200, garble_out=False)
    port = SerialPrinterPort(pty.path, options={"baudrate": "9600"})
    try:
        with pytest.raises(PrinterUnreachable, match="wrong baud rate"):
            await asyncio.to_thread(port.query_status)
    finally:
        await asyncio.to_thread(port.close)
        pty.close()


async def test_missing_serial_port_says_what_to_check() -> None:
    port = open_port(parse_printer_spec("serial:///dev/ttyUSB-nothing-here?baudrate=9600"))
    with pytest.raises(PrinterUnreachable, match="does not exist: is the printer"):
        await asyncio.to_thread(port.query_status)


@pytest.mark.parametrize(
    "uri",
    ["serial:///dev/ttyS0?baudrate=fast", "serial://ftp://x", "tcp://h:9100?profile=TM-NOPE"],
)
def test_bad_serial_and_profile_options_are_refused(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_printer_spec(uri)


# -- USB -------------------------------------------------------------------------------------


async def test_usb_printer_detaches_usblp_and_gives_it_back(sim: SimulatedPrinter) -> None:
    device = epson(sim)
    port = UsbPrinterPort.from_spec(
        parse_printer_spec("usb://04b8:0e15?serial=X4HT012345"), backend=FakeBackend(device)
    )
    report = await asyncio.to_thread(port.write, ticket("over usb"), 5.0)
    assert report is not None and report.status == "online"
    assert device.detached == 1 and device.claimed == {0}
    await asyncio.to_thread(port.close)
    assert device.attached == 1 and device.claimed == set() and device.kernel_driver
    assert sim.receipts[-1].text == "over usb"


@pytest.mark.parametrize(
    ("device_kw", "message"),
    [
        ({"open_errno": errno.EACCES}, 'access denied: give .* ATTRS{idVendor}=="04b8"'),
        ({"claim_errno": errno.EBUSY, "kernel_driver": False}, "resource busy: .*CUPS"),
        ({"serial_number": "SOMEONE-ELSE"}, "no such USB device plugged in"),
    ],
)
async def test_usb_problems_say_what_to_do(
    sim: SimulatedPrinter, device_kw: dict[str, Any], message: str
) -> None:
    port = UsbPrinterPort.from_spec(
        parse_printer_spec("usb://04b8:0e15?serial=X4HT012345"),
        backend=FakeBackend(epson(sim, **device_kw)),
    )
    with pytest.raises(PrinterUnreachable, match=message):
        await asyncio.to_thread(port.query_status)


async def test_usb_printer_unplugged_mid_way_is_unreachable_then_back(
    sim: SimulatedPrinter,
) -> None:
    device = epson(sim)
    backend = FakeBackend(device)
    port = UsbPrinterPort(0x04B8, 0x0E15, backend=backend)
    assert await asyncio.to_thread(port.query_status) is not None
    device.unplug()
    with pytest.raises(PrinterUnreachable, match="unplugged"):
        await asyncio.to_thread(port.query_status)
    with pytest.raises(PrinterUnreachable, match="no such USB device"):
        await asyncio.to_thread(port.query_status)
    device.plug()
    report = await asyncio.to_thread(port.query_status)
    assert report is not None and report.status == "online"
    await asyncio.to_thread(port.close)


async def test_usb_discovery_lists_receipt_printers_only(sim: SimulatedPrinter) -> None:
    backend = FakeBackend(
        epson(sim, kernel_driver=False, ieee1284_id="MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;"),
        FakeUsbDevice(
            0x0416,
            0x5011,
            ieee1284_id="MANUFACTURER:Printer;COMMAND SET:ESC/POS;MODEL:POS58;",
            address=3,
        ),
        FakeUsbDevice(0x03F0, 0x2B17, product="LaserJet", address=4),  # HP, printer class
        FakeUsbDevice(0x1A2B, 0x0001, ieee1284_id="MFG:ACME;CMD:PCL,PJL;MDL:Office 1;", address=5),
        FakeUsbDevice(0x0483, 0x5740, interface_class=0x02, address=6),  # an ST serial gadget
        FakeUsbDevice(0x046D, 0xC31C, interface_class=0x03, address=7),  # a keyboard
    )
    found = await UsbSource(backend=backend).discover()
    assert [(f.uri, f.model, f.name) for f in found] == [
        ("usb://04b8:0e15?serial=X4HT012345", "TM-T20II", "EPSON TM-T20II"),
        ("usb://0416:5011", "POS58", "Printer POS58"),
    ]
    assert found[0].details["usb_vendor"] == "Epson"


def test_ieee1284_device_id_parsing() -> None:
    assert parse_1284_id(b"MFG:EPSON;CMD:ESC/POS;MDL:TM-T88V;CLS:PRINTER;") == {
        "MFG": "EPSON",
        "CMD": "ESC/POS",
        "MDL": "TM-T88V",
        "CLS": "PRINTER",
    }


async def test_usb_printer_reaches_the_hub_under_its_serial(
    sim: SimulatedPrinter, make_agent: AgentFactory, ops: OpsClient
) -> None:
    """A USB printer driven by a real agent: registered as serial:..., kind usb, with the
    capabilities of its model, and a job printed through it."""
    uri = "usb://04b8:0e15"
    port = UsbPrinterPort(0x04B8, 0x0E15, backend=FakeBackend(epson(sim)))
    await make_agent(["Till=usb://04b8:0e15#till"], name="usb", ports={uri: port})

    async def registered() -> dict[str, Any] | None:
        ack = await ops.call("printers:list", {})
        rows = [p for p in ack["printers"] if p["identity"] == "serial:FAR-42"]
        return rows[0] if rows and rows[0]["status"] == "online" else None

    row = await eventually(registered, what="USB printer online")
    assert (row["kind"], row["address"], row["model"], row["serial"]) == (
        "usb",
        uri,
        "TM-T20II",
        "FAR-42",
    )
    assert row["capabilities"]["profile"] == "TM-T20II" and row["capabilities"]["columns"] == 48
    ack = await ops.call(
        "job:submit",
        {"printer_id": row["id"], "document": {"blocks": [{"type": "line"}, {"type": "cut"}]}},
    )
    assert ack["ok"], ack
    receipts = await sim.wait_for_receipts(1)
    assert receipts[-1].text == "-" * 48  # laid out for the 80 mm paper of a TM-T20II


async def test_agent_adds_usb_printers_it_finds_but_not_twice(
    sim: SimulatedPrinter, make_agent: AgentFactory, ops: OpsClient
) -> None:
    """USB discovery in a running agent: a configured printer is not added again, a new
    one on the bus gets a worker and reaches the hub."""
    async with SimulatedPrinter("Second", serial="SEC-2", model="TM-T88V") as second:
        backend = FakeBackend(
            epson(sim),
            FakeUsbDevice(
                0x0519,
                0x0003,
                manufacturer="Star",
                product="TSP650",
                far_side=("127.0.0.1", second.port),
                address=2,
            ),
        )
        config = DiscoveryConfig(usb=True, usb_backend=backend)
        agent = await make_agent(["Till=usb://04b8:0e15#till"], name="usb-found", discovery=config)
        await eventually(lambda: len(agent.workers) == 2, what="found USB printer added")

        async def online(identity: str) -> dict[str, Any] | None:
            ack = await ops.call("printers:list", {})
            rows = [p for p in ack["printers"] if p["identity"] == identity]
            return rows[0] if rows and rows[0]["status"] == "online" else None

        await eventually(lambda: online("serial:FAR-42"), what="configured USB printer")
        star = await eventually(lambda: online("serial:SEC-2"), what="found USB printer")
        assert star["address"] == "usb://0519:0003" and star["name"] == "Star TSP650"
        assert agent.discovery is not None and agent.discovery.runs == 1
        assert len(agent.workers) == 2


async def test_found_usb_printer_gets_the_profile_of_the_model_its_1284_id_names(
    make_agent: AgentFactory, ops: OpsClient
) -> None:
    """A USB printer that does not answer GS I, but whose IEEE 1284 id says
    ``MDL:TM-T20II``: it gets the TM-T20II profile (48 columns), not the default 42."""
    async with AnonymousPrinter("Pass") as far:
        device = FakeUsbDevice(
            0x04B8,
            0x0E28,
            ieee1284_id="MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;",
            far_side=("127.0.0.1", far.port),
        )
        config = DiscoveryConfig(usb=True, usb_backend=FakeBackend(device))
        await make_agent([], name="usb-model", discovery=config)

        async def online() -> dict[str, Any] | None:
            ack = await ops.call("printers:list", {})
            rows = [p for p in ack["printers"] if p["address"] == "usb://04b8:0e28"]
            return rows[0] if rows and rows[0]["status"] == "online" else None

        row = await eventually(online, what="found USB printer online")
        assert (row["model"], row["serial"], row["profile"]) == ("TM-T20II", None, "TM-T20II")
        assert row["capabilities"]["source"] == "model" and row["capabilities"]["columns"] == 48
        ack = await ops.call(
            "job:submit", {"printer_id": row["id"], "document": {"blocks": [{"type": "line"}]}}
        )
        assert ack["ok"], ack
        assert (await far.wait_for_receipts(1))[0].text == "-" * 48


async def test_agent_adds_the_printer_serial_discovery_finds_and_prints_on_it(
    bridge: PtyPrinterBridge, sim: SimulatedPrinter, make_agent: AgentFactory, ops: OpsClient
) -> None:
    """``--discover serial`` in a running agent: the printer behind the pseudo-terminal
    is found at its baud rate, registered under its serial, and prints through the pty."""
    config = DiscoveryConfig(serial=True, serial_ports=[bridge.path])
    agent = await make_agent([], name="serial-found", discovery=config)

    async def online() -> dict[str, Any] | None:
        ack = await ops.call("printers:list", {})
        rows = [p for p in ack["printers"] if p["identity"] == "serial:FAR-42"]
        return rows[0] if rows and rows[0]["status"] == "online" else None

    row = await eventually(online, what="serial printer found and online")
    assert (row["kind"], row["address"]) == ("serial", f"serial://{bridge.path}?baudrate=19200")
    ack = await ops.call(
        "job:submit",
        {"printer_id": row["id"], "document": {"blocks": [{"type": "text", "text": "via pty"}]}},
    )
    assert ack["ok"], ack
    assert (await sim.wait_for_receipts(1))[0].text == "via pty"
    assert [w.spec.uri for w in agent.workers] == [row["address"]]


# -- an answer that is not a status ------------------------------------------------------------


class GarblingDevice:
    """Something on 127.0.0.1 that takes every connection and answers each ``DLE EOT``
    with a byte that is not a status answer (0xff lacks the fixed bits): another
    device on port 9100, a serial line at the wrong rate, a printer in another command
    mode. It never prints; ``received`` is everything it was sent."""

    def __init__(self) -> None:
        self.port = 0
        self.received = bytearray()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> GarblingDevice:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.received += data
                writer.write(b"\xff" * data.count(DLE_EOT))
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@contextlib.contextmanager
def port_to(kind: str, device: GarblingDevice) -> Iterator[PrinterPort]:
    """A port of ``kind`` whose far side is ``device``: a TCP socket, a USB printer on
    the fake pyusb backend, or a serial line through a pseudo-terminal at its rate."""
    bridge = None
    port: PrinterPort
    if kind == "tcp":
        port = TcpPrinterPort("127.0.0.1", device.port)
    elif kind == "usb":
        far = FakeUsbDevice(0x04B8, 0x0E15, far_side=("127.0.0.1", device.port))
        port = UsbPrinterPort(0x04B8, 0x0E15, backend=FakeBackend(far))
    else:
        bridge = PtyPrinterBridge(device.port, baudrate=19200)
        port = SerialPrinterPort(bridge.path, options={"baudrate": "19200"})
    try:
        yield port
    finally:
        port.close()
        if bridge is not None:
            bridge.close()


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_an_answer_that_is_not_a_status_is_unreachable_on_every_transport(
    kind: str,
) -> None:
    """Garbage instead of a DLE EOT answer: PrinterUnreachable saying so, on TCP, USB
    and serial alike (it used to be "no status support" on TCP alone)."""
    async with GarblingDevice() as device:
        with port_to(kind, device) as port:
            with pytest.raises(PrinterUnreachable, match="answered status with garbage ff ff"):
                await asyncio.to_thread(port.query_status)
            with pytest.raises(PrinterUnreachable, match="answered status with garbage"):
                await asyncio.to_thread(port.query_status)  # asked again: the same answer


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_printer_that_answers_garbage_is_offline_and_its_jobs_wait(
    kind: str, tmp_path: Path
) -> None:
    """Reachable but not understood is ``offline``, not ``unknown``: its jobs stay in
    the spool (a station fails over) instead of going out blind and being reported
    printed, and status support is not written off."""
    spool = JobSpool(tmp_path / "spool.sqlite", synchronous="NORMAL")
    await asyncio.to_thread(spool.open)
    async with GarblingDevice() as device:
        with port_to(kind, device) as port:
            spec = parse_printer_spec(f"Garbled={port.description}")
            statuses: list[tuple[str, dict[str, bool]]] = []

            async def on_status(worker: PrinterWorker) -> None:
                statuses.append((worker.status, dict(worker.flags)))

            worker = PrinterWorker(
                spec, port, spool, on_status=on_status, on_outbox=lambda: None, poll_interval=0.1
            )
            worker.printer_id = 1
            await spool.accept({"id": 7, "printer_id": 1, "document": receipt_doc("BLIND")})
            worker.start()
            try:
                await eventually(lambda: len(statuses) >= 1, what="a status")
                await asyncio.sleep(0.5)  # a few polls and print attempts
                assert statuses[0] == ("offline", {"unreachable": True})
                assert worker.status == "offline" and worker.status_supported
                job = await spool.get(7)
                assert job is not None and (job.state, job.attempts) == ("pending", 0)
                assert b"BLIND" not in device.received
            finally:
                await worker.stop()
    await asyncio.to_thread(spool.close)


@pytest.mark.parametrize(
    ("model", "language"), [("TSP143IIIU (STR_T-001)", "star_raster"), ("TSP654II", "star_line")]
)
async def test_usb_printer_whose_1284_id_says_cmd_star_speaks_star(
    make_agent: AgentFactory, ops: OpsClient, model: str, language: str
) -> None:
    """A USB Star printer whose IEEE 1284 id says ``CMD:STAR`` found by discovery speaks
    Star (a TSP654, whose name alone decides nothing, in Star Line; the raster-only
    TSP143 in star_raster): its status comes from ESC ACK SOH (it ignores DLE EOT),
    and a job reaches it in that language."""
    async with SimulatedPrinter("Star", language=language) as far:
        device = FakeUsbDevice(
            0x0519,
            0x0003,
            manufacturer="Star",
            product="Receipt printer",
            ieee1284_id=f"MFG:Star;CMD:STAR;MDL:{model};CLS:PRINTER;",
            far_side=("127.0.0.1", far.port),
        )
        config = DiscoveryConfig(usb=True, usb_backend=FakeBackend(device))
        await make_agent([], name="usb-star", discovery=config)

        async def online() -> dict[str, Any] | None:
            ack = await ops.call("printers:list", {})
            rows = [p for p in ack["printers"] if p["address"] == "usb://0519:0003"]
            return rows[0] if rows and rows[0]["status"] == "online" else None

        row = await eventually(online, what="USB Star printer online")
        assert row["capabilities"]["language"] == language
        ack = await ops.call(
            "job:submit",
            {"printer_id": row["id"], "document": {"blocks": [{"type": "text", "text": "T7"}]}},
        )
        assert ack["ok"], ack
        receipt = (await far.wait_for_receipts(1))[0]
        assert receipt.cut
        if language == "star_raster":
            assert len(receipt.images) == 1
        else:
            assert receipt.text == "T7"
