"""Limits on who gets in (issue 12, finding 9): connections per address (logged in or
not), failed logins slowed down per address, dashboards per company, and the request
rate counted per token session, so more sockets do not get around it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from pm_core.protocol import OpsEvent
from pm_hub.admission import LoginThrottle
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually
from tests.support.raw_ws import RawSocketIO

HubFactory = Callable[..., Any]


@pytest.fixture
async def limited_hub(tmp_path: Path) -> AsyncIterator[HubFactory]:
    started: list[RunningHub] = []

    async def start(**limits: Any) -> RunningHub:
        running = await start_hub(hub_settings(tmp_path / str(len(started)), **limits))
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


def admin(hub: RunningHub) -> str:
    assert hub.hub.tokens is not None
    return hub.hub.tokens.create(role="admin")


async def test_connections_per_address_are_capped(limited_hub: HubFactory) -> None:
    hub = await limited_hub(max_connections_per_address=3)
    held = [await asyncio.to_thread(RawSocketIO, "127.0.0.1", hub.port) for _ in range(3)]
    try:
        with pytest.raises(ConnectionError, match="401"):
            await asyncio.to_thread(RawSocketIO, "127.0.0.1", hub.port)
        held.pop().close()  # one leaves: there is room again
        await eventually(
            lambda: hub.hub.admission.connections.open_from("127.0.0.1") == 2, what="freed"
        )
        held.append(await asyncio.to_thread(RawSocketIO, "127.0.0.1", hub.port))
    finally:
        for connection in held:
            connection.close()


async def test_failed_logins_from_an_address_are_slowed_down(limited_hub: HubFactory) -> None:
    hub = await limited_hub(login_failures_allowed=3)
    for _ in range(4):
        bad = OpsClient(hub.url, "not-a-token")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect()
        assert bad.connect_error["data"]["code"] in ("auth_failed", "rate_limited")
    good = OpsClient(hub.url, admin(hub))  # even a good token waits its turn now
    with pytest.raises(socketio.exceptions.ConnectionError):
        await good.connect()
    assert good.connect_error["data"]["code"] == "rate_limited"
    assert "too many failed logins" in good.connect_error["data"]["message"]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin(hub)}"}) as http,
        http.get(f"{hub.url}/api/v1/printers") as resp,
    ):
        assert resp.status == 429  # HTTP from the same address too
    await asyncio.sleep(1.1)  # the first wait is a second
    client = await OpsClient(hub.url, admin(hub)).connect()
    await client.close()


def test_the_wait_grows_and_a_success_clears_it() -> None:
    now = [0.0]
    throttle = LoginThrottle(2, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("10.0.0.9")
    assert throttle.wait_for("10.0.0.9") == 0  # within the allowance
    waits = []
    for _ in range(8):
        throttle.failed("10.0.0.9")
        waits.append(throttle.wait_for("10.0.0.9"))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.wait_for("10.0.0.10") == 0  # other addresses are not touched
    throttle.succeeded("10.0.0.9")
    assert throttle.wait_for("10.0.0.9") == 0


async def test_dashboards_per_company_are_capped(limited_hub: HubFactory) -> None:
    hub = await limited_hub(max_operators_per_company=2)
    first = await OpsClient(hub.url, admin(hub)).connect()
    second = await OpsClient(hub.url, admin(hub)).connect()
    third = OpsClient(hub.url, admin(hub))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect()
    assert third.connect_error["data"] == {
        "code": "rate_limited",
        "message": "2 dashboards of this company are connected already",
    }
    await first.close()
    await eventually(lambda: len(hub.hub.state.operators) == 1, what="one left")
    again = await OpsClient(hub.url, admin(hub)).connect()
    await again.close()
    await second.close()


async def test_more_sockets_with_one_token_share_its_request_rate(
    limited_hub: HubFactory,
) -> None:
    hub = await limited_hub(ops_rate_limit=5)  # bursts of 10
    token = admin(hub)
    sockets = [await OpsClient(hub.url, token).connect() for _ in range(4)]
    other = await OpsClient(hub.url, admin(hub)).connect()  # another session
    try:
        answers = [await sockets[n % 4].call(OpsEvent.WHOAMI) for n in range(20)]
        limited = [a for a in answers if not a["ok"]]
        assert limited and all(a["error"]["code"] == "rate_limited" for a in limited)
        assert sum(a["ok"] for a in answers) <= 12  # one bucket of 10 (+ refill), not 4
        assert (await other.call(OpsEvent.WHOAMI))["ok"]  # its own session, its own rate
    finally:
        for client in [*sockets, other]:
            await client.close()
