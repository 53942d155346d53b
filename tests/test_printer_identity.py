"""Who a printer is and what it can do, through a real hub: identity by serial
(GS I), a printer that moved keeps its id and history, capabilities from the
model or the user, and true status reaching operators."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pm_agent.agent import Agent
from pm_agent.discovery import DiscoveryConfig
from pm_agent.escpos_status import STATUSES
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim import SimulatedPrinter
from pm_hub.server import RunningHub
from pm_hub.store import printers as printer_store
from tests.conftest import AgentFactory
from tests.helpers import AnonymousPrinter, OpsClient, eventually, write_arp_table


async def listed(ops: OpsClient) -> list[dict[str, Any]]:
    ack = await ops.call("printers:list", {})
    assert ack["ok"], ack
    return list(ack["printers"])


async def wait_row(ops: OpsClient, what: str, **match: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for row in await listed(ops):
            if all(row.get(k) == v for k, v in match.items()):
                return row
        return None

    return await eventually(find, what=what)


async def history(hub: RunningHub, printer_id: int) -> list[dict[str, Any]]:
    return await hub.hub.db.read(lambda d: printer_store.printer_history(d, printer_id))


async def test_printer_moved_to_another_port_keeps_its_id_and_history(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory, tmp_path: Path
) -> None:
    """Same serial at a new address (DHCP, another port): same hub record, new address,
    earlier status history still there, no second printer."""
    async with SimulatedPrinter("Kitchen-1", serial="TM-0042", model="TM-T88V") as before:
        first = await make_agent([f"Kitchen-1={before.address}#kitchen"], name="first")
        row = await wait_row(ops, "registered", identity="serial:TM-0042", status="online")
        await before.set_state("paper_low")
        await wait_row(ops, "paper low", id=row["id"], status="paper_low")
        await first.stop()
    async with SimulatedPrinter("Kitchen-1", serial="TM-0042", model="TM-T88V") as after:
        assert after.port != before.port
        await make_agent([f"Kitchen-1={after.address}#kitchen"], name="second")
        moved = await wait_row(ops, "moved", id=row["id"], status="online", address=after.address)
    assert [p["id"] for p in await listed(ops)] == [row["id"]]
    assert moved["station"] == "kitchen" and moved["model"] == "TM-T88V"
    statuses = [h["status"] for h in await history(hub, row["id"])]
    assert "paper_low" in statuses and statuses[0] == "online"


async def test_running_agent_follows_a_printer_to_its_new_address(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """The printer goes away from 127.0.0.1 and answers on 127.0.0.2 (a new DHCP lease);
    the agent's scan finds the same serial there and drives it at the new address."""
    old = SimulatedPrinter("Bar", serial="BAR-77")
    await old.start()
    config = DiscoveryConfig(scan=["127.0.0.2/32"], scan_ports=[old.port], interval=0.3)
    agent = await make_agent([f"Bar={old.address}#bar"], name="follower", discovery=config)
    row = await wait_row(ops, "registered", identity="serial:BAR-77", status="online")
    port = old.port
    await old.stop()
    new = SimulatedPrinter("Bar", serial="BAR-77", host="127.0.0.2", port=port)
    await new.start()
    try:
        address = f"tcp://127.0.0.2:{port}"
        await wait_row(ops, "followed", id=row["id"], address=address, status="online")
        assert [w.spec.uri for w in agent.workers] == [address]
        assert agent.workers[0].spec.station == "bar"
        assert len(await listed(ops)) == 1
    finally:
        await new.stop()


