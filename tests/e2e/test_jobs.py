"""Job lifecycle guarantees through a real hub, agent and simulated printers:
cancel, reprint, idempotency, expiry, per-printer order, stations and failover."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually, receipt_doc


@pytest.fixture
async def kitchen() -> AsyncIterator[SimulatorFleet]:
    names = ["Kitchen-1", "Kitchen-2", "Bar"]
    async with SimulatorFleet.start(count=3, names=names, control_port=None) as fleet:
        yield fleet


@pytest.fixture
async def kitchen_agent(make_agent: AgentFactory, kitchen: SimulatorFleet) -> Agent:
    k1, k2, bar = kitchen.printers
    return await make_agent(
        [
            f"Kitchen-1=tcp://127.0.0.1:{k1.port}#kitchen",
            f"Kitchen-2=tcp://127.0.0.1:{k2.port}#kitchen",
            f"Bar=tcp://127.0.0.1:{bar.port}#bar",
        ]
    )


async def printer_ids(ops: OpsClient, count: int = 3) -> dict[str, int]:
    async def ready() -> dict[str, int] | None:
        ack = await ops.call("printers:list", {})
        online = {p["name"]: p["id"] for p in ack["printers"] if p["status"] == "online"}
        return online if len(online) >= count else None

    return await eventually(ready, what="printers online")


async def submit(ops: OpsClient, **payload: Any) -> dict[str, Any]:
    ack = await ops.call("job:submit", payload)
    assert ack["ok"], ack
    return ack["job"]


async def final_status(ops: OpsClient, job_id: int, timeout: float = 15) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        ack = await ops.call("job:get", {"job_id": job_id})
        job = ack["job"]
        return job if job["status"] in ("completed", "failed", "cancelled", "expired") else None

    return await eventually(done, timeout=timeout, what=f"job {job_id} finished")


def tickets(printer: Any) -> list[str]:
    """The ticket markers printed on a simulated printer, in print order."""
    found = []
    for receipt in printer.receipts:
        found += re.findall(r"ticket (\S+)", receipt.text)
    return found


async def test_same_idempotency_key_makes_one_job_and_one_receipt(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    payload = {
        "printer_id": ids["Bar"],
        "document": receipt_doc("ONCE"),
        "idempotency_key": "order-812",
    }
    first, second = await asyncio.gather(
        ops.call("job:submit", payload), ops.call("job:submit", payload)
    )
    assert first["job"]["id"] == second["job"]["id"]
    assert sorted([first["duplicate"], second["duplicate"]]) == [False, True]
    assert (await final_status(ops, first["job"]["id"]))["status"] == "completed"
    await asyncio.sleep(0.3)
    assert tickets(kitchen.printers[2]) == ["ONCE"]
    listed = await ops.call("jobs:list", {})
    assert len(listed["jobs"]) == 1


async def test_jobs_for_one_printer_print_in_acceptance_order(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    acks = await asyncio.gather(
        *(
            ops.call(
                "job:submit", {"printer_id": ids["Kitchen-2"], "document": receipt_doc(str(i))}
            )
            for i in range(40)
        )
    )
    accepted = sorted((a["job"]["id"], a["job"]) for a in acks)
    await kitchen.printers[1].wait_for_receipts(40)
    by_id = {}
    for job_id, _job in accepted:
        got = await ops.call("job:get", {"job_id": job_id, "document": True})
        by_id[job_id] = got["job"]["document"]["blocks"][1]["text"].split()[-1]
    assert tickets(kitchen.printers[1]) == [by_id[j] for j, _ in accepted]


async def test_cancel_stops_a_waiting_job_for_good(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    bar = kitchen.printers[2]
    await bar.set_state("cover_open")
    await ops.wait_for("printer:update", lambda p: p["status"] == "cover_open")
    job = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("NO"))
    await ops.wait_for("job:update", lambda j: j["id"] == job["id"] and j["status"] == "dispatched")
    ack = await ops.call("job:cancel", {"job_id": job["id"], "reason": "guest left"})
    assert ack["ok"], ack
    assert ack["job"]["status"] == "cancelled"
    assert ack["job"]["error"] == {"code": "cancelled", "message": "guest left"}
    await bar.set_state("online")
    keep = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("YES"))
    assert (await final_status(ops, keep["id"]))["status"] == "completed"
    assert tickets(bar) == ["YES"]
    again = await ops.call("job:cancel", {"job_id": job["id"]})
    assert again["error"]["code"] == "conflict"


async def test_cancel_after_printing_is_refused(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    job = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("DONE"))
    await final_status(ops, job["id"])
    ack = await ops.call("job:cancel", {"job_id": job["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "conflict"
    assert "completed" in ack["error"]["message"]


async def test_reprint_makes_a_linked_job_and_is_idempotent(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    job = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("R1"))
    await final_status(ops, job["id"])
    payload = {"job_id": job["id"], "idempotency_key": "reprint-r1"}
    first = await ops.call("job:reprint", payload)
    second = await ops.call("job:reprint", payload)
    assert first["ok"] and second["ok"]
    assert first["job"]["id"] == second["job"]["id"] != job["id"]
    assert first["job"]["reprint_of"] == job["id"]
    assert (await final_status(ops, first["job"]["id"]))["status"] == "completed"
    await asyncio.sleep(0.2)
    assert tickets(kitchen.printers[2]) == ["R1", "R1"]


async def test_expired_jobs_do_not_print_when_the_printer_returns(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    bar = kitchen.printers[2]
    await bar.set_state("offline")
    await ops.wait_for("printer:update", lambda p: p["name"] == "Bar" and p["status"] == "offline")
    stale = [
        await submit(ops, printer_id=ids["Bar"], document=receipt_doc(f"OLD{i}"), expires_in=1)
        for i in range(3)
    ]
    for job in stale:
        ended = await final_status(ops, job["id"])
        assert ended["status"] == "expired" and ended["error"]["code"] == "expired"
    await bar.set_state("online")
    fresh = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("NEW"))
    assert (await final_status(ops, fresh["id"]))["status"] == "completed"
    assert tickets(bar) == ["NEW"]
    alerts = await ops.call("alerts:list", {})
    kinds = {a["kind"] for a in alerts["alerts"]}
    assert "job_expired" in kinds


async def test_station_job_fails_over_to_the_backup_with_a_mark(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    await printer_ids(ops)
    k1, k2, _bar = kitchen.printers
    await k1.set_state("paper_out")
    await ops.wait_for(
        "printer:update", lambda p: p["name"] == "Kitchen-1" and p["status"] == "paper_out"
    )
    job = await submit(ops, station="kitchen", document=receipt_doc("FO"))
    done = await final_status(ops, job["id"])
    assert done["status"] == "completed"
    assert k1.receipts == []
    receipts = await k2.wait_for_receipts(1)
    assert receipts[0].text.splitlines()[0].strip() == "BACKUP FROM Kitchen-1"
    alert = await ops.wait_for("desktop:health:alert", lambda a: a["kind"] == "failover")
    assert "Kitchen-2" in alert["message"] and alert["state"] == "open"


async def test_waiting_station_jobs_move_when_the_primary_fails(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    """Jobs already queued on the primary move to the backup when it runs out of paper."""
    await printer_ids(ops)
    k1, k2, _bar = kitchen.printers
    k1.print_delay = 0.3  # a slow primary builds a queue
    jobs = [await submit(ops, station="kitchen", document=receipt_doc(f"Q{i}")) for i in range(6)]
    await k1.wait_for_receipts(1)
    await k1.set_state("paper_out")
    for job in jobs:
        assert (await final_status(ops, job["id"], timeout=20))["status"] == "completed"
    on_primary, on_backup = tickets(k1), tickets(k2)
    assert sorted(on_primary + on_backup) == sorted(f"Q{i}" for i in range(6))  # once each
    assert on_backup, "nothing moved to the backup"
    assert all(r.text.startswith("BACKUP FROM Kitchen-1") for r in k2.receipts)
    moved = await ops.call("job:get", {"job_id": jobs[-1]["id"]})
    reasons = [e["reason"] for e in moved["job"]["events"]]
    assert any("failover" in (r or "") for r in reasons)
    # The primary comes back: new kitchen jobs go to it again, and the alert clears.
    await k1.set_state("online")
    await ops.wait_for(
        "alert:update", lambda a: a["kind"] == "failover" and a["state"] == "cleared"
    )
    back = await submit(ops, station="kitchen", document=receipt_doc("HOME"))
    assert back["failover_from"] is None
    await final_status(ops, back["id"])
    assert tickets(k1)[-1] == "HOME"


async def test_station_order_can_be_set(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    ack = await ops.call(
        "station:configure",
        {
            "station": "kitchen",
            "printer_ids": [ids["Kitchen-2"], ids["Kitchen-1"]],
            "default_expiry_s": 120,
        },
    )
    assert ack["ok"], ack
    assert [p["name"] for p in ack["station"]["printers"]] == ["Kitchen-2", "Kitchen-1"]
    job = await submit(ops, station="kitchen", document=receipt_doc("K2"))
    assert job["printer_id"] == ids["Kitchen-2"] and job["failover_from"] is None
    assert 110 < job["expires_at"] - job["created_at"] <= 120
    await final_status(ops, job["id"])
    stations = await ops.call("stations:list", {})
    assert {s["name"] for s in stations["stations"]} == {"kitchen", "bar"}


async def test_jobs_list_filters(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    a = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("A"))
    b = await submit(ops, station="kitchen", document=receipt_doc("B"))
    await final_status(ops, a["id"])
    await final_status(ops, b["id"])
    by_printer = await ops.call("jobs:list", {"printer_id": ids["Bar"]})
    assert [j["id"] for j in by_printer["jobs"]] == [a["id"]]
    by_station = await ops.call("jobs:list", {"station": "kitchen"})
    assert [j["id"] for j in by_station["jobs"]] == [b["id"]]
    by_status = await ops.call("jobs:list", {"status": ["failed", "cancelled"]})
    assert by_status["jobs"] == []
    later = await ops.call("jobs:list", {"since": b["created_at"] + 5})
    assert later["jobs"] == []


async def test_hub_restart_keeps_jobs_and_redelivers(
    tmp_path: Any, kitchen: SimulatorFleet
) -> None:
    """Jobs accepted while the agent's printer was away survive a hub restart."""
    from pm_agent.printer_uri import parse_printer_spec
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    settings = hub_settings(tmp_path / "hub")
    running: RunningHub = await start_hub(settings)
    key = await running.hub.create_license()
    bar = kitchen.printers[2]
    await bar.set_state("paper_out")
    agent = Agent(
        hub_url=running.url,
        license_key=key,
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"Bar=tcp://127.0.0.1:{bar.port}")],
        poll_interval=0.2,
        spool_synchronous="NORMAL",
    )
    await agent.start()
    try:
        assert running.hub.tokens is not None
        token = running.hub.tokens.create(role="admin")
        ops = await OpsClient(running.url, token).connect()
        await eventually(lambda: bool(running.hub.printers), what="printer registered")
        printer_id = next(iter(running.hub.printers))
        jobs = [
            await submit(ops, printer_id=printer_id, document=receipt_doc(f"H{i}"))
            for i in range(5)
        ]
        await ops.close()
        settings.port = running.port
        await running.stop()
        running = await start_hub(settings)
        await bar.set_state("online")
        ops = await OpsClient(running.url, token).connect()
        for job in jobs:
            assert (await final_status(ops, job["id"]))["status"] == "completed"
        assert tickets(bar) == [f"H{i}" for i in range(5)]
        await ops.close()
    finally:
        await agent.stop()
        await running.stop()


