"""Printers added at run time (issue 16): ``printer:add`` asks the connected agent to
drive a printer by its address; it registers like any other, prints, and is still
there after the agent restarts; removing it makes the agent forget it. Managers and
admins only; hostile or unsupported addresses are refused before any agent is asked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pm_agent.added_printers import FILE_NAME as ADDED_FILE
from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import OpsEvent
from pm_core.protocol.printer_addresses import MAX_PRINTER_URI
from pm_hub.server import RunningHub
from tests.e2e.test_printers_come_and_go import pm
from tests.hub.test_http_api import request
from tests.support.helpers import OpsClient, eventually


@asynccontextmanager
async def running_agent(
    hub: RunningHub, key: str, data_dir: Path, printers: list[str]
) -> AsyncIterator[Agent]:
    agent = Agent(
        hub_url=hub.url,
        license_key=key,
        data_dir=data_dir,
        printers=[parse_printer_spec(p) for p in printers],
        name="backoffice",
        poll_interval=0.2,
        spool_synchronous="NORMAL",
        identify_wait=1.0,
    )
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


def role_token(hub: RunningHub, role: str) -> str:
    assert hub.hub.tokens is not None
    return hub.hub.tokens.create(role=role, sub=f"test-{role}", branch_ids=[1])


async def printer_named(ops: OpsClient, name: str) -> dict[str, Any] | None:
    listed = await ops.call(OpsEvent.PRINTERS_LIST, {})
    return next((p for p in listed["printers"] if p["name"] == name), None)


async def online(ops: OpsClient, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await printer_named(ops, name)
        return found if found and found["status"] == "online" else None

    found: dict[str, Any] = await eventually(check, what=f"{name} online")
    return found


async def agent_id(ops: OpsClient) -> int:
    listed = await ops.call(OpsEvent.AGENTS_LIST, {})
    return int(next(a["id"] for a in listed["agents"] if a["connected"]))


async def test_an_added_printer_prints_stays_after_a_restart_and_is_forgotten_when_removed(
    hub: RunningHub, ops: OpsClient, fleet: SimulatorFleet, tmp_path: Path
) -> None:
    kitchen, bar = fleet.printers
    key = await hub.hub.create_license()
    data_dir = tmp_path / "box"
    configured = [f"Kitchen-1=tcp://127.0.0.1:{kitchen.port}#kitchen"]
    async with running_agent(hub, key, data_dir, configured) as agent:
        await online(ops, "Kitchen-1")
        ack = await ops.call(
            OpsEvent.PRINTER_ADD,
            {
                "agent_id": await agent_id(ops),
                "uri": f"tcp://127.0.0.1:{bar.port}",
                "name": "Bar",
                "station": "Bar",
            },
        )
        assert ack["ok"], ack
        assert ack["printer"]["name"] == "Bar" and ack["printer"]["station"] == "bar"
        printer_id = ack["printer"]["id"]
        await online(ops, "Bar")
        test = await ops.call(OpsEvent.PRINTER_TEST, {"printer_id": printer_id})
        assert test["ok"], test
        receipts = await bar.wait_for_receipts(1, timeout=10)
        assert "TEST PAGE" in receipts[0].text.upper()
        # The same address again: the agent says it drives it already.
        again = await ops.call(
            OpsEvent.PRINTER_ADD,
            {"agent_id": await agent_id(ops), "uri": f"tcp://127.0.0.1:{bar.port}"},
        )
        assert again["error"]["code"] == "conflict", again
        assert "already" in again["error"]["message"]
        assert len(agent.workers) == 2
    kept = json.loads((data_dir / ADDED_FILE).read_text())
    assert [e["name"] for e in kept] == ["Bar"]

    # The box restarts with the same command line: Bar is driven again, same hub id.
    async with running_agent(hub, key, data_dir, configured) as agent:
        again_online = await online(ops, "Bar")
        assert again_online["id"] == printer_id
        assert {w.spec.name for w in agent.workers} == {"Kitchen-1", "Bar"}
        removed = await ops.call(OpsEvent.PRINTER_REMOVE, {"printer_id": printer_id})
        assert removed["ok"], removed
        await eventually(
            lambda: [w.spec.name for w in agent.workers] == ["Kitchen-1"],
            what="the agent forgets Bar",
        )
        assert json.loads((data_dir / ADDED_FILE).read_text()) == []
        assert await printer_named(ops, "Bar") is None

        # Added again by an operator: the same printer comes back (its id and history),
        # under the name given now; an agent alone could not bring it back.
        back = await ops.call(
            OpsEvent.PRINTER_ADD,
            {"agent_id": await agent_id(ops), "uri": f"tcp://127.0.0.1:{bar.port}",
             "name": "Bar-2"},
        )  # fmt: skip
        assert back["ok"], back
        assert back["printer"]["id"] == printer_id and back["printer"]["name"] == "Bar-2"
        await online(ops, "Bar-2")


async def test_only_managers_add_printers_and_bad_addresses_are_refused(
    hub: RunningHub, ops: OpsClient, fleet: SimulatorFleet, tmp_path: Path
) -> None:
    key = await hub.hub.create_license()
    async with running_agent(hub, key, tmp_path / "box", []) as agent:
        await eventually(lambda: agent.connected, what="agent connected")
        agent_ident = await agent_id(ops)
        good = {"agent_id": agent_ident, "uri": f"tcp://127.0.0.1:{fleet.printers[1].port}"}
        for role in ("viewer", "operator"):
            client = await OpsClient(hub.url, role_token(hub, role)).connect()
            try:
                answer = await client.call(OpsEvent.PRINTER_ADD, good)
            finally:
                await client.close()
            assert answer["error"]["code"] == "forbidden", (role, answer)
            assert f"role {role} may not add printers" in answer["error"]["message"]
        status, body = await request(
            hub, "POST", "/api/v1/printers", role_token(hub, "operator"), good
        )
        assert status == 403 and body["error"]["code"] == "forbidden"

        bad = [
            "",
            "   ",
            "http://127.0.0.1:9100",
            "https://example.invalid/print",
            "ftp://127.0.0.1/",
            "tcp://",
            "tcp://127.0.0.1:99999",
            "tcp://127.0.0.1:9100/admin",
            "tcp://user@127.0.0.1:9100",
            "tcp://127.0.0.1:9100?evil=1",
            "tcp://127.0.0.1\n:9100",
            "tcp://" + "a" * MAX_PRINTER_URI,
            "usb://zz:01",
            "file:///etc/passwd",
            "file:///dev/../etc/shadow",
            "serial://socket://127.0.0.1:1/../x",
            "serial://loop://",
            42,
            None,
        ]
        for uri in bad:
            answer = await ops.call(OpsEvent.PRINTER_ADD, {"agent_id": agent_ident, "uri": uri})
            assert answer["error"]["code"] == "invalid_payload", (uri, answer)
        status, body = await request(
            hub,
            "POST",
            "/api/v1/printers",
            role_token(hub, "manager"),
            {"agent_id": agent_ident, "uri": "http://127.0.0.1:9100"},
        )
        assert status == 400 and body["error"]["code"] == "invalid_payload"
        unknown = await ops.call(OpsEvent.PRINTER_ADD, {**good, "agent_id": 999})
        assert unknown["error"]["code"] == "offline"
        assert agent.workers == []  # nothing was added by any of them
        assert not (tmp_path / "box" / ADDED_FILE).exists()

        # From the shell (pm printer add, over HTTP with the hub's admin token).
        data = str(hub.hub.settings.data_dir)
        code, out, err = await pm(
            "printer",
            "add",
            "--agent",
            str(agent_ident),
            good["uri"],
            "--name",
            "Bar",
            "--station",
            "bar",
            "--hub",
            hub.url,
            "--data-dir",
            data,
        )
        assert code == 0, err
        assert "Bar (station bar," in out and f"added on agent {agent_ident}" in out
        code, out, err = await pm(
            "printer",
            "add",
            "--agent",
            str(agent_ident),
            "http://127.0.0.1:1",
            "--hub",
            hub.url,
            "--data-dir",
            data,
        )
        assert code != 0 and "use tcp://HOST:PORT" in err and "Traceback" not in err
        assert [w.spec.name for w in agent.workers] == ["Bar"]


async def test_an_added_printer_removed_while_its_agent_was_away_is_forgotten_at_restart(
    hub: RunningHub, ops: OpsClient, fleet: SimulatorFleet, tmp_path: Path
) -> None:
    kitchen, bar = fleet.printers
    key = await hub.hub.create_license()
    configured = [f"Kitchen-1=tcp://127.0.0.1:{kitchen.port}#kitchen"]
    async with running_agent(hub, key, tmp_path / "box", configured):
        await online(ops, "Kitchen-1")
        ack = await ops.call(
            OpsEvent.PRINTER_ADD,
            {"agent_id": await agent_id(ops), "uri": f"tcp://127.0.0.1:{bar.port}", "name": "Bar"},
        )
        assert ack["ok"], ack
    removed = await ops.call(OpsEvent.PRINTER_REMOVE, {"printer_id": ack["printer"]["id"]})
    assert removed["ok"], removed
    async with running_agent(hub, key, tmp_path / "box", configured) as agent:
        await eventually(
            lambda: [w.spec.name for w in agent.workers] == ["Kitchen-1"],
            what="the agent forgets Bar when the hub refuses it",
        )
        assert json.loads((tmp_path / "box" / ADDED_FILE).read_text()) == []
        assert await printer_named(ops, "Bar") is None
        await online(ops, "Kitchen-1")
