"""The branch box end to end: real hub, real agent, simulated printers, real sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from pm_agent.agent import Agent, AgentAuthError
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import Namespace, parse_correlation_id
from pm_hub.server import RunningHub
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually, receipt_doc


async def printers_of(ops: OpsClient) -> list[dict[str, Any]]:
    ack = await ops.call("printers:list", {})
    assert ack["ok"], ack
    return ack["printers"]


async def wait_printers(ops: OpsClient, count: int, status: str = "online") -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]] | None:
        printers = await printers_of(ops)
        good = [p for p in printers if p["status"] == status and p["agent_connected"]]
        return printers if len(good) >= count else None

    return await eventually(ready, what=f"{count} printers {status}")


# -- authentication ---------------------------------------------------------------


async def test_operator_with_valid_token_connects(ops: OpsClient) -> None:
    """An admin token gets in and may list printers."""
    ack = await ops.call("whoami", {})
    assert ack["ok"] and ack["role"] == "admin"


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "eyJhbGciOiJIUzI1NiJ9.e30.bad"])
async def test_operator_with_bad_token_is_refused(hub: RunningHub, token: str | None) -> None:
    """Missing or forged tokens are refused at connect with auth_failed."""
    client = OpsClient(hub.url, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.connect_error["message"] == "auth_failed"
    assert client.connect_error["data"]["code"] == "auth_failed"


async def test_expired_and_foreign_tokens_are_refused(hub: RunningHub) -> None:
    """A token past its exp, or signed with another secret, does not get in."""
    from pm_hub.auth import TokenIssuer

    assert hub.hub.tokens is not None
    expired = hub.hub.tokens.create(role="admin", ttl_seconds=-10)
    foreign = TokenIssuer(b"another-secret-that-is-long-enough-for-hs256").create(role="admin")
    for token, reason in ((expired, "expired"), (foreign, "invalid")):
        client = OpsClient(hub.url, token)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect()
        assert reason in client.connect_error["data"]["message"]


async def test_agent_with_unknown_license_is_refused(
    hub: RunningHub, make_agent: AgentFactory
) -> None:
    with pytest.raises(AgentAuthError, match="unknown or revoked"):
        await make_agent([], license_key="pmk_nonsense")


async def test_license_binds_to_first_device(hub: RunningHub, make_agent: AgentFactory) -> None:
    """A license key used by one device cannot be reused by another."""
    key = await hub.hub.create_license()
    first = await make_agent([], name="first", license_key=key, device_id="box-1")
    assert first.connected
    with pytest.raises(AgentAuthError, match="bound to another device"):
        await make_agent([], name="second", license_key=key, device_id="box-2")


# -- printers and test prints -----------------------------------------------------------


async def test_agent_registers_printers_that_operators_see(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    assert {p["name"] for p in printers} == {"Kitchen-1", "Bar"}
    assert {p["address"] for p in printers} == {f"tcp://127.0.0.1:{p.port}" for p in fleet.printers}
    assert all(p["station"] == "kitchen" for p in printers)


async def test_test_print_reaches_the_printer_and_reports_back(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
    ack = await ops.call("printer:test", {"printer_id": kitchen["id"]})
    assert ack["ok"], ack
    cid = ack["correlation_id"]
    parts = parse_correlation_id(cid)
    assert parts is not None and parts.kind == "test"
    done = await ops.wait_for("printer:test:completed", lambda d: d["correlation_id"] == cid)
    assert done["ok"] is True and done["printer_id"] == kitchen["id"]
    assert done["duration_ms"] > 0
    receipts = await fleet.printers[0].wait_for_receipts(1)
    assert "PRINTERMASTER TEST PAGE" in receipts[0].text
    assert "Kitchen-1" in receipts[0].text
    assert fleet.printers[1].receipts == []


async def test_job_prints_and_ends_completed(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    bar = next(p for p in printers if p["name"] == "Bar")
    ack = await ops.call("job:submit", {"printer_id": bar["id"], "document": receipt_doc("J-1")})
    assert ack["ok"], ack
    job = ack["job"]
    assert job["status"] == "queued" and job["printer_id"] == bar["id"]
    done = await ops.wait_for(
        "job:update", lambda j: j["id"] == job["id"] and j["status"] == "completed"
    )
    assert done["error"] is None
    statuses = [d["status"] for e, d in ops.events if e == "job:update" and d["id"] == job["id"]]
    assert statuses == ["queued", "dispatched", "printing", "completed"]
    receipts = await fleet.printers[1].wait_for_receipts(1)
    assert "ticket J-1" in receipts[0].text and "2x Burger" in receipts[0].text
    assert receipts[0].cut
    listed = await ops.call("jobs:list", {"status": "completed"})
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    trail = await ops.call("job:get", {"job_id": job["id"]})
    assert [e["status"] for e in trail["job"]["events"]] == statuses


async def test_paper_out_reaches_operators(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
    await fleet.printers[0].set_state("paper_out")
    update = await ops.wait_for(
        "printer:update", lambda p: p["id"] == kitchen["id"] and p["status"] == "paper_out"
    )
    assert update["flags"].get("paper_end") is True
    await fleet.printers[0].set_state("online")
    await ops.wait_for(
        "printer:update", lambda p: p["id"] == kitchen["id"] and p["status"] == "online"
    )


async def test_offline_printer_is_reported_and_comes_back(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    bar = next(p for p in printers if p["name"] == "Bar")
    await fleet.printers[1].set_state("offline")
    await ops.wait_for(
        "printer:update", lambda p: p["id"] == bar["id"] and p["status"] == "offline"
    )
    await fleet.printers[1].set_state("online")
    await ops.wait_for("printer:update", lambda p: p["id"] == bar["id"] and p["status"] == "online")


async def test_test_print_when_agent_is_gone_answers_offline(
    ops: OpsClient, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await wait_printers(ops, 2)
    await agent.stop()
    await eventually(lambda: not ops_connected_agents(ops), what="agent gone")
    ack = await ops.call("printer:test", {"printer_id": printers[0]["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "offline"


def ops_connected_agents(ops: OpsClient) -> bool:
    updates = [d for e, d in ops.events if e == "agent:update"]
    return bool(updates) and updates[-1]["connected"]


async def test_test_print_nobody_answers_times_out(tmp_path: Any) -> None:
    """An agent that takes the request but never answers: the operator gets timeout."""
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    running = await start_hub(hub_settings(tmp_path, request_timeout=0.5))
    try:
        key = await running.hub.create_license()
        silent = socketio.AsyncClient(reconnection=False)

        @silent.on("printer:test", namespace=Namespace.AGENT)
        async def ignore(data: Any = None) -> dict[str, Any]:
            return {"ok": True}  # delivered, then nothing ever comes back

        await silent.connect(
            running.url,
            namespaces=[Namespace.AGENT],
            auth={"license_key": key, "device_id": "silent-box"},
            transports=["websocket"],
        )
        reg = await silent.call(
            "printer:discovered",
            {"name": "Mute", "address": "tcp://127.0.0.1:1"},
            namespace=Namespace.AGENT,
        )
        assert reg["ok"], reg
        assert running.hub.tokens is not None
        ops = await OpsClient(running.url, running.hub.tokens.create(role="admin")).connect()
        ack = await ops.call("printer:test", {"printer_id": reg["printer_id"]})
        assert ack["ok"]
        done = await ops.wait_for(
            "printer:test:completed", lambda d: d["correlation_id"] == ack["correlation_id"]
        )
        assert done["ok"] is False and done["error"]["code"] == "timeout"
        # A late answer is ignored politely, not a crash.
        late = await silent.call(
            "printer:test:result",
            {"correlation_id": ack["correlation_id"], "ok": True},
            namespace=Namespace.AGENT,
        )
        assert late == {"ok": True, "late": True}
        await ops.close()
        await silent.disconnect()
    finally:
        await running.stop()


# -- bad input -------------------------------------------------------------------------

BAD_OPS_CALLS: list[tuple[str, Any, str]] = [
    ("printers:list", "not an object", "invalid_payload"),
    ("printers:list", {"bogus": 1}, "invalid_payload"),
    ("printer:test", {}, "invalid_payload"),
    ("printer:test", {"printer_id": "one"}, "invalid_payload"),
    ("printer:test", {"printer_id": 999}, "not_found"),
    ("job:submit", {"printer_id": 1}, "invalid_payload"),
    ("job:submit", {"document": {"blocks": []}}, "invalid_payload"),
    ("job:submit", {"printer_id": 999, "document": {"blocks": [{"type": "cut"}]}}, "not_found"),
    (
        "job:submit",
        {"printer_id": 1, "document": {"blocks": [{"type": "nope"}]}},
        "invalid_payload",
    ),
    ("job:submit", {"printer_id": 1, "document": {"raw_base64": "%%%"}}, "invalid_payload"),
    (
        "job:submit",
        {"station": "x" * 500, "document": {"blocks": [{"type": "cut"}]}},
        "invalid_payload",
    ),
    ("jobs:list", {"status": "lost"}, "invalid_payload"),
    ("jobs:list", {"limit": -4}, "invalid_payload"),
    ("job:get", {"job_id": 12345}, "not_found"),
    ("no:such:event", {}, "invalid_payload"),
]


async def test_bad_payloads_get_error_acks_and_the_hub_keeps_serving(
    ops: OpsClient, agent: Agent
) -> None:
    await wait_printers(ops, 2)
    for event, payload, code in BAD_OPS_CALLS:
        ack = await ops.call(event, payload)
        assert ack["ok"] is False, (event, payload, ack)
        assert ack["error"]["code"] == code, (event, payload, ack)
        assert "Traceback" not in ack["error"]["message"]
    assert len(await printers_of(ops)) == 2
    jobs = await ops.call("jobs:list", {})
    assert jobs["jobs"] == []  # nothing half-written


async def test_oversized_message_drops_only_that_client(
    hub: RunningHub, admin_token: str, ops: OpsClient
) -> None:
    """A message over the size limit closes that client's connection; others carry on."""
    big = await OpsClient(hub.url, admin_token).connect()
    with pytest.raises((socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError)):
        await big.call("printers:list", {"x": "y" * (3 * 1024 * 1024)}, timeout=3)
    await eventually(lambda: not big.sio.connected, what="oversized client dropped")
    assert (await ops.call("printers:list", {}))["ok"]
    await big.close()