async def test_running_agent_follows_a_printer_known_only_by_its_mac(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory, tmp_path: Path
) -> None:
    """No serial (no GS I), but its MAC is in the ARP table: the printer leaves 127.0.0.1
    and answers on 127.0.0.2 (the ARP table has its MAC there now). The agent's scan
    finds it, the same worker drives it there, and the hub keeps one record with its
    history; a ticket prints at the new address."""
    mac = "02:00:5e:00:00:42"
    table = tmp_path / "arp"
    write_arp_table(table, {"127.0.0.1": mac})
    old = AnonymousPrinter("Fryer")
    await old.start()
    config = DiscoveryConfig(
        scan=["127.0.0.2/32"], scan_ports=[old.port], interval=0.3, arp_table=table
    )
    agent = await make_agent([f"Fryer={old.address}#kitchen"], name="mac", discovery=config)
    port = old.port
    row = await wait_row(ops, "registered by MAC", identity=f"mac:{mac}/{port}", status="online")
    assert row["mac"] == mac and row["serial"] is None
    await old.set_state("paper_low")
    await wait_row(ops, "paper low", id=row["id"], status="paper_low")
    await old.stop()
    write_arp_table(table, {"127.0.0.2": mac})
    new = AnonymousPrinter("Fryer", host="127.0.0.2", port=port)
    await new.start()
    try:
        address = f"tcp://127.0.0.2:{port}"
        await wait_row(ops, "followed", id=row["id"], address=address, status="online")
        await asyncio.sleep(1.0)  # a few more scans: still one worker, one record, online
        assert [w.spec.uri for w in agent.workers] == [address]
        assert agent.workers[0].spec.station == "kitchen"
        assert [(p["id"], p["status"]) for p in await listed(ops)] == [(row["id"], "online")]
        assert "paper_low" in [h["status"] for h in await history(hub, row["id"])]
        ack = await ops.call(
            "job:submit",
            {"printer_id": row["id"], "document": {"blocks": [{"type": "text", "text": "fries"}]}},
        )
        assert ack["ok"], ack
        assert (await new.wait_for_receipts(1))[0].text == "fries"
    finally:
        await new.stop()


