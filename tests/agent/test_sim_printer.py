"""The simulated network printer, over real sockets on 127.0.0.1: receipts,
DLE EOT answers in every state, outages, held jobs, the HTTP control server
and the ``pm sim`` / ``pm simctl`` glue."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from pm_agent.escpos_status import STATUS_QUERIES, decode_status
from pm_agent.render import render_document, render_test_page
from pm_agent.sim.cli import add_sim_arguments, add_simctl_arguments, run_sim, run_simctl
from pm_agent.sim.fleet import SimulatorFleet
from pm_agent.sim.printer import PRINTER_STATES, SimulatedPrinter
from tests.support.helpers import free_port

ALL_QUERIES = b"".join(STATUS_QUERIES[n] for n in (1, 2, 3, 4))


def job(*texts: str) -> bytes:
    return render_document({"blocks": [{"type": "text", "text": t} for t in texts]})


class Client:
    """A POS application talking to the printer over TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def status(self) -> str:
        """Ask DLE EOT 1..4 and decode the four answers."""
        await self.send(ALL_QUERIES)
        answer = await asyncio.wait_for(self.reader.readexactly(4), 2)
        return decode_status(*answer).status

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
async def printer() -> AsyncIterator[SimulatedPrinter]:
    async with SimulatedPrinter("Kitchen-1", serial="SN-0001", model="TM-SIM") as sim:
        yield sim


# --------------------------------------------------------------------------- printing


async def test_rendered_document_becomes_a_receipt(printer: SimulatedPrinter) -> None:
    doc = {
        "blocks": [
            {"type": "text", "text": "Table 7", "bold": True, "align": "center"},
            {"type": "line"},
            {"type": "text", "text": "2x Schnitzel   24,00 €"},
            {"type": "barcode", "data": "ORDER-7"},
            {"type": "qr", "data": "https://example.com/7"},
        ]
    }
    data = render_document(doc, columns=20, header="BACKUP FROM Bar-1")
    client = await Client.connect(printer.port)
    await client.send(data)
    assert await client.status() == "online"
    assert [r.text for r in printer.receipts] == [
        "BACKUP FROM Bar-1\nTable 7\n"
        + "-" * 20
        + "\n2x Schnitzel   24,00 €\n[BARCODE CODE128 ORDER-7]\n[QR https://example.com/7]"
    ]
    receipt = printer.receipts[0]
    assert receipt.cut
    assert receipt.raw == data
    assert receipt.finished_at == pytest.approx(time.time(), abs=5)
    assert printer.bytes_received == len(data) + len(ALL_QUERIES)
    assert printer.status_queries == 4
    await client.close()


async def test_bytes_trickling_in_one_by_one_print_the_same(printer: SimulatedPrinter) -> None:
    data = render_test_page(printer_name="Kitchen-1", address=printer.address)
    client = await Client.connect(printer.port)
    for i in range(len(data)):
        client.writer.write(data[i : i + 1])
    await client.writer.drain()
    [receipt] = await printer.wait_for_receipts(1, timeout=5)
    assert receipt.text.splitlines()[0] == "PRINTERMASTER TEST PAGE"
    assert f"Address: {printer.address}" in receipt.text
    await client.close()


async def test_each_cut_is_one_receipt_and_images_show_their_size(
    printer: SimulatedPrinter,
) -> None:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 40), "black").save(buf, "PNG")
    logo = base64.b64encode(buf.getvalue()).decode()
    doc = {
        "blocks": [
            {"type": "image", "png_base64": logo},
            {"type": "text", "text": "first"},
            {"type": "cut"},
            {"type": "text", "text": "second"},
        ]
    }
    client = await Client.connect(printer.port)
    await client.send(render_document(doc))
    receipts = await printer.wait_for_receipts(2)
    assert [r.text for r in receipts] == ["[IMAGE 80x40]\nfirst", "second"]
    await client.close()


async def test_closing_without_a_cut_still_prints(printer: SimulatedPrinter) -> None:
    client = await Client.connect(printer.port)
    await client.send(b"\x1b@no cut here\n")
    await client.close()
    [receipt] = await printer.wait_for_receipts(1)
    assert receipt.text == "no cut here"
    assert receipt.cut is False


async def test_two_clients_at_once_each_get_their_receipt(printer: SimulatedPrinter) -> None:
    a = await Client.connect(printer.port)
    b = await Client.connect(printer.port)
    await a.send(b"\x1b@from A, part 1\n")
    await b.send(job("from B"))
    await a.send(b"from A, part 2\n\x1dV\x00")
    assert await a.status() == "online"
    assert await b.status() == "online"
    assert sorted(r.text for r in printer.receipts) == ["from A, part 1\nfrom A, part 2", "from B"]
    await a.close()
    await b.close()