async def test_bad_agent_payloads_get_error_acks(hub: RunningHub) -> None:
    key = await hub.hub.create_license()
    raw = socketio.AsyncClient(reconnection=False)
    await raw.connect(
        hub.url,
        namespaces=[Namespace.AGENT],
        auth={"license_key": key, "device_id": "raw-box"},
        transports=["websocket"],
    )
    try:
        cases = [
            ("printer:discovered", {"name": "x"}, "invalid_payload"),
            ("printer:discovered", {"address": "no-scheme"}, "invalid_payload"),
            ("printer:status", {"printer_id": 1, "status": "melted"}, "invalid_payload"),
            ("printer:status", {"printer_id": 77, "status": "online"}, "not_found"),
            ("print:job:result", {"job_id": 5, "ok": True}, "not_found"),
            ("printer:test:result", {"ok": True}, "invalid_payload"),
            ("whatever", None, "invalid_payload"),
        ]
        for event, payload, code in cases:
            ack = await raw.call(event, payload, namespace=Namespace.AGENT, timeout=5)
            assert ack["ok"] is False and ack["error"]["code"] == code, (event, ack)
        ok = await raw.call(
            "printer:discovered", {"address": "tcp://127.0.0.1:9"}, namespace=Namespace.AGENT
        )
        assert ok["ok"] and isinstance(ok["printer_id"], int)
    finally:
        await raw.disconnect()


