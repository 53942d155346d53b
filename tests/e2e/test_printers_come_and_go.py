"""Printers and agents that come and go on purpose (issue 15): a printer dropped from an
agent's command line is retired, not OFFLINE for ever with a critical alert; a retired
agent raises nothing after a hub restart; operators rename and remove printers over
HTTP, ``/ops`` and ``pm printer``, and a removed printer stays removed across restarts;
``pm license show``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.hub.test_http_api import request
from tests.support.helpers import OpsClient, eventually, receipt_doc

PM = [sys.executable, "-m", "pm"]
#: Agents that stay away this long raise their alerts (short, for the tests).
ABSENCE_S = 0.3


async def pm(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *PM, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def specs(fleet: SimulatorFleet, names: tuple[str, ...]) -> list[str]:
    return [f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen" for p in fleet.printers if p.name in names]


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
    )
    await agent.start()
    try:
        yield agent
    finally:
        await agent.stop()


def admin(hub: RunningHub, role: str = "admin") -> str:
    assert hub.hub.tokens is not None
    branches = None if role == "admin" else [1]
    return hub.hub.tokens.create(role=role, sub=f"test-{role}", branch_ids=branches)


async def printers_by_name(hub: RunningHub, token: str) -> dict[str, dict[str, Any]]:
    status, body = await request(hub, "GET", "/api/v1/printers", token)
    assert status == 200
    return {p["name"]: p for p in body["printers"]}


async def open_alerts(hub: RunningHub, token: str) -> list[tuple[str, str]]:
    _, body = await request(hub, "GET", "/api/v1/alerts", token)
    return sorted((a["kind"], a["subject"]) for a in body["alerts"] if a["state"] != "cleared")


async def both_online(hub: RunningHub, token: str, names: set[str]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await printers_by_name(hub, token)
        ok = all(found.get(n, {}).get("status") == "online" for n in names)
        return found if ok else None

    result: dict[str, Any] = await eventually(check, what=f"{names} online")
    return result


async def test_a_printer_dropped_from_the_agents_printers_is_retired_with_its_alert(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    settings = hub_settings(tmp_path / "hub", agent_disconnect_alert_s=ABSENCE_S)
    hub = await start_hub(settings)
    try:
        token = admin(hub)
        key = await hub.hub.create_license()
        async with running_agent(hub, key, tmp_path / "agent", specs(fleet, ("Kitchen-1", "Bar"))):
            bar = (await both_online(hub, token, {"Kitchen-1", "Bar"}))["Bar"]
        subject = f"printer:{bar['id']}"

        async def bar_offline_alert() -> bool:
            return ("printer_offline", subject) in await open_alerts(hub, token)

        await eventually(bar_offline_alert, what="Bar's offline alert")  # the agent left
        # The box restarts with Bar taken out of its --printer list.
        async with running_agent(hub, key, tmp_path / "agent", specs(fleet, ("Kitchen-1",))):

            async def bar_retired() -> bool:
                gone = "Bar" not in await printers_by_name(hub, token)
                return gone and subject not in {s for _k, s in await open_alerts(hub, token)}

            await eventually(bar_retired, what="Bar retired and its alert cleared")
            await both_online(hub, token, {"Kitchen-1"})
    finally:
        await hub.stop()
    hub = await start_hub(settings)  # and it stays so after a hub restart
    try:
        token = admin(hub)
        await asyncio.sleep(ABSENCE_S * 3)
        assert "Bar" not in await printers_by_name(hub, token)
        assert subject not in {s for _k, s in await open_alerts(hub, token)}
    finally:
        await hub.stop()


async def test_a_retired_agent_raises_no_alerts_even_after_a_restart(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    settings = hub_settings(tmp_path / "hub", agent_disconnect_alert_s=ABSENCE_S)
    hub = await start_hub(settings)
    try:
        token = admin(hub)
        key = await hub.hub.create_license()
        async with running_agent(hub, key, tmp_path / "agent", specs(fleet, ("Kitchen-1",))):
            await both_online(hub, token, {"Kitchen-1"})
            _, body = await request(hub, "GET", "/api/v1/agents", token)
            agent_id = body["agents"][0]["id"]
            status, body = await request(
                hub, "POST", f"/api/v1/agents/{agent_id}/retire", admin(hub, "manager"), {}
            )
            assert status == 403 and body["error"]["code"] == "forbidden"
        subject = f"agent:{agent_id}"

        async def agent_alert() -> bool:
            return ("agent_disconnected", subject) in await open_alerts(hub, token)

        await eventually(agent_alert, what="the absent agent's alert")
        ops = await OpsClient(hub.url, token).connect()
        try:
            ack = await ops.call("agent:retire", {"agent_id": agent_id})
            assert ack["ok"], ack
            assert await open_alerts(hub, token) == []
            listed = await ops.call("agents:list", {})
            assert listed["agents"] == []
            assert await printers_by_name(hub, token) == {}
            again = await ops.call("agent:retire", {"agent_id": agent_id})
            assert again["error"]["code"] == "not_found"
        finally:
            await ops.close()
    finally:
        await hub.stop()
    hub = await start_hub(settings)
    try:
        token = admin(hub)
        await asyncio.sleep(ABSENCE_S * 4)
        assert await open_alerts(hub, token) == []
        code, out, err = await pm("license", "show", "1", "--data-dir", str(settings.data_dir))
    finally:
        await hub.stop()
    assert code == 0, err
    assert "state:          revoked" in out and "agent link:     retired" in out


async def test_operators_rename_and_remove_printers_and_removed_stays_removed(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    settings = hub_settings(tmp_path / "hub")
    data = str(settings.data_dir)
    hub = await start_hub(settings)
    agent_dir = tmp_path / "agent"
    both = specs(fleet, ("Kitchen-1", "Bar"))
    try:
        token = admin(hub)
        key = await hub.hub.create_license()
        async with running_agent(hub, key, agent_dir, both):
            found = await both_online(hub, token, {"Kitchen-1", "Bar"})
            kitchen, bar = found["Kitchen-1"]["id"], found["Bar"]["id"]
            hub_args = ("--hub", hub.url, "--data-dir", data)
            code, out, err = await pm("printer", "rename", str(kitchen), "Grill", *hub_args)
            assert code == 0, err
            assert "Grill" in await printers_by_name(hub, token)
            code, out, err = await pm("printer", "list", *hub_args)
            assert code == 0 and "Grill" in out and "Bar" in out

            # Not for an operator; not while a job waits for the printer.
            status, body = await request(
                hub, "DELETE", f"/api/v1/printers/{bar}", admin(hub, "operator")
            )
            assert status == 403
            await fleet.printers[1].set_state("cover_open")
            job = {"printer_id": bar, "document": receipt_doc("B")}
            status, body = await request(hub, "POST", "/api/v1/jobs", token, job)
            assert status == 201
            job_id = body["job"]["id"]
            code, _out, err = await pm("printer", "remove", str(bar), *hub_args)
            assert code == 2 and "unfinished job" in err and "Traceback" not in err
            status, body = await request(hub, "POST", f"/api/v1/jobs/{job_id}/cancel", token, {})
            assert status == 200, body
            code, out, err = await pm("printer", "remove", str(bar), *hub_args)
            assert code == 0, err
            assert set(await printers_by_name(hub, token)) == {"Grill"}
            assert f"printer:{bar}" not in {s for _k, s in await open_alerts(hub, token)}
    finally:
        await hub.stop()
    # A restart of the hub and of the box, whose --printer list still names Bar.
    hub = await start_hub(settings)
    try:
        token = admin(hub)
        async with running_agent(hub, key, agent_dir, both):
            await both_online(hub, token, {"Grill"})
            await asyncio.sleep(0.5)
            assert set(await printers_by_name(hub, token)) == {"Grill"}
    finally:
        await hub.stop()


async def test_an_agent_cannot_retire_another_agents_printers(tmp_path: Path) -> None:
    """``printers:registered`` speaks for the sending agent's own printers only, and
    bad payloads are refused without changing anything."""
    from pm_core.protocol import AgentEvent
    from tests.support.raw_agent import RawAgent

    hub = await start_hub(hub_settings(tmp_path / "hub"))
    try:
        token = admin(hub)
        owner = await RawAgent(hub.url, await hub.hub.create_license(), "owner").connect()
        other = await RawAgent(hub.url, await hub.hub.create_license(), "other").connect()
        try:
            printer_id = (await owner.register("serial:P-1"))["printer_id"]
            for bad in ({"printer_ids": "1"}, {"printer_ids": [True]}, {"printer_ids": [1] * 10001},
                        {"printer_ids": [], "extra": 1}, []):  # fmt: skip
                ack = await other.call(AgentEvent.PRINTERS_REGISTERED, bad)
                assert ack["error"]["code"] == "invalid_payload", bad
            ack = await other.call(AgentEvent.PRINTERS_REGISTERED, {"printer_ids": []})
            assert ack == {"ok": True, "retired": []}
            assert "Pass" in await printers_by_name(hub, token)
            ack = await owner.call(AgentEvent.PRINTERS_REGISTERED, {"printer_ids": [printer_id]})
            assert ack == {"ok": True, "retired": []}
            ack = await owner.call(AgentEvent.PRINTERS_REGISTERED, {"printer_ids": []})
            assert ack == {"ok": True, "retired": [printer_id]}
            assert await printers_by_name(hub, token) == {}
            again = await owner.register("serial:P-1")  # back in its configuration
            assert again["ok"] and again["printer_id"] == printer_id
            assert "Pass" in await printers_by_name(hub, token)
        finally:
            await owner.close()
            await other.close()
    finally:
        await hub.stop()


async def test_a_printer_removed_at_a_branch_leaves_the_company_hub(tmp_path: Path) -> None:
    """The company hub's mirror follows: a removed printer is sent upstream as gone."""
    from tests.support.company_support import (
        branch_token,
        operator_token,
        start_branch_box,
        start_company,
    )

    company = await start_company(tmp_path / "company")
    box = await start_branch_box(
        tmp_path, "Harbour", company=company, token=branch_token(company, 1)
    )
    ops = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
    try:

        async def names() -> set[str]:
            ack = await ops.call("printers:list", {})
            return {p["name"] for p in ack["printers"]}

        await eventually(lambda: _has(names(), {"Kitchen-1", "Bar"}), what="mirrored printers")
        branch = box.running
        token = admin(branch)
        bar = (await printers_by_name(branch, token))["Bar"]["id"]
        status, body = await request(branch, "DELETE", f"/api/v1/printers/{bar}", token)
        assert status == 200, body

        async def bar_gone() -> bool:
            return await names() == {"Kitchen-1"}

        await eventually(bar_gone, what="Bar gone from the company hub")
    finally:
        await ops.close()
        await box.close()
        await company.stop()


async def _has(names: Any, wanted: set[str]) -> bool:
    return wanted <= await names
