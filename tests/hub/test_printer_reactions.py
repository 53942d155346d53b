"""A printer change is told to operators first, then its reactions run in the order the
wiring subscribed them: the status alert, station failover, redelivery after a pause."""

from __future__ import annotations

from typing import Any

import pytest
import socketio

from pm_core.protocol import PRINTER_STATUS_FIELDS, Namespace
from pm_hub.live_state import AgentLink
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually, receipt_doc


async def kitchen_agent(hub: RunningHub) -> tuple[socketio.AsyncClient, list[int]]:
    """A bare agent with two kitchen printers that spools every job and gives back
    any job the hub asks for."""
    key = await hub.hub.create_license()
    agent = socketio.AsyncClient(reconnection=False)

    @agent.on("print:job", namespace=Namespace.AGENT)
    async def print_job(data: Any) -> dict[str, Any]:
        return {"ok": True, "status": "dispatched"}

    @agent.on("job:release", namespace=Namespace.AGENT)
    async def release(data: Any) -> dict[str, Any]:
        return {"ok": True, "released": True}

    await agent.connect(
        hub.url,
        namespaces=[Namespace.AGENT],
        auth={"license_key": key, "device_id": "kitchen-box"},
        transports=["websocket"],
    )
    ids = []
    for n, name in enumerate(("K1", "K2")):
        ack = await agent.call(
            "printer:discovered",
            {
                "address": f"tcp://127.0.0.1:{9600 + n}",
                "name": name,
                "station": "kitchen",
                "status": "online",
            },
            namespace=Namespace.AGENT,
        )
        ids.append(ack["printer_id"])
    return agent, ids


async def test_the_status_alert_reaches_operators_before_the_failover_it_causes(
    hub: RunningHub, ops: OpsClient
) -> None:
    agent, (k1, _k2) = await kitchen_agent(hub)
    try:
        ack = await ops.call("job:submit", {"station": "kitchen", "document": receipt_doc("A")})
        job = ack["job"]
        assert job["printer_id"] == k1
        await ops.wait_for(
            "job:update", lambda j: j["id"] == job["id"] and j["status"] == "dispatched"
        )
        await agent.call(
            "printer:status",
            {"printer_id": k1, "status": "paper_out", "flags": {}},
            namespace=Namespace.AGENT,
        )
        await ops.wait_for("desktop:health:alert", lambda a: a["kind"] == "failover")
        kinds = [data["kind"] for event, data in ops.events if event == "desktop:health:alert"]
        assert kinds.index("paper_out") < kinds.index("failover")
        moved = await ops.call("job:get", {"job_id": job["id"]})
        assert moved["job"]["printer_id"] != k1
    finally:
        await agent.disconnect()


async def test_a_change_runs_fan_out_then_status_alert_then_failover_then_redelivery(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One change that calls for all three reactions: a paused primary with paper out
    comes back online and is resumed."""
    agent, (k1, _k2) = await kitchen_agent(hub)
    services = hub.hub
    try:
        await eventually(lambda: k1 in services.state.printers, what="printer registered")
        row = services.state.printers[k1]
        link = services.state.agent_for_printer(row)
        assert isinstance(link, AgentLink)
        services.state.printers[k1] = {**row, "paused": 1, "status": "paper_out"}
        seen: list[str] = []

        async def fan_out(row: dict[str, Any], *, status_only: bool = False) -> None:
            seen.append("fan-out")

        async def status_alert(printer: dict[str, Any]) -> None:
            seen.append("status alert")

        async def clear(kind: str, subject: str, *, by: str = "hub") -> None:
            seen.append(f"clear {kind}")

        async def redeliver(link: AgentLink, printer_id: int) -> None:
            seen.append("redelivery")

        monkeypatch.setattr(services.broadcaster, "printer_update", fan_out)
        monkeypatch.setattr(services.alerts, "printer_status", status_alert)
        monkeypatch.setattr(services.alerts, "clear", clear)
        monkeypatch.setattr(services.dispatcher, "printer_attached", redeliver)
        await services.printer_changes.changed({**row, "paused": 0, "status": "online"})
        assert seen == ["fan-out", "status alert", "clear failover", "redelivery"]
    finally:
        await agent.disconnect()


async def test_a_batched_status_entry_carries_exactly_the_status_fields(
    hub: RunningHub,
) -> None:
    agent, (k1, _k2) = await kitchen_agent(hub)
    try:
        await eventually(lambda: k1 in hub.hub.state.printers, what="printer registered")
        entry = hub.hub.views.status_entry(hub.hub.state.printers[k1])
        assert tuple(entry) == PRINTER_STATUS_FIELDS
    finally:
        await agent.disconnect()