async def test_jobs_held_for_a_paused_printer_expire_and_resume_prints_the_rest(
    ops: OpsClient, kitchen_agent: Agent, kitchen: SimulatorFleet
) -> None:
    ids = await printer_ids(ops)
    paused = await ops.call("printer:configure", {"printer_id": ids["Bar"], "paused": True})
    assert paused["ok"] and paused["printer"]["paused"] is True
    short = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("SHORT"), expires_in=1)
    long = await submit(ops, printer_id=ids["Bar"], document=receipt_doc("LONG"))
    assert (await final_status(ops, short["id"]))["status"] == "expired"
    assert kitchen.printers[2].receipts == []  # nothing goes to a paused printer
    await ops.call("printer:configure", {"printer_id": ids["Bar"], "paused": False})
    assert (await final_status(ops, long["id"]))["status"] == "completed"
    assert tickets(kitchen.printers[2]) == ["LONG"]


def lose_delivery_acks(agent: Agent) -> None:
    """The agent spools each job it is sent, but its acknowledgement never reaches the
    hub (as when the link drops between the two)."""
    accept = agent.intake.accept_job

    async def accept_then_lose_the_ack(data: Any) -> dict[str, Any]:
        await accept(data)
        raise ConnectionError("link lost before the ack")

    agent.intake.accept_job = accept_then_lose_the_ack  # type: ignore[method-assign]


