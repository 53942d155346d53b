"""Who a printer is and what it can do, through a real hub: identity by serial
(GS I), a printer that moved keeps its id and history, capabilities from the
model or the user, and true status reaching operators."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from pm_agent.agent import Agent
from pm_agent.capabilities import profile_for_model
from pm_agent.discovery import DiscoveryConfig
from pm_agent.escpos_status import STATUSES
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.printer import SimulatedPrinter
from pm_hub.server import RunningHub
from pm_hub.store import printers as printer_store
from tests.conftest import AgentFactory
from tests.support.helpers import AnonymousPrinter, OpsClient, eventually, write_arp_table


def png(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "black").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


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
    own record; the old printer's record and history are kept, retired (its agent no
    longer drives it: no offline alert for ever), and it comes back if found again."""
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
            old_id = old_row["id"]

            async def retired() -> dict[str, Any] | None:
                listed = await ops.call("printers:list", {})
                if any(p["id"] == old_id for p in listed["printers"]):
                    return None
                row: dict[str, Any] | None = await hub.hub.db.read(
                    lambda d: dict(
                        d.execute("SELECT * FROM printers WHERE id = ?", (old_id,)).fetchone()
                    )
                )
                return row

            kept = await eventually(retired, what="old printer retired, its record kept")
            assert kept["identity"] == "serial:OLD-1" and kept["serial"] == "OLD-1"
            assert kept["retired_by"] == "agent"
        finally:
            await second.stop()


async def test_operator_chooses_the_profile_at_run_time(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory, admin_token: str
) -> None:
    """``printer:configure {profile}`` (and HTTP PATCH): checked against python-escpos's
    database, kept by the hub, used by the agent for the next ticket; null goes back to
    the model's profile. Set while the agent is away, it is applied when it returns."""
    line = {"blocks": [{"type": "line"}]}
    async with SimulatedPrinter("Pass", serial="P-9", model="TM-T20II") as sim:
        first = await make_agent([f"Pass={sim.address}"], name="profile-1")
        row = await wait_row(ops, "registered", identity="serial:P-9", status="online")
        assert (row["profile"], row["profile_override"]) == ("TM-T20II", None)

        bad = await ops.call("printer:configure", {"printer_id": row["id"], "profile": "TM-NOPE"})
        assert bad["error"]["code"] == "invalid_payload" and "TM-T88V" in bad["error"]["message"]
        ack = await ops.call("printer:configure", {"printer_id": row["id"], "profile": "POS-5890"})
        assert ack["ok"] and ack["profile_applied"] is True, ack
        printer = ack["printer"]
        assert (printer["profile_override"], printer["profile"]) == ("POS-5890", "POS-5890")
        assert printer["capabilities"]["columns"] == 32 and printer["capabilities"]["qr"] is False
        assert (await ops.call("job:submit", {"printer_id": row["id"], "document": line}))["ok"]
        assert (await sim.wait_for_receipts(1))[-1].text == "-" * 32

        async with (
            aiohttp.ClientSession() as session,
            session.patch(
                f"{hub.url}/api/v1/printers/{row['id']}",
                json={"profile": None},
                headers={"Authorization": f"Bearer {admin_token}"},
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert (body["printer"]["profile_override"], body["printer"]["profile"]) == (
            None,
            "TM-T20II",
        )
        assert (await ops.call("job:submit", {"printer_id": row["id"], "document": line}))["ok"]
        assert (await sim.wait_for_receipts(2))[-1].text == "-" * 48

        await first.stop()
        away = await ops.call("printer:configure", {"printer_id": row["id"], "profile": "ZJ-5870"})
        assert away["ok"] and away["profile_applied"] is False
        await make_agent([f"Pass={sim.address}"], name="profile-2")
        back = await wait_row(ops, "applied on return", id=row["id"], profile="ZJ-5870")
        assert back["profile_override"] == "ZJ-5870" and back["capabilities"]["columns"] == 32
        assert (await ops.call("job:submit", {"printer_id": row["id"], "document": line}))["ok"]
        assert (await sim.wait_for_receipts(3))[-1].text == "-" * 32


async def test_tickets_are_made_for_the_printers_profile(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Images are as wide as the printer's paper in dots (a TM-T88V: 512, not 42 x 12),
    and a printer without native QR codes (a POS-5890) gets the code as an image."""
    document = {
        "blocks": [
            {"type": "image", "png_base64": png(800, 100)},
            {"type": "qr", "data": "https://example.com/t/7"},
        ]
    }
    async with (
        SimulatedPrinter("Wide", serial="W-3", model="TM-T88V") as wide,
        SimulatedPrinter("Small", serial="S-3", model="POS-5890", profile="POS-5890") as small,
    ):
        await make_agent([f"Wide={wide.address}", f"Small={small.address}"], name="layout")
        for serial in ("W-3", "S-3"):
            row = await wait_row(ops, serial, identity=f"serial:{serial}", status="online")
            ack = await ops.call("job:submit", {"printer_id": row["id"], "document": document})
            assert ack["ok"], ack
        wide_lines = (await wide.wait_for_receipts(1))[0].text.splitlines()
        small_lines = (await small.wait_for_receipts(1))[0].text.splitlines()
    assert wide_lines == ["[IMAGE 512x64]", "[QR https://example.com/t/7]"]
    assert small_lines[0] == "[IMAGE 384x48]"
    assert small_lines[1].startswith("[IMAGE ") and "[QR" not in "".join(small_lines)


@pytest.mark.parametrize(
    ("reported", "profile"),
    [
        ("TM-T20II", "TM-T20II"),  # GS I, USB MDL
        ("EPSON TM-T20II Receipt", "TM-T20II"),  # mDNS TXT ty
        ("(Star TSP650)", "TSP600"),  # LPD product
        ("TM-T88VI", "TM-T88V"),
        ("POS58 Printer", "POS-5890"),
        ("LaserJet 4000", None),
        ("", None),
    ],
)
def test_a_reported_model_picks_its_profile(reported: str, profile: str | None) -> None:
    assert profile_for_model(reported) == profile


async def test_agent_answers_a_bad_profile_request_with_an_error(
    hub: RunningHub, ops: OpsClient, make_agent: AgentFactory
) -> None:
    async with SimulatedPrinter("Pass", serial="P-10") as sim:
        agent = await make_agent([f"Pass={sim.address}"], name="bad-profile")
        row = await wait_row(ops, "registered", identity="serial:P-10", status="online")
        link = hub.hub.agents[next(iter(hub.hub.agents))]
        ask = hub.hub.dispatcher.ask_agent
        for payload, code in [
            ({"printer_id": "1"}, "invalid_payload"),
            ({"printer_id": row["id"], "profile": 5}, "invalid_payload"),
            ({"printer_id": row["id"], "profile": "TM-NOPE"}, "invalid_payload"),
            ({"printer_id": row["id"] + 100, "profile": None}, "not_found"),
        ]:
            ack = await ask(link, "printer:configure", payload)
            assert ack["error"]["code"] == code, (payload, ack)
        assert agent.workers[0].capabilities.profile == "default"
        wrong = await ops.call("printer:configure", {"printer_id": row["id"], "profile": 5})
        assert wrong["error"]["code"] == "invalid_payload"
