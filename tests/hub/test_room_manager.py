"""Room broadcasts go out a hundred recipients at a time, yet every operator gets the
hub's events in the order the hub sent them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from socketio import packet

from pm_hub.room_manager import CHUNK, BroadcastManager


async def manager_with_room(members: int) -> tuple[BroadcastManager, dict[str, list[Any]]]:
    received: dict[str, list[Any]] = {}

    async def send(eio_sid: str, pkt: Any) -> None:
        if eio_sid == "broken":
            raise ConnectionResetError("gone")
        received.setdefault(eio_sid, []).append(pkt.data)

    manager = BroadcastManager()
    manager.set_server(SimpleNamespace(packet_class=packet.Packet, _send_eio_packet=send))
    for n in range(members):
        join(manager, f"eio{n}")
    return manager, received


def join(manager: BroadcastManager, eio_sid: str) -> None:
    sid = f"sid-{eio_sid}"
    manager.basic_enter_room(sid, "/ops", None, eio_sid=eio_sid)
    manager.basic_enter_room(sid, "/ops", sid, eio_sid=eio_sid)
    manager.basic_enter_room(sid, "/ops", "branch_1", eio_sid=eio_sid)


async def test_two_broadcasts_reach_every_operator_in_the_order_they_were_sent() -> None:
    manager, received = await manager_with_room(CHUNK * 3 + 7)
    await asyncio.gather(
        manager.emit("job:update", {"status": "printing"}, "/ops", room="branch_1"),
        manager.emit("job:update", {"status": "completed"}, "/ops", room="branch_1"),
    )
    assert len(received) == CHUNK * 3 + 7
    orders = {tuple('"printing"' in p for p in packets) for packets in received.values()}
    assert orders == {(True, False)}  # printing first, everywhere


async def test_a_broken_socket_does_not_cost_the_others_the_event() -> None:
    manager, received = await manager_with_room(5)
    join(manager, "broken")
    await manager.emit("printer:update", {"id": 1}, "/ops", room="branch_1")
    assert len(received) == 5 and all(len(p) == 1 for p in received.values())


async def test_an_event_to_one_operator_waits_for_a_broadcast_already_going_out() -> None:
    manager, received = await manager_with_room(CHUNK * 3 + 7)
    last = f"eio{CHUNK * 3 + 6}"
    await asyncio.gather(
        manager.emit("printer:update", {"n": "first"}, "/ops", room="branch_1"),
        manager.emit("printer:test:completed", {"n": "second"}, "/ops", room=f"sid-{last}"),
    )
    assert ['"first"' in p for p in received[last]] == [True, False]
