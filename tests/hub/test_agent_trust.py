"""Agents are held to what they own (issue 12, findings 4 to 6): a job's outcome comes
only from the agent that holds it, a printer moves to another agent only when its
agent is gone (and says so), and a device id belongs to its license."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import socketio

from pm_core.protocol import AgentEvent, OpsEvent
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.raw_agent import RawAgent

RawAgentFactory = Callable[..., Awaitable[RawAgent]]


@pytest.fixture
async def raw_agent(hub: RunningHub) -> AsyncIterator[RawAgentFactory]:
    made: list[RawAgent] = []

    async def make(device_id: str, license_key: str | None = None) -> RawAgent:
        key = license_key or await hub.hub.create_license()
        agent = await RawAgent(hub.url, key, device_id).connect()
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.close()


async def job_status(ops: OpsClient, job_id: int) -> str:
    ack = await ops.call(OpsEvent.JOB_GET, {"job_id": job_id})
    return str(ack["job"]["status"])


async def test_an_agent_cannot_finish_a_job_it_never_held(
    hub: RunningHub, ops: OpsClient, raw_agent: RawAgentFactory
) -> None:
    holder = await raw_agent("kitchen-box")
    ack = await holder.register("serial:KITCHEN-1")
    assert ack["ok"], ack
    printer_id = ack["printer_id"]
    submitted = await ops.call(
        OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("T4")}
    )
    job_id = submitted["job"]["id"]
    await eventually(lambda: holder.jobs, what="the job reached its agent")
    other = await raw_agent("bar-box")  # a second agent of the same branch
    for event, payload in (
        (AgentEvent.PRINT_JOB_RESULT, {"job_id": job_id, "ok": True, "status": "completed"}),
        (AgentEvent.PRINT_JOB_STATUS, {"job_id": job_id, "status": "printing"}),
    ):
        answer = await other.call(event, payload)
        assert answer["ok"] is False and answer["error"]["code"] == "forbidden", answer
    assert await job_status(ops, job_id) in ("queued", "dispatched")  # not "completed"

    # The agent that holds it still can.
    done = await holder.call(
        AgentEvent.PRINT_JOB_RESULT, {"job_id": job_id, "ok": True, "status": "completed"}
    )
    assert done["ok"], done
    assert await job_status(ops, job_id) == "completed"


async def test_a_printer_moves_only_when_its_agent_is_gone(
    hub: RunningHub, ops: OpsClient, raw_agent: RawAgentFactory
) -> None:
    owner = await raw_agent("kitchen-box")
    first = await owner.register("serial:KITCHEN-1", name="Kitchen-1")
    intruder = await raw_agent("other-box")
    claim = await intruder.register("serial:KITCHEN-1", name="Kitchen-1")
    assert claim["ok"] is False and claim["error"]["code"] == "conflict", claim
    assert "driven by agent" in claim["error"]["message"]
    row = hub.hub.printers[first["printer_id"]]
    assert row["agent_id"] == hub.hub.agents[min(hub.hub.agents)].agent_id

    # Tickets for the printer still go to its own agent.
    await ops.call(
        OpsEvent.JOB_SUBMIT, {"printer_id": first["printer_id"], "document": receipt_doc("T1")}
    )
    await eventually(lambda: owner.jobs, what="ticket to the owner")
    assert intruder.jobs == []

    # Its agent leaves: now the printer may move, and operators are told.
    await owner.close()
    await eventually(lambda: len(hub.hub.agents) == 1, what="owner gone")
    moved = await intruder.register("serial:KITCHEN-1", name="Kitchen-1")
    assert moved["ok"] and moved["printer_id"] == first["printer_id"], moved
    alert = await ops.wait_for("desktop:health:alert", lambda a: a["kind"] == "printer_moved")
    assert alert["details"]["printer_id"] == first["printer_id"]
    assert alert["severity"] == "warning"


async def _second_company_license(hub: RunningHub) -> str:
    """A license of another company on the same hub (a company hub serves several)."""
    import pm_hub.auth as auth

    key = auth.new_license_key()

    def write(d: object) -> None:
        now = time.time()
        db = d  # sqlite_utils.Database
        company = db.execute(  # type: ignore[attr-defined]
            "INSERT INTO companies (name, created_at) VALUES ('Rival', ?)", (now,)
        ).lastrowid
        branch = db.execute(  # type: ignore[attr-defined]
            "INSERT INTO branches (company_id, name, created_at) VALUES (?, 'Rival 1', ?)",
            (company, now),
        ).lastrowid
        db.execute(  # type: ignore[attr-defined]
            "INSERT INTO licenses (key_hash, key_prefix, company_id, branch_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (auth.hash_license_key(key), auth.license_prefix(key), company, branch, now),
        )

    await hub.hub.db.write(write)
    return key


@pytest.mark.parametrize("same_company", [False, True])
async def test_a_device_id_belongs_to_its_license(
    hub: RunningHub, raw_agent: RawAgentFactory, same_company: bool
) -> None:
    victim = await raw_agent("till-pc-7")
    agent_id = next(iter(hub.hub.agents))
    key = await hub.hub.create_license() if same_company else await _second_company_license(hub)
    attacker = RawAgent(hub.url, key, "till-pc-7")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await attacker.connect()
    assert "belongs to another license" in str(attacker.connect_error)
    await asyncio.sleep(0.3)
    assert not victim.disconnected.is_set()  # the victim stays connected
    assert hub.hub.agents[agent_id].device_id == "till-pc-7"
    agents = await hub.hub.db.read(
        lambda d: [dict(r) for r in d.execute("SELECT * FROM agents").fetchall()]
    )
    assert [(a["device_id"], a["company_id"]) for a in agents] == [("till-pc-7", 1)]


async def test_a_machine_licensed_again_keeps_its_device_id(
    hub: RunningHub, raw_agent: RawAgentFactory
) -> None:
    """The legitimate case: the old license was revoked, a new one of the same company
    runs on the same machine."""
    old_key = await hub.hub.create_license()
    first = await raw_agent("till-pc-8", old_key)
    await first.close()
    await eventually(lambda: not hub.hub.agents, what="first agent gone")
    await hub.hub.db.write(lambda d: d.execute("UPDATE licenses SET revoked_at = 1"))
    again = await raw_agent("till-pc-8")
    assert again.sio.connected
