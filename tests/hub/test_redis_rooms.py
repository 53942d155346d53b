"""Socket.IO across two server processes' worth of managers through a real Redis:
room broadcasts, calls with acks to a socket held by the other server, the hub's own
messages in order, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import socketio
from aiohttp import web

from pm_hub.redis_rooms import RedisRoomManager
from tests.support.fault_harness import LinkProxy
from tests.support.helpers import eventually
from tests.support.services import need_redis, unique_channel


@dataclass
class Server:
    sio: socketio.AsyncServer
    manager: RedisRoomManager
    runner: web.AppRunner
    url: str


async def start_server(url: str, channel: str) -> Server:
    manager = RedisRoomManager(url, channel=channel)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)

    @sio.on("connect", namespace="/ops")
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, "company_1", namespace="/ops")

    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await manager.start()
    return Server(sio, manager, runner, f"http://127.0.0.1:{port}")


async def stop_server(server: Server) -> None:
    await server.manager.stop()
    await server.runner.cleanup()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Server, Server]]:
    url, channel = need_redis(), unique_channel()
    a = await start_server(url, channel)
    b = await start_server(url, channel)
    yield a, b
    await stop_server(a)
    await stop_server(b)


async def client(url: str, namespace: str) -> tuple[socketio.AsyncClient, list[Any]]:
    got: list[Any] = []
    c = socketio.AsyncClient()
    c.on("printer:update", lambda data: got.append(data), namespace=namespace)
    await c.connect(url, namespaces=[namespace], transports=["websocket"])
    return c, got


async def test_a_room_broadcast_reaches_clients_of_both_servers(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    on_a, got_a = await client(a.url, "/ops")
    on_b, got_b = await client(b.url, "/ops")
    try:
        await b.sio.emit("printer:update", {"id": 7}, to="company_1", namespace="/ops")
        await eventually(lambda: got_a == [{"id": 7}] and got_b == [{"id": 7}], what="both got it")
        await a.sio.emit("printer:update", {"id": 8}, to="company_2", namespace="/ops")
        await asyncio.sleep(0.3)
        assert got_a == got_b == [{"id": 7}], "another room's event reached nobody here"
    finally:
        await on_a.disconnect()
        await on_b.disconnect()


async def test_a_call_to_a_socket_on_the_other_server_gets_its_ack(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    branch = socketio.AsyncClient()
    branch.on("ops:request", lambda data: {"ok": True, "echo": data["n"]}, namespace="/branch")
    connected: list[str] = []
    b.sio.on("connect", lambda sid, environ, auth=None: connected.append(sid), namespace="/branch")
    await branch.connect(b.url, namespaces=["/branch"], transports=["websocket"])
    try:
        await eventually(lambda: connected, what="the branch is connected to b")
        answer = await a.sio.call(
            "ops:request", {"n": 41}, to=connected[0], namespace="/branch", timeout=5
        )
        assert answer == {"ok": True, "echo": 41}
        await eventually(lambda: b.manager.published == 1, what="b sent the ack back to a")
        published = (a.manager.published, b.manager.published)
        local = await b.sio.call(
            "ops:request", {"n": 42}, to=connected[0], namespace="/branch", timeout=5
        )
        assert local == {"ok": True, "echo": 42}
        await asyncio.sleep(0.1)
        assert (a.manager.published, b.manager.published) == published, (
            "a call to a socket of this server does not go through Redis"
        )
        with pytest.raises(socketio.exceptions.TimeoutError):
            await a.sio.call("ops:request", {"n": 1}, to="nobody", namespace="/branch", timeout=0.5)
    finally:
        await branch.disconnect()


async def test_what_one_process_tells_reaches_the_others_in_order(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    heard_a: list[int] = []
    heard_b: list[dict[str, Any]] = []

    async def on_a(body: dict[str, Any]) -> None:
        heard_a.append(body["n"])

    async def on_b(body: dict[str, Any]) -> None:
        heard_b.append(body)

    a.manager.on("count", on_a)
    b.manager.on("count", on_b)
    for n in range(500):
        await a.manager.tell("count", {"n": n})
    await eventually(lambda: len(heard_b) == 500, what="b heard all 500")
    assert [m["n"] for m in heard_b] == list(range(500)), "in the order told"
    assert {m["host_id"] for m in heard_b} == {a.manager.host_id}
    assert heard_a == [], "a process does not hear itself"


async def test_redis_going_away_and_back(tmp_path: Any) -> None:
    """While Redis is away, emits are dropped (the server keeps serving its own
    clients); when it is back the managers listen again by themselves, say so, and
    broadcasts between them resume."""
    url = need_redis()
    parsed = urlparse(url)
    proxy = LinkProxy(parsed.port or 6379)
    await proxy.start()
    via_proxy = parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    channel = unique_channel()
    a = await start_server(via_proxy, channel)
    b = await start_server(url, channel)
    back: list[bool] = []

    async def resubscribed() -> None:
        back.append(True)

    a.manager.on_resubscribed = resubscribed
    on_a, got_a = await client(a.url, "/ops")
    try:
        await proxy.cut()
        await a.sio.emit("printer:update", {"id": 1}, to="company_1", namespace="/ops")
        await eventually(lambda: not a.manager.reachable, what="a noticed Redis is gone")
        assert got_a == [{"id": 1}], "a's own clients are still served"
        assert a.manager.dropped >= 1
        await b.sio.emit("printer:update", {"id": 2}, to="company_1", namespace="/ops")
        await proxy.restore()
        await eventually(lambda: back, what="a listens again", timeout=10)
        await b.sio.emit("printer:update", {"id": 3}, to="company_1", namespace="/ops")
        await eventually(lambda: {"id": 3} in got_a, what="broadcasts from b reach a again")
        assert {"id": 2} not in got_a, "what was told while a was cut off is not replayed"
        await a.sio.emit("printer:update", {"id": 4}, to="company_1", namespace="/ops")
        await eventually(lambda: a.manager.reachable, what="a publishes again")
    finally:
        await on_a.disconnect()
        await stop_server(a)
        await stop_server(b)
        await proxy.cut()
