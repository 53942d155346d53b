"""Label and raw printers are asked their status in their own language: a Zebra
(``zpl``) gets ``~HS`` and never an ESC/POS query, a ``raw`` printer gets no query
at all; what they say (or whether they can be reached) reaches operators."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest

from pm_agent.sim.fleet import SimulatorFleet
from pm_agent.sim.label_stream import Label, LabelStream, StatusQuery
from pm_agent.sim.printer import SimulatedPrinter
from pm_agent.tcp_port import TcpPrinterPort
from pm_agent.zpl_label import zpl_test_label
from pm_agent.zpl_status import decode_host_status, encode_host_status
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually

DLE_EOT = b"\x10\x04"
GS_I = b"\x1d\x49"
ZPL = b"^XA^FO50,50^ADN,36,20^FDTable 12^FS^XZ"


def no_escpos_queries(received: bytes) -> bool:
    return DLE_EOT not in received and GS_I not in received


async def printer_row(ops: OpsClient, name: str, **match: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        ack = await ops.call("printers:list", {})
        for row in ack["printers"]:
            if row["name"] == name and all(row.get(k) == v for k, v in match.items()):
                return dict(row)
        return None

    return await eventually(find, timeout=20, what=f"{name} with {match}")


async def finished_job(ops: OpsClient, job_id: int) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await ops.call("job:get", {"job_id": job_id}))["job"]
        return dict(job) if job["status"] in ("completed", "failed") else None

    return await eventually(done, timeout=20, what=f"job {job_id} finished")


def test_host_status_fields_as_zebra_documents_them() -> None:
    """~HS string 1 field 2 is paper out, field 3 pause; string 2 field 3 head up,
    field 4 ribbon out: each becomes the status a user expects."""
    frame = b"\x02%s\x03\r\n"
    rest = frame % b"1234,0"

    def answer(string1: bytes, string2: bytes) -> bytes:
        return frame % string1 + frame % string2 + rest

    fine = answer(b"030,0,0,1218,000,0,0,0,000,0,0,0", b"001,0,0,0,1,2,6,0,00000000,1,000")
    paper = answer(b"030,1,1,1218,000,0,0,0,000,0,0,0", b"001,0,0,0,1,2,6,0,00000000,1,000")
    head = answer(b"030,0,1,1218,000,0,0,0,000,0,0,0", b"001,0,1,0,1,2,6,0,00000000,1,000")
    ribbon = answer(b"030,0,0,1218,000,0,0,0,000,0,0,0", b"001,0,0,1,1,2,6,0,00000000,1,000")
    paused = answer(b"030,0,1,1218,000,0,0,0,000,0,0,0", b"001,0,0,0,1,2,6,0,00000000,1,000")
    assert decode_host_status(fine).status == "online"
    report = decode_host_status(paper)
    assert report.status == "paper_out" and report.flags["paper_end"]
    assert decode_host_status(head).status == "cover_open"
    assert decode_host_status(ribbon).status == "error"
    assert decode_host_status(paused).status == "offline"
    for state in ("online", "paper_out", "cover_open", "error"):
        assert decode_host_status(encode_host_status(state)).status == state
    for garbage in (b"\x12\x12\x12\x12", b"\x02a,b,c\x03\x02d\x03", b""):
        with pytest.raises(ValueError):
            decode_host_status(garbage)


def test_label_stream_finds_labels_and_queries_across_chunks() -> None:
    stream = LabelStream()
    data = b"~HS" + ZPL + b"\r\n~hs" + ZPL.lower()
    events: list[object] = []
    for i in range(len(data)):
        events += stream.feed(data[i : i + 1])
    assert [type(e) for e in events] == [StatusQuery, Label, StatusQuery, Label]
    assert isinstance(events[1], Label) and events[1].zpl == ZPL
    assert stream.flush() == []


async def test_tcp_port_asks_a_label_printer_with_hs_only() -> None:
    """In the zpl dialect the port asks ~HS and reads its three strings: paper out and
    head up come through; the printer never sees DLE EOT or GS I."""
    async with SimulatedPrinter("Zebra", language="zpl") as printer:
        port = TcpPrinterPort("127.0.0.1", printer.port)
        port.status_dialect = "zpl"
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
        assert printer.status_queries == 3
        assert no_escpos_queries(bytes(printer.received)), bytes(printer.received)


async def test_label_printer_paper_out_reaches_operators_and_its_label_prints(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A Zebra set to zpl: online at the hub from its ~HS answer, paper out (set through
    the simulator's control server, as pm simctl does) shows as paper_out, a label
    waits for paper and then prints as sent; the printer never received an ESC/POS
    status or identity query."""
    async with (
        SimulatorFleet.start(count=1, names=["Zebra"], language="zpl") as fleet,
        aiohttp.ClientSession() as http,
    ):
        printer = fleet.printers[0]

        async def set_state(state: str) -> None:
            url = f"{fleet.control_url}/printers/{printer.port}/state"
            async with http.post(url, json={"state": state}) as response:
                assert response.status == 200, await response.text()

        await make_agent([f"Zebra=tcp://127.0.0.1:{printer.port}?language=zpl#label"])
        row = await printer_row(ops, "Zebra", status="online", status_supported=True)
        assert row["capabilities"]["language"] == "zpl"

        await set_state("paper_out")
        row = await printer_row(ops, "Zebra", status="paper_out")
        assert row["flags"]["paper_end"] is True

        ack = await ops.call(
            "job:submit",
            {"printer_id": row["id"], "document": {"raw_base64": base64.b64encode(ZPL).decode()}},
        )
        assert ack["ok"], ack
        await set_state("online")
        job = await finished_job(ops, ack["job"]["id"])
        assert job["status"] == "completed", job
        labels = await printer.wait_for_receipts(1)
        assert labels[0].raw == ZPL
        await printer_row(ops, "Zebra", status="online")
        assert printer.status_queries >= 3
        assert no_escpos_queries(bytes(printer.received)), bytes(printer.received)