async def spooled(agent: Agent, job_id: int) -> None:
    await eventually(lambda: agent.spool.get(job_id), what=f"job {job_id} in the spool")


async def test_cancel_after_a_lost_delivery_ack_takes_the_job_from_the_agent(
    ops: OpsClient, make_agent: AgentFactory, kitchen: SimulatorFleet
) -> None:
    """The hub never heard that the agent holds the job; cancel must still stop it there."""
    bar = kitchen.printers[2]
    agent = await make_agent([f"Bar=tcp://127.0.0.1:{bar.port}"])
    (printer_id,) = (await printer_ids(ops, 1)).values()
    await bar.set_state("cover_open")
    await ops.wait_for("printer:update", lambda p: p["status"] == "cover_open")
    lose_delivery_acks(agent)
    job = await submit(ops, printer_id=printer_id, document=receipt_doc("GONE"))
    await spooled(agent, job["id"])
    ack = await ops.call("job:cancel", {"job_id": job["id"]}, timeout=15)
    assert ack["ok"] and ack["job"]["status"] == "cancelled", ack
    held = await agent.spool.get(job["id"])
    assert held is not None and held.state == "cancelled"
    await bar.set_state("online")
    await asyncio.sleep(1.0)
    assert tickets(bar) == []


async def test_cancel_while_the_holding_agent_is_away_is_refused_not_faked(
    ops: OpsClient, make_agent: AgentFactory, kitchen: SimulatorFleet
) -> None:
    """A job that may sit in an unreachable agent's spool is not reported cancelled: that
    agent would print it when it comes back, and the hub would then be wrong."""
    bar = kitchen.printers[2]
    spec = f"Bar=tcp://127.0.0.1:{bar.port}"
    agent = await make_agent([spec], name="bar")
    (printer_id,) = (await printer_ids(ops, 1)).values()
    await bar.set_state("cover_open")
    await ops.wait_for("printer:update", lambda p: p["status"] == "cover_open")
    lose_delivery_acks(agent)
    job = await submit(ops, printer_id=printer_id, document=receipt_doc("HELD"))
    await spooled(agent, job["id"])
    await agent.stop()
    ack = await ops.call("job:cancel", {"job_id": job["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "offline", ack
    await bar.set_state("online")
    await make_agent([spec], name="bar", license_key=agent.license_key)
    assert (await final_status(ops, job["id"]))["status"] == "completed"
    assert tickets(bar) == ["HELD"]