async def test_identity_answers(printer: SimulatedPrinter) -> None:
    client = await Client.connect(printer.port)
    await client.send(b"\x1dIB\x1dIC\x1dID")
    answer = await asyncio.wait_for(client.reader.readuntil(b"SN-0001\x00"), 2)
    assert answer == b"_PRINTERMASTER\x00_TM-SIM\x00_SN-0001\x00"
    await client.send(b"\x1dI\x01\x1dI\x02\x1dI\x03")
    assert len(await asyncio.wait_for(client.reader.readexactly(3), 2)) == 3
    await client.close()


async def _serial(port: int) -> bytes:
    client = await Client.connect(port)
    await client.send(b"\x1dID")
    answer = await asyncio.wait_for(client.reader.readuntil(b"\x00"), 2)
    await client.close()
    return answer


async def test_two_simulators_with_the_same_names_are_two_printers() -> None:
    """Two `pm sim` on one box each had a "Kitchen-1" with the same serial, so the hub
    took them for one printer. A fixed port is part of the serial now."""
    base = free_port(run=2)
    first = await SimulatorFleet.start(count=1, base_port=base, control_port=None)
    second = await SimulatorFleet.start(count=1, base_port=base + 1, control_port=None)
    try:
        assert first.printers[0].name == second.printers[0].name
        a, b = await _serial(base), await _serial(base + 1)
        assert a.startswith(b"_SIM") and b.startswith(b"_SIM") and a != b
    finally:
        await first.stop()
        await second.stop()
    again = await SimulatorFleet.start(count=1, base_port=base, control_port=None)
    try:
        assert await _serial(base) == a  # the same printer when it comes back
    finally:
        await again.stop()


async def test_clear_forgets_receipts(printer: SimulatedPrinter) -> None:
    client = await Client.connect(printer.port)
    await client.send(job("x"))
    await client.status()
    printer.clear()
    assert printer.receipts == []
    assert printer.status_queries == 0
    await client.close()


async def test_wait_for_receipts_times_out_with_a_clear_message(
    printer: SimulatedPrinter,
) -> None:
    with pytest.raises(TimeoutError, match="Kitchen-1: 0 receipt"):
        await printer.wait_for_receipts(1, timeout=0.1)


# --------------------------------------------------------------------------- status


@pytest.mark.parametrize("state", [s for s in PRINTER_STATES if s != "offline"])
async def test_dle_eot_answers_match_the_state(printer: SimulatedPrinter, state: str) -> None:
    await printer.set_state(state)
    client = await Client.connect(printer.port)
    assert await client.status() == state
    await client.close()


async def test_status_answer_waits_for_the_job_before_it() -> None:
    async with SimulatedPrinter("Slow", print_delay=0.3) as printer:
        client = await Client.connect(printer.port)
        started = time.monotonic()
        await client.send(job("slow receipt"))
        assert await client.status() == "online"
        assert time.monotonic() - started >= 0.28
        assert [r.text for r in printer.receipts] == ["slow receipt"]
        await client.close()


async def test_status_is_answered_in_stream_order() -> None:
    async with SimulatedPrinter("Slow", print_delay=0.2) as printer:
        client = await Client.connect(printer.port)
        # status, job, status in one write: the first answer must not wait
        await client.send(STATUS_QUERIES[1] + job("a") + STATUS_QUERIES[1])
        await asyncio.wait_for(client.reader.readexactly(1), 0.15)
        assert printer.receipts == []
        await asyncio.wait_for(client.reader.readexactly(1), 2)
        assert len(printer.receipts) == 1
        await client.close()


async def test_printer_that_ignores_status_queries_still_prints() -> None:
    async with SimulatedPrinter("Cheap", status_supported=False) as printer:
        client = await Client.connect(printer.port)
        await client.send(job("hello") + ALL_QUERIES)
        await printer.wait_for_receipts(1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.reader.readexactly(1), 0.3)
        assert printer.status_queries == 4
        await client.close()


# --------------------------------------------------------------------------- outages


