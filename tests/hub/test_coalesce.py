"""Operators that ask for batches get printer changes coalesced; others get each one."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from pm_core.protocol import Namespace
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually


async def raw_agent(hub: RunningHub, printers: int) -> tuple[socketio.AsyncClient, list[int]]:
    key = await hub.hub.create_license()
    agent = socketio.AsyncClient(reconnection=False)
    await agent.connect(
        hub.url,
        namespaces=[Namespace.AGENT],
        auth={"license_key": key, "device_id": "burst"},
        transports=["websocket"],
    )
    ids = []
    for n in range(printers):
        ack = await agent.call(
            "printer:discovered",
            {"address": f"tcp://127.0.0.1:{9500 + n}", "name": f"P{n}", "status": "online"},
            namespace=Namespace.AGENT,
        )
        ids.append(ack["printer_id"])
    return agent, ids


class BatchedOps(OpsClient):
    async def connect(self) -> BatchedOps:
        self.sio.on("printers:update", self._recorder("printers:update"), namespace=Namespace.OPS)
        await self.sio.connect(
            self.url,
            namespaces=[Namespace.OPS],
            auth={"token": self.token, "coalesce": True},
            transports=["websocket"],
            wait_timeout=5,
        )
        return self


async def test_a_burst_reaches_batched_operators_as_few_messages_with_the_last_state(
    hub: RunningHub, admin_token: str
) -> None:
    plain = await OpsClient(hub.url, admin_token).connect()
    batched = await BatchedOps(hub.url, admin_token).connect()
    agent, ids = await raw_agent(hub, 3)
    try:
        await asyncio.sleep(0.3)  # registration updates are out of the way
        plain.events.clear()
        batched.events.clear()
        statuses = ["paper_low", "online", "cover_open", "online"] * 10 + ["paper_out"]
        for status in statuses:
            await asyncio.gather(
                *(
                    agent.call(
                        "printer:status",
                        {"printer_id": pid, "status": status, "flags": {}},
                        namespace=Namespace.AGENT,
                    )
                    for pid in ids
                )
            )

        def latest_batched() -> dict[int, str]:
            seen: dict[int, str] = {}
            for name, data in batched.events:
                if name == "printers:update":
                    for printer in data["printers"]:
                        seen[printer["id"]] = printer["status"]
            return seen

        await eventually(
            lambda: latest_batched() == dict.fromkeys(ids, "paper_out"),
            what="batched operator has every printer's last state",
        )
        await eventually(
            lambda: (
                len([d for n, d in plain.events if n == "printer:update"])
                >= len(ids) * len(statuses)
            ),
            what="plain operator got every change",
        )
        batches = [d for n, d in batched.events if n == "printers:update"]
        assert not [n for n, _ in batched.events if n == "printer:update"]
        assert len(batches) < len(statuses), f"{len(batches)} batches for {len(statuses)} rounds"
        assert all(len({p["id"] for p in b["printers"]}) == len(b["printers"]) for b in batches)
    finally:
        await agent.disconnect()
        await plain.close()
        await batched.close()


async def test_a_lone_change_is_not_held_back(hub: RunningHub, admin_token: str) -> None:
    """After a quiet spell the first change goes out at once, not after the window."""
    hub.hub.broadcaster.coalescer.window = 1.5
    batched = await BatchedOps(hub.url, admin_token).connect()
    agent, (pid,) = await raw_agent(hub, 1)
    try:
        await asyncio.sleep(0.2)
        batched.events.clear()
        await asyncio.sleep(1.5)  # the window after registration has passed
        sent = asyncio.get_running_loop().time()
        await agent.call(
            "printer:status",
            {"printer_id": pid, "status": "cover_open", "flags": {}},
            namespace=Namespace.AGENT,
        )
        got: Any = await batched.wait_for("printers:update", timeout=2)
        assert got["printers"][0]["status"] == "cover_open"
        assert asyncio.get_running_loop().time() - sent < 0.75
    finally:
        await agent.disconnect()
        await batched.close()


async def test_lazy_entries_are_built_once_per_window_and_a_broken_one_spares_the_rest() -> None:
    from pm_core.protocol import HubEvent
    from pm_hub.coalesce import UpdateCoalescer

    sent: list[tuple[str, list[str], dict[str, Any]]] = []

    async def emit(event: str, rooms: list[str], payload: dict[str, Any]) -> None:
        sent.append((event, rooms, payload))

    built: list[int] = []

    def view(n: int) -> Any:
        def build(room: str) -> dict[str, Any]:
            built.append(n)
            if n < 0:
                raise ValueError("broken record")
            return {"id": 1, "n": n}

        return build

    coalescer = UpdateCoalescer(emit, window=0.05)
    room = ["branch_1"]
    coalescer.add_lazy(HubEvent.PRINTER_UPDATE, room, 1, view(0))  # first: goes out at once
    await asyncio.sleep(0.01)
    for n in range(1, 50):  # a busy printer within one window
        coalescer.add_lazy(HubEvent.PRINTER_UPDATE, room, 1, view(n))
    coalescer.add_lazy(HubEvent.PRINTER_UPDATE, room, 2, view(-1))
    await eventually(lambda: len(sent) == 2, timeout=2)
    await coalescer.close()
    assert built == [0, 49, -1]  # the 48 states in between were never rendered
    assert [s[2]["printers"] for s in sent] == [[{"id": 1, "n": 0}], [{"id": 1, "n": 49}]]
    assert sent[0][1] == ["branch_1:batched"]


async def test_a_status_change_sends_only_status_fields_and_a_settings_change_the_printer(
    hub: RunningHub, admin_token: str
) -> None:
    """Batched entries for a status report carry the status fields alone (a dashboard
    merges them); a change of anything else, even with status reports in the same
    window, sends the whole printer."""
    from pm_core.protocol import PRINTER_STATUS_FIELDS

    hub.hub.broadcaster.coalescer.window = 0.5
    batched = await BatchedOps(hub.url, admin_token).connect()
    ops = await OpsClient(hub.url, admin_token).connect()
    agent, (pid,) = await raw_agent(hub, 1)

    def entries() -> list[dict[str, Any]]:
        return [p for n, d in batched.events if n == "printers:update" for p in d["printers"]]

    async def status(value: str) -> None:
        ack = await agent.call(
            "printer:status",
            {"printer_id": pid, "status": value, "flags": {"paper_near_end": value == "paper_low"}},
            namespace=Namespace.AGENT,
        )
        assert ack["ok"], ack

    try:
        await asyncio.sleep(0.7)  # registration's batch is out, the window has passed
        batched.events.clear()
        await status("paper_low")  # after a quiet spell: sent at once
        await eventually(lambda: len(entries()) == 1, what="status entry")
        (entry,) = entries()
        assert set(entry) == set(PRINTER_STATUS_FIELDS)
        assert entry["status"] == "paper_low" and entry["flags"] == {"paper_near_end": True}
        assert entry["id"] == pid and entry["queue"] == 0 and entry["agent_connected"] is True

        # Within the window: a settings change between two status reports.
        await status("paper_out")
        ack = await ops.call("printer:configure", {"printer_id": pid, "station": "bar"})
        assert ack["ok"], ack
        await status("online")
        await eventually(lambda: len(entries()) == 2, what="the window's batch")
        last = entries()[-1]
        assert last["name"] == "P0" and last["station"] == "bar" and last["status"] == "online"
        assert set(last) > set(PRINTER_STATUS_FIELDS)
    finally:
        await agent.disconnect()
        await ops.close()
        await batched.close()