async def test_identity_learned_late_renames_the_record(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Switched off when the agent started: registered under its address; when it comes
    on and tells its serial, that same record is renamed, not a second one made."""
    sim = SimulatedPrinter("Counter", serial="CTR-9")
    await sim.start()
    await sim.set_state("offline")
    try:
        agent = await make_agent([f"Counter={sim.address}"], name="late", identify_wait=0.2)
        row = await wait_row(ops, "registered by address", identity=sim.address)
        await sim.set_state("online")
        renamed = await wait_row(ops, "renamed", id=row["id"], identity="serial:CTR-9")
        assert renamed["serial"] == "CTR-9" and len(await listed(ops)) == 1
        assert agent.workers[0].identity == "serial:CTR-9"
    finally:
        await sim.stop()


async def test_identity_is_remembered_across_agent_restarts(
    ops: OpsClient, hub: RunningHub, tmp_path: Path
) -> None:
    """Known once, an identity is kept in the data dir: a printer that is off when the
    agent starts next time is still registered under its serial."""
    key = await hub.hub.create_license()
    async with SimulatedPrinter("Pass", serial="PASS-1") as sim:

        def agent() -> Agent:
            return Agent(
                hub_url=hub.url,
                license_key=key,
                data_dir=tmp_path / "agent",
                printers=[parse_printer_spec(f"Pass={sim.address}")],
                poll_interval=0.2,
                spool_synchronous="NORMAL",
                identify_wait=0.3,
            )

        first = agent()
        await first.start()
        row = await wait_row(ops, "registered", identity="serial:PASS-1", status="online")
        await first.stop()
        await sim.set_state("offline")
        second = agent()
        await second.start()
        try:
            await wait_row(ops, "offline, same record", id=row["id"], status="offline")
            assert second.workers[0].identity == "serial:PASS-1"
            assert len(await listed(ops)) == 1
        finally:
            await second.stop()


async def test_printer_without_gs_i_is_known_by_its_address(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    async with AnonymousPrinter("Cheap") as sim:
        await make_agent([f"Cheap={sim.address}"], name="anon")
        row = await wait_row(ops, "registered", name="Cheap", status="online")
    assert row["identity"] == sim.address and row["serial"] is None
    assert row["capabilities"]["profile"] == "default" and row["capabilities"]["columns"] == 42


async def test_capabilities_follow_the_model_or_the_user(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """A TM-T20II gets its profile (48 columns); ?profile= and ?columns= override it, and
    documents are laid out for the width."""
    async with (
        SimulatedPrinter("Wide", serial="W-1", model="TM-T20II") as wide,
        SimulatedPrinter("Narrow", serial="N-1", model="TM-T20II") as narrow,
    ):
        await make_agent(
            [f"Wide={wide.address}", f"Narrow={narrow.address}?profile=POS-5890&columns=30"],
            name="caps",
        )
        w = await wait_row(ops, "wide", identity="serial:W-1", status="online")
        n = await wait_row(ops, "narrow", identity="serial:N-1", status="online")
        assert (w["profile"], w["capabilities"]["columns"], w["capabilities"]["source"]) == (
            "TM-T20II",
            48,
            "model",
        )
        assert w["capabilities"]["paper_width_mm"] == 72 and w["capabilities"]["qr"] is True
        assert (n["profile"], n["capabilities"]["columns"], n["capabilities"]["source"]) == (
            "POS-5890",
            30,
            "user",
        )
        assert n["capabilities"]["qr"] is False
        for row in (w, n):
            ack = await ops.call(
                "job:submit",
                {"printer_id": row["id"], "document": {"blocks": [{"type": "line"}]}},
            )
            assert ack["ok"], ack
        assert (await wide.wait_for_receipts(1))[0].text == "-" * 48
        assert (await narrow.wait_for_receipts(1))[0].text == "-" * 30


async def test_every_fault_reaches_operators_within_a_poll(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Each state the printer can be in shows up as the printer's status and flags."""
    async with SimulatedPrinter("Line", serial="LINE-1") as sim:
        await make_agent([f"Line={sim.address}"], name="faults", poll_interval=0.1)
        row = await wait_row(ops, "online", identity="serial:LINE-1", status="online")
        for state in [*STATUSES, "online"]:
            await sim.set_state(state)
            update = await ops.wait_for(
                "printer:update",
                lambda p, s=state: p["id"] == row["id"] and p["status"] == s,
                timeout=3,
            )
            if state == "offline":
                assert update["flags"] == {"unreachable": True}
            elif state == "cover_open":
                assert update["flags"]["cover_open"] is True
            elif state == "error":
                assert update["flags"]["cutter_error"] is True


async def test_printer_that_never_answers_status_is_shown_as_such(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Not "always online": status unknown, status_supported false, and it still prints."""
    async with SimulatedPrinter("Mute", serial="MUTE-1", status_supported=False) as sim:
        await make_agent([f"Mute={sim.address}"], name="mute")
        row = await wait_row(ops, "registered", identity="serial:MUTE-1")
        row = await wait_row(ops, "unsupported", id=row["id"], status_supported=False)
        assert row["status"] == "unknown" and row["flags"] == {"status_unsupported": True}
        ack = await ops.call(
            "job:submit",
            {"printer_id": row["id"], "document": {"blocks": [{"type": "text", "text": "hi"}]}},
        )
        assert ack["ok"], ack
        await ops.wait_for(
            "job:update", lambda j: j["id"] == ack["job"]["id"] and j["status"] == "completed"
        )
        assert (await sim.wait_for_receipts(1))[0].text == "hi"


async def test_another_printer_at_the_same_address_is_another_printer(
    ops: OpsClient, hub: RunningHub, tmp_path: Path
) -> None:
    """The printer at an address is swapped for another one: the new serial gets its
    own record; the old printer's record and history are left alone."""
    key = await hub.hub.create_license()

    def agent(address: str) -> Agent:
        return Agent(
            hub_url=hub.url,
            license_key=key,
            data_dir=tmp_path / "agent",
            printers=[parse_printer_spec(f"Till={address}")],
            poll_interval=0.2,
            spool_synchronous="NORMAL",
            identify_wait=0.0,  # registered under the remembered identity first
        )

    async with SimulatedPrinter("Till", serial="OLD-1") as old:
        first = agent(old.address)
        await first.start()
        old_row = await wait_row(ops, "old printer", identity="serial:OLD-1", status="online")
        await first.stop()
        port = old.port
    async with SimulatedPrinter("Till", serial="NEW-2", port=port) as new:
        second = agent(new.address)
        await second.start()
        try:
            new_row = await wait_row(ops, "new printer", identity="serial:NEW-2", status="online")
            assert new_row["id"] != old_row["id"]
            kept = await wait_row(ops, "old kept", id=old_row["id"], agent_connected=False)
            assert kept["identity"] == "serial:OLD-1" and kept["serial"] == "OLD-1"
        finally:
            await second.stop()