async def test_offline_refuses_connections_and_comes_back_on_the_same_port(
    printer: SimulatedPrinter,
) -> None:
    port = printer.port
    client = await Client.connect(port)
    await printer.set_state("offline")
    # the open connection is dropped ...
    assert await asyncio.wait_for(client.reader.read(1), 2) == b""
    # ... and new ones are refused
    with pytest.raises(OSError):
        await Client.connect(port)
    await printer.set_state("online")
    assert printer.port == port
    again = await Client.connect(port)
    await again.send(job("after the outage"))
    assert await again.status() == "online"
    assert [r.text for r in printer.receipts] == ["after the outage"]
    await again.close()
    await client.close()


async def test_offline_loses_what_was_not_printed_yet(printer: SimulatedPrinter) -> None:
    await printer.set_state("paper_out")
    client = await Client.connect(printer.port)
    await client.send(job("lost"))
    assert await client.status() == "paper_out"
    await printer.set_state("offline")
    await printer.set_state("online")
    await asyncio.sleep(0.05)
    assert printer.receipts == []
    await client.close()


@pytest.mark.parametrize("state", ["paper_out", "cover_open", "error"])
async def test_jobs_are_held_until_the_printer_recovers(
    printer: SimulatedPrinter, state: str
) -> None:
    await printer.set_state(state)
    client = await Client.connect(printer.port)
    await client.send(job("order 1"))
    await client.send(job("order 2"))
    assert await client.status() == state  # answered at once, not blocked
    assert printer.receipts == []
    assert printer.held == 2
    await printer.set_state("online")
    receipts = await printer.wait_for_receipts(2)
    assert [r.text for r in receipts] == ["order 1", "order 2"]
    assert printer.held == 0
    await client.close()


async def test_paper_low_still_prints(printer: SimulatedPrinter) -> None:
    await printer.set_state("paper_low")
    client = await Client.connect(printer.port)
    await client.send(job("running low"))
    assert await client.status() == "paper_low"
    assert [r.text for r in printer.receipts] == ["running low"]
    await client.close()


async def test_unknown_state_is_refused(printer: SimulatedPrinter) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        await printer.set_state("jammed")


# --------------------------------------------------------------------------- fleet + HTTP


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatorFleet]:
    async with SimulatorFleet.start(count=3) as sims:
        yield sims


async def test_fleet_names_and_ports(fleet: SimulatorFleet) -> None:
    assert [p.name for p in fleet.printers] == ["Kitchen-1", "Bar-1", "Counter-1"]
    assert len({p.port for p in fleet.printers}) == 3
    assert fleet.control_url is not None


async def test_fleet_can_be_awaited_and_stopped() -> None:
    sims = await SimulatorFleet.start(count=1, control_port=None, names=["Pass"])
    try:
        port = sims.printers[0].port
        client = await Client.connect(port)
        assert await client.status() == "online"
        await client.close()
    finally:
        await sims.stop()
    with pytest.raises(OSError):
        await Client.connect(port)


async def test_fleet_on_consecutive_ports() -> None:
    base = free_port(run=2)
    sims = await SimulatorFleet.start(count=2, base_port=base, control_port=None)
    try:
        assert [p.port for p in sims.printers] == [base, base + 1]
    finally:
        await sims.stop()


async def test_http_control_lists_changes_state_and_shows_receipts(
    fleet: SimulatorFleet,
) -> None:
    kitchen = fleet.printers[0]
    url = fleet.control_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/printers") as resp:
            listed = await resp.json()
        assert [(p["name"], p["port"], p["state"], p["receipts"]) for p in listed] == [
            (p.name, p.port, "online", 0) for p in fleet.printers
        ]

        client = await Client.connect(kitchen.port)
        await client.send(job("via http"))
        await client.status()

        async with http.get(f"{url}/printers/{kitchen.port}/receipts") as resp:
            receipts = await resp.json()
        assert len(receipts) == 1
        assert receipts[0]["index"] == 0
        assert receipts[0]["text"] == "via http"
        assert receipts[0]["cut"] is True
        assert receipts[0]["bytes"] == len(job("via http"))
        assert receipts[0]["finished_at"] > 0

        async with http.post(
            f"{url}/printers/{kitchen.port}/state", json={"state": "cover_open"}
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["state"] == "cover_open"
        assert kitchen.state == "cover_open"
        assert await client.status() == "cover_open"

        async with http.delete(f"{url}/printers/{kitchen.port}/receipts") as resp:
            assert await resp.json() == {"cleared": 1}
        assert kitchen.receipts == []
        await client.close()


async def test_http_control_rejects_bad_requests(fleet: SimulatorFleet) -> None:
    url = fleet.control_url
    port = fleet.printers[1].port
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/printers/{port}/state", json={"state": "melted"}) as resp:
            assert resp.status == 400
            body = await resp.json()
        assert body["error"]["code"] == "invalid_payload"
        assert "state must be one of online, offline" in body["error"]["message"]

        async with http.post(f"{url}/printers/{port}/state", data=b"{not json") as resp:
            assert resp.status == 400
            assert "JSON" in (await resp.json())["error"]["message"]

        async with http.post(f"{url}/printers/1/state", json={"state": "online"}) as resp:
            assert resp.status == 404
            assert "no simulated printer on port 1" in (await resp.json())["error"]["message"]

        async with http.get(f"{url}/printers/abc/receipts") as resp:
            assert resp.status == 404
    assert fleet.printers[1].state == "online"


async def test_http_offline_and_back(fleet: SimulatorFleet) -> None:
    bar = fleet.printers[1]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{fleet.control_url}/printers/{bar.port}/state", json={"state": "offline"}
        ):
            pass
        with pytest.raises(OSError):
            await Client.connect(bar.port)
        async with http.post(
            f"{fleet.control_url}/printers/{bar.port}/state", json={"state": "online"}
        ):
            pass
    client = await Client.connect(bar.port)
    assert await client.status() == "online"
    await client.close()


