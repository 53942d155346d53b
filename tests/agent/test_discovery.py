"""Printer discovery without leaving 127.0.0.0/8: the subnet scan, mDNS, the merge
of every source, and an agent that adds what discovery finds while it runs."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from pm_agent.discovery import ConfiguredSource, Discovery, DiscoveryConfig, merge_found
from pm_agent.discovery.arp import mac_for_ip
from pm_agent.discovery.found import FoundPrinter
from pm_agent.discovery.mdns import LPD_SERVICE, RAW_SERVICE, MdnsSource
from pm_agent.discovery.tcp_scan import TcpScanSource, scan_targets
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.printer import SimulatedPrinter
from tests.conftest import AgentFactory
from tests.support.helpers import (
    AnonymousPrinter,
    OpsClient,
    eventually,
    free_port,
    write_arp_table,
)

LOOPBACK = ["127.0.0.1"]


# -- subnet scan ---------------------------------------------------------------------------


async def test_scan_finds_the_printers_of_a_loopback_range() -> None:
    """A /29 of 127.0.0.x on four ports: the printers that answer DLE EOT are found with
    their serial and model, a silent one is reported unconfirmed, nothing else."""
    async with (
        SimulatedPrinter("Kitchen", serial="KIT-1", model="TM-T88V") as kitchen,
        SimulatedPrinter("Bar", serial="BAR-1", host="127.0.0.3") as bar,
        SimulatedPrinter("Mute", status_supported=False) as mute,
    ):
        ports = [kitchen.port, bar.port, mute.port, free_port()]
        started = time.monotonic()
        found = await TcpScanSource("127.0.0.0/29", ports=ports, concurrency=4).discover()
        assert time.monotonic() - started < 3
    by_uri = {f.uri: f for f in found}
    assert set(by_uri) == {kitchen.address, bar.address, mute.address}
    assert by_uri[kitchen.address].identity == "serial:KIT-1"
    assert by_uri[kitchen.address].model == "TM-T88V"
    assert by_uri[kitchen.address].status == "online"
    assert by_uri[bar.address].uri == f"tcp://127.0.0.3:{bar.port}"
    assert by_uri[mute.address].confirmed is False


async def test_scan_finds_a_star_printer_in_star_mode_by_its_asb_answer() -> None:
    """A Star printer in a Star mode is silent to DLE EOT but answers ESC ACK SOH: it
    is found, confirmed, with its status and the language every Star model prints."""
    async with SimulatedPrinter("TSP143", language="star_raster") as star:
        await star.set_state("paper_low")
        found = await TcpScanSource("127.0.0.1/32", ports=[star.port]).discover()
    assert len(found) == 1
    assert found[0].confirmed and found[0].language == "star_raster"
    assert found[0].status == "paper_low"
    assert found[0].spec().options["language"] == "star_raster"


async def test_scan_keeps_to_its_concurrency_bound() -> None:
    """A scan never has more connections open at once than its bound (it must not flood
    the branch network or the box's sockets), and it does use the bound: probes overlap.
    Counted at loopback listeners that take the status query, wait, then hang up."""
    open_now = peak = seen = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak, seen
        open_now += 1
        seen += 1
        peak = max(peak, open_now)
        try:
            await reader.read(64)  # the DLE EOT queries
            await asyncio.sleep(0.1)
        finally:
            open_now -= 1  # counted closed before the scanner can see the hang-up
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(16)]
    ports = [int(server.sockets[0].getsockname()[1]) for server in servers]
    try:
        found = await TcpScanSource(
            "127.0.0.1/32", ports=ports, concurrency=4, timeout=2.0
        ).discover()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    assert (seen, peak) == (16, 4)
    assert len(found) == 16 and not any(f.confirmed for f in found)


async def test_scan_results_carry_the_mac_from_the_arp_table(tmp_path: Path) -> None:
    """A printer that tells no serial is known by its MAC (and port: a print server has
    one MAC for several ports), so the agent can follow it to another address."""
    table = tmp_path / "arp"
    write_arp_table(table, {"127.0.0.1": "02:00:5e:00:00:07"})
    async with AnonymousPrinter("Cheap") as cheap, SimulatedPrinter("Told", serial="T-1") as told:
        found = await TcpScanSource(
            "127.0.0.1/32", ports=[cheap.port, told.port], arp_table=table
        ).discover()
    by_uri = {f.uri: f for f in found}
    assert by_uri[cheap.address].mac == "02:00:5e:00:00:07"
    assert by_uri[cheap.address].identity == f"mac:02:00:5e:00:00:07/{cheap.port}"
    assert by_uri[told.address].identity == "serial:T-1"
    assert by_uri[cheap.address].to_json()["mac"] == "02:00:5e:00:00:07"


@pytest.mark.parametrize(
    ("cidr", "message"),
    [("10.0.0.0/16", "more than a /22"), ("banana", "not a CIDR"), ("127.0.0.0/8", "/22")],
)
def test_scan_refuses_large_or_bad_ranges(cidr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scan_targets(cidr)


def test_scan_of_a_large_range_needs_force() -> None:
    assert len(scan_targets("127.0.0.0/21", force=True)) == 2046
    assert scan_targets("127.0.0.5/32") == ["127.0.0.5"]


# -- merging -------------------------------------------------------------------------------


def test_merge_keeps_one_printer_per_address_and_serial() -> None:
    configured = FoundPrinter(uri="tcp://10.0.0.5:9100", kind="network", source="configured")
    scanned = FoundPrinter(
        uri="tcp://10.0.0.5:9100", kind="network", source="scan", serial="S1", model="TM-T20II"
    )
    announced = FoundPrinter(
        uri="tcp://10.0.0.5:9100", kind="network", source="mdns", name="Kitchen printer"
    )
    moved = FoundPrinter(uri="tcp://10.0.0.9:9100", kind="network", source="mdns", serial="S1")
    other = FoundPrinter(uri="usb://04b8:0202", kind="usb", source="usb")
    merged = merge_found([announced, moved], [scanned], [other], [configured])
    assert [m.uri for m in merged] == ["tcp://10.0.0.5:9100", "usb://04b8:0202"]
    first = merged[0]
    assert first.identity == "serial:S1" and first.model == "TM-T20II"
    assert first.name == "Kitchen printer"
    assert first.sources == ("configured", "scan", "mdns")
    assert first.details["also_at"] == ["tcp://10.0.0.9:9100"]


def test_merge_takes_the_same_mac_and_port_for_one_printer() -> None:
    scanned = FoundPrinter(uri="tcp://10.0.0.5:9100", kind="network", source="scan", mac="aa:1")
    announced = FoundPrinter(
        uri="tcp://10.0.0.9:9100", kind="network", source="mdns", mac="aa:1", name="Grill"
    )
    other_port = FoundPrinter(uri="tcp://10.0.0.5:9101", kind="network", source="scan", mac="aa:1")
    merged = merge_found([scanned, other_port], [announced])
    assert [(m.uri, m.identity) for m in merged] == [
        ("tcp://10.0.0.5:9100", "mac:aa:1"),
        ("tcp://10.0.0.5:9101", "mac:aa:1/9101"),
    ]
    assert merged[0].name == "Grill" and merged[0].details["also_at"] == ["tcp://10.0.0.9:9100"]


async def test_one_failing_source_does_not_stop_the_others() -> None:
    class Broken:
        name = "broken"

        async def discover(self) -> list[FoundPrinter]:
            raise RuntimeError("boom")

    spec = parse_printer_spec("Bar=tcp://127.0.0.1:9#bar")
    found = await Discovery([Broken(), ConfiguredSource([spec])]).run_once()
    assert [(f.uri, f.name, f.source) for f in found] == [
        ("tcp://127.0.0.1:9", "Bar", "configured")
    ]


def test_mac_comes_from_complete_arp_entries_only(tmp_path: Path) -> None:
    table = tmp_path / "arp"
    table.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.168.1.50     0x1         0x2         00:26:ab:12:34:56     *        eth0\n"
        "192.168.1.51     0x1         0x0         00:00:00:00:00:00     *        eth0\n"
    )
    assert mac_for_ip("192.168.1.50", table=table) == "00:26:ab:12:34:56"
    assert mac_for_ip("192.168.1.51", table=table) is None
    assert mac_for_ip("192.168.1.52", table=table) is None
    assert mac_for_ip("192.168.1.50", table=tmp_path / "missing") is None


# -- mDNS ----------------------------------------------------------------------------------


async def announce(zc: AsyncZeroconf, service: str, name: str, port: int, **txt: str) -> None:
    info = AsyncServiceInfo(
        service,
        f"{name}.{service}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=port,
        properties=txt,
        server=f"{name.replace(' ', '-')}.local.",
    )
    # A test has the loopback to itself: no need to probe for name conflicts first.
    await zc.async_register_service(info, cooperating_responders=True)


async def test_mdns_finds_announced_printers_on_loopback(tmp_path: Path) -> None:
    """_pdl-datastream announcements on 127.0.0.1 are resolved and confirmed by DLE EOT
    (with the MAC the ARP table has for the address); an office printer announcing the
    same service is left out. Names are unique: other tests on this machine may announce
    printers on the loopback at the same time."""
    table = tmp_path / "arp"
    write_arp_table(table, {"127.0.0.1": "02:00:5e:00:00:08"})
    tag = uuid.uuid4().hex[:8]
    zc = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        async with SimulatedPrinter("Pass", serial="PASS-7", model="TM-T20II") as sim:
            await announce(zc, RAW_SERVICE, f"Pass {tag}", sim.port, ty="EPSON TM-T20II")
            await announce(zc, RAW_SERVICE, f"Office {tag}", free_port(), ty="HP LaserJet M404")
            found = await MdnsSource(interfaces=LOOPBACK, timeout=1.5, arp_table=table).discover()
    finally:
        await zc.async_close()
    ours = [f for f in found if f.name and f.name.endswith(tag)]
    assert [(f.uri, f.name, f.identity, f.confirmed) for f in ours] == [
        (sim.address, f"Pass {tag}", "serial:PASS-7", True)
    ]
    assert ours[0].model == "TM-T20II" and ours[0].mac == "02:00:5e:00:00:08"


async def test_mdns_lpd_announcement_points_at_the_raw_port() -> None:
    zc = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        await announce(zc, LPD_SERVICE, "Back office", 515, product="(Star TSP650)")
        found = await MdnsSource(
            interfaces=LOOPBACK, timeout=1.0, probe_timeout=0.2, service_types=[LPD_SERVICE]
        ).discover()
    finally:
        await zc.async_close()
    # Nothing answers on 127.0.0.1:9100 here: listed, but not confirmed.
    assert [(f.uri, f.model, f.confirmed) for f in found] == [
        ("tcp://127.0.0.1:9100", "Star TSP650", False)
    ]


# -- a running agent -----------------------------------------------------------------------


async def printers_by_identity(ops: OpsClient) -> dict[str, dict[str, Any]]:
    ack = await ops.call("printers:list", {})
    return {p["identity"]: p for p in ack["printers"]}


async def test_agent_adds_printers_its_scan_finds(make_agent: AgentFactory, ops: OpsClient) -> None:
    """Start-up scan: a found printer gets a worker and reaches the hub with its serial;
    a later scan (every N minutes) adds a printer switched on after start."""
    async with SimulatedPrinter("Grill", serial="GRILL-1") as grill:
        late = SimulatedPrinter("Late", serial="LATE-1")
        late_port = free_port()
        late.port = late_port
        config = DiscoveryConfig(
            scan=["127.0.0.1/32"], scan_ports=[grill.port, late_port], interval=0.5
        )
        agent = await make_agent([], name="scanner", discovery=config)
        try:
            grill_row = await eventually(
                lambda: _online(ops, "serial:GRILL-1"), what="scanned printer registered"
            )
            assert grill_row["address"] == grill.address and grill_row["kind"] == "network"
            await late.start()
            await eventually(lambda: _online(ops, "serial:LATE-1"), what="late printer added")
            assert len(agent.workers) == 2
            assert agent.discovery is not None and agent.discovery.runs >= 2
        finally:
            await late.stop()


async def _online(ops: OpsClient, identity: str) -> dict[str, Any] | None:
    row = (await printers_by_identity(ops)).get(identity)
    return row if row and row["status"] == "online" else None


async def test_discovery_runs_each_source_concurrently() -> None:
    class Slow:
        def __init__(self, name: str) -> None:
            self.name = name

        async def discover(self) -> list[FoundPrinter]:
            await asyncio.sleep(0.3)
            return [
                FoundPrinter(uri=f"tcp://127.0.0.1:{len(self.name)}", kind="network", source="scan")
            ]

    started = time.monotonic()
    found = await Discovery([Slow("a"), Slow("bb"), Slow("ccc")]).run_once()
    assert len(found) == 3 and time.monotonic() - started < 0.8


async def test_pm_discover_lists_what_it_finds() -> None:
    """The ``pm discover`` command as a user runs it."""
    import json
    import sys

    async with SimulatedPrinter("Oven", serial="OVEN-3", model="TM-T88V") as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pm",
            "discover",
            "--scan",
            "127.0.0.1/32",
            "--scan-port",
            str(sim.port),
            "--printer",
            "Bar=tcp://127.0.0.1:9",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    listed = {p["uri"]: p for p in json.loads(out)}
    assert listed[sim.address]["identity"] == "serial:OVEN-3"
    assert listed[sim.address]["model"] == "TM-T88V"
    assert listed["tcp://127.0.0.1:9"]["sources"] == ["configured"]