async def test_agent_reconnects_after_hub_restart(tmp_path: Any, fleet: SimulatorFleet) -> None:
    """The hub goes away and comes back on the same port: the agent re-registers."""
    from pm_agent.printer_uri import parse_printer_spec
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    settings = hub_settings(tmp_path / "hub")
    running = await start_hub(settings)
    port = running.port
    key = await running.hub.create_license()
    agent = Agent(
        hub_url=running.url,
        license_key=key,
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"tcp://127.0.0.1:{fleet.printers[0].port}")],
        poll_interval=0.2,
        spool_synchronous="NORMAL",
    )
    await agent.start()
    try:
        await eventually(lambda: len(running.hub.agents) == 1, what="agent attached")
        await running.stop()
        await eventually(lambda: not agent.connected, what="agent noticed")
        settings.port = port
        running = await start_hub(settings)
        await eventually(
            lambda: any(link.printer_ids for link in running.hub.agents.values()),
            timeout=20,
            what="agent re-registered",
        )
        assert agent.health.reconnects >= 1
        printer = next(iter(running.hub.printers.values()))
        await eventually(lambda: running.hub.printers[printer["id"]]["status"] == "online")
    finally:
        await agent.stop()
        await running.stop()


async def test_viewer_may_look_but_not_print(hub: RunningHub, agent: Agent) -> None:
    assert hub.hub.tokens is not None
    viewer = await OpsClient(
        hub.url, hub.hub.tokens.create(role="viewer", branch_ids=[1])
    ).connect()
    try:
        printers = await wait_printers(viewer, 2)
        ack = await viewer.call("printer:test", {"printer_id": printers[0]["id"]})
        assert ack["error"]["code"] == "forbidden"
    finally:
        await viewer.close()


async def test_other_branch_sees_nothing(hub: RunningHub, agent: Agent, ops: OpsClient) -> None:
    """A token for branch 2 sees none of branch 1's printers or events."""
    await wait_printers(ops, 2)
    assert hub.hub.tokens is not None
    other = await OpsClient(
        hub.url, hub.hub.tokens.create(role="operator", branch_ids=[2])
    ).connect()
    try:
        assert await printers_of(other) == []
        printer_id = next(iter(hub.hub.printers))
        ack = await other.call("printer:test", {"printer_id": printer_id})
        assert ack["error"]["code"] == "not_found"
        await asyncio.sleep(0.6)  # several status polls happen meanwhile
        assert other.events == []
    finally:
        await other.close()


async def test_a_flood_of_requests_is_rate_limited(tmp_path: Any) -> None:
    """Past the per-connection limit requests are refused with rate_limited; the
    connection stays usable once the caller slows down."""
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    running = await start_hub(hub_settings(tmp_path, ops_rate_limit=20))
    try:
        assert running.hub.tokens is not None
        ops = await OpsClient(running.url, running.hub.tokens.create(role="admin")).connect()
        acks = await asyncio.gather(*(ops.call("printers:list", {}) for _ in range(100)))
        codes = [a["error"]["code"] for a in acks if not a["ok"]]
        assert codes and set(codes) == {"rate_limited"}
        assert sum(a["ok"] for a in acks) >= 40  # the burst allowance went through
        await asyncio.sleep(0.2)
        assert (await ops.call("printers:list", {}))["ok"]
        await ops.close()
    finally:
        await running.stop()