# --------------------------------------------------------------------------- CLI


def simctl_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pm simctl")
    add_simctl_arguments(parser)
    return parser.parse_args(argv)


async def test_simctl_drives_a_running_simulator(
    fleet: SimulatorFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fleet.control_url
    assert url is not None
    kitchen = fleet.printers[0]

    assert await asyncio.to_thread(run_simctl, simctl_args("--control", url, "list")) == 0
    out = capsys.readouterr().out
    assert "Kitchen-1" in out and "Counter-1" in out and str(kitchen.port) in out

    code = await asyncio.to_thread(
        run_simctl, simctl_args("--control", url, "state", str(kitchen.port), "paper_out")
    )
    assert code == 0
    assert "Kitchen-1 (port" in capsys.readouterr().out
    assert kitchen.state == "paper_out"
    await kitchen.set_state("online")

    client = await Client.connect(kitchen.port)
    await client.send(job("1x Soup of the day"))
    await client.status()
    await client.close()
    code = await asyncio.to_thread(
        run_simctl, simctl_args("--control", url, "receipts", str(kitchen.port))
    )
    assert code == 0
    assert "1x Soup of the day" in capsys.readouterr().out

    code = await asyncio.to_thread(
        run_simctl, simctl_args("--control", url, "state", str(kitchen.port), "sleepy")
    )
    assert code == 1
    assert "STATE must be one of" in capsys.readouterr().err

    code = await asyncio.to_thread(run_simctl, simctl_args("--control", url, "receipts", "1"))
    assert code == 1
    assert "no simulated printer on port 1" in capsys.readouterr().err


def test_simctl_explains_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert run_simctl(simctl_args("--control", url, "list")) == 1
    err = capsys.readouterr().err
    assert f"no simulator control server at {url}" in err
    assert "pm sim" in err


def test_sim_arguments_defaults() -> None:
    parser = argparse.ArgumentParser(prog="pm sim")
    add_sim_arguments(parser)
    args = parser.parse_args([])
    assert (args.port, args.count, args.host, args.control_port) == (9100, 1, "127.0.0.1", 9180)
    assert args.print_delay == 0.0 and args.no_status is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--host", "0.0.0.0"])


async def test_run_sim_prints_its_printers_and_stops_on_cancel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="pm sim")
    add_sim_arguments(parser)
    args = parser.parse_args(["--port", "0", "--count", "2", "--control-port", "0", "--no-status"])
    task = asyncio.create_task(run_sim(args))
    out = ""
    for _ in range(100):
        await asyncio.sleep(0.02)
        out += capsys.readouterr().out
        if "Control server" in out:
            break
    assert "Kitchen-1 listening on tcp://127.0.0.1:" in out
    assert "Bar-1 listening on tcp://127.0.0.1:" in out
    port = int(out.split("Kitchen-1 listening on tcp://127.0.0.1:")[1].split()[0])
    client = await Client.connect(port)
    await client.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(OSError):
        await Client.connect(port)


async def test_run_sim_reports_a_busy_port() -> None:
    async with SimulatedPrinter("Busy") as busy:
        parser = argparse.ArgumentParser(prog="pm sim")
        add_sim_arguments(parser)
        args = parser.parse_args(["--port", str(busy.port), "--control-port", "0"])
        with pytest.raises(SystemExit, match="cannot listen"):
            await run_sim(args)