async def test_label_printer_silent_to_hs_is_shown_without_status(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A label printer that never answers ~HS is treated like an ESC/POS printer that
    never answers DLE EOT: unknown, status_supported false, and it still prints."""
    async with SimulatedPrinter("Mute-Zebra", language="zpl", status_supported=False) as printer:
        await make_agent([f"Mute-Zebra=tcp://127.0.0.1:{printer.port}?language=zpl"])
        row = await printer_row(ops, "Mute-Zebra", status="unknown", status_supported=False)
        assert row["flags"] == {"status_unsupported": True}
        ack = await ops.call(
            "job:submit",
            {"printer_id": row["id"], "document": {"raw_base64": base64.b64encode(ZPL).decode()}},
        )
        assert ack["ok"], ack
        assert (await finished_job(ops, ack["job"]["id"]))["status"] == "completed"
        assert (await printer.wait_for_receipts(1))[0].raw == ZPL
        assert no_escpos_queries(bytes(printer.received))


async def test_raw_printer_gets_no_queries_and_shows_whether_it_is_reachable(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A raw printer is never asked anything: reachable, it shows as a printer without
    status (unknown, status_supported false) and prints; switched off it shows offline,
    and back on it returns. It received the job's bytes and nothing else."""
    payload = b"\x02L\r\nH07\r\n121100000500050Table 12\r\nE\r\n"
    async with SimulatedPrinter("Tag", language="raw") as printer:
        await make_agent([f"Tag=tcp://127.0.0.1:{printer.port}?language=raw"])
        row = await printer_row(ops, "Tag", status="unknown", status_supported=False)
        assert row["flags"] == {"status_unsupported": True}
        ack = await ops.call(
            "job:submit",
            {
                "printer_id": row["id"],
                "document": {"raw_base64": base64.b64encode(payload).decode()},
            },
        )
        assert ack["ok"], ack
        assert (await finished_job(ops, ack["job"]["id"]))["status"] == "completed"
        await eventually(lambda: bytes(printer.received) == payload, what="job bytes received")

        await printer.stop()
        row = await printer_row(ops, "Tag", status="offline")
        assert row["flags"] == {"unreachable": True}
        await printer.start()
        await printer_row(ops, "Tag", status="unknown")
        assert bytes(printer.received) == payload  # not one query byte, before or after
        assert printer.status_queries == 0


def test_zpl_test_label_escapes_what_the_operator_typed() -> None:
    """A printer name holding ``^`` or ``~`` (ZPL's command prefixes) stays text in the
    label: it cannot end the field or start a command such as ``~JR`` (reset)."""
    label = zpl_test_label(printer_name="Bar^XZ~JR_é", address="tcp://127.0.0.1:9100")
    assert label.startswith(b"^XA") and label.endswith(b"^XZ")
    assert label.count(b"^XZ") == 1 and b"~" not in label
    assert b"Bar_5EXZ_7EJR_5F_C3_A9" in label


async def test_test_page_on_a_label_printer_is_a_label_and_a_raw_printer_declines(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """``printer:test`` on a zpl printer prints a ZPL label (not an ESC/POS page it would
    print as garbage); on a raw printer, whose language is unknown, it answers why
    there is no test page and sends nothing."""
    async with (
        SimulatedPrinter("Zebra", language="zpl") as zebra,
        SimulatedPrinter("Tag", language="raw") as tag,
    ):
        await make_agent(
            [
                f"Zebra=tcp://127.0.0.1:{zebra.port}?language=zpl",
                f"Tag=tcp://127.0.0.1:{tag.port}?language=raw",
            ]
        )
        row = await printer_row(ops, "Zebra", status="online")
        test = await ops.call("printer:test", {"printer_id": row["id"]})
        assert test["ok"], test
        label = (await zebra.wait_for_receipts(1))[0]
        assert label.raw.startswith(b"^XA") and b"PRINTERMASTER TEST PAGE" in label.raw
        assert b"\x1b@" not in zebra.received and no_escpos_queries(bytes(zebra.received))

        row = await printer_row(ops, "Tag", status="unknown")
        test = await ops.call("printer:test", {"printer_id": row["id"]})
        assert test["ok"], test  # sent to the agent; its answer follows
        done = await ops.wait_for(
            "printer:test:completed", lambda d: d["correlation_id"] == test["correlation_id"]
        )
        assert done["ok"] is False and "raw printer" in done["error"]["message"], done
        assert bytes(tag.received) == b""
