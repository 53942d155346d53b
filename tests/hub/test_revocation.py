"""Revocation and expiry on a running hub (issue 12, finding 10): ``pm license revoke``
disconnects a live agent, ``pm token revoke`` closes the sockets that use the token
(and refreshed ones of its session), a token that runs out while its socket is open
stops working, and ``token:refresh`` keeps a long shift logged in."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import jwt

from pm_core.protocol import OpsEvent
from pm_hub.server import RunningHub
from pm_hub.store import credentials as credential_store
from tests.support.helpers import OpsClient, eventually
from tests.support.raw_agent import RawAgent

PM = [sys.executable, "-m", "pm"]


def pm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PM, *args], capture_output=True, text=True, timeout=60)


def data_dir(hub: RunningHub) -> Path:
    return Path(hub.hub.settings.data_dir)


async def test_revoking_a_license_disconnects_its_live_agent(hub: RunningHub) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "till-3").connect()
    other = await RawAgent(hub.url, await hub.hub.create_license(), "till-4").connect()
    try:
        result = await asyncio.to_thread(
            pm, "license", "revoke", "1", "--data-dir", str(data_dir(hub))
        )
        assert result.returncode == 0, result.stderr
        await asyncio.wait_for(agent.disconnected.wait(), 3)
        await eventually(lambda: len(hub.hub.agents) == 1, timeout=3, what="agent gone")
        assert not other.disconnected.is_set()  # its own license is still good
        again = RawAgent(hub.url, agent.auth["license_key"], "till-3")
        try:
            await again.connect()
            raise AssertionError("a revoked license connected again")
        except Exception:
            assert "revoked" in str(again.connect_error)
    finally:
        await agent.close()
        await other.close()


async def test_revoking_a_token_closes_its_open_sockets(hub: RunningHub) -> None:
    assert hub.hub.tokens is not None
    made = await asyncio.to_thread(
        pm, "token", "create", "--role", "operator", "--branch", "1", "--data-dir",
        str(data_dir(hub)),
    )  # fmt: skip
    token = made.stdout.strip()
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    client = await OpsClient(hub.url, token).connect()
    bystander = await OpsClient(hub.url, hub.hub.tokens.create(role="admin")).connect()
    try:
        assert (await client.call(OpsEvent.WHOAMI))["ok"]
        result = await asyncio.to_thread(
            pm, "token", "revoke", token_id, "--data-dir", str(data_dir(hub))
        )
        assert result.returncode == 0, result.stderr
        await eventually(lambda: not client.sio.connected, timeout=3, what="socket closed")
        assert bystander.sio.connected
        again = OpsClient(hub.url, token)
        try:
            await again.connect()
            raise AssertionError("a revoked token connected again")
        except Exception:
            assert "token revoked" in str(again.connect_error)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.get(f"{hub.url}/api/v1/printers") as resp,
        ):
            assert resp.status == 401
            assert (await resp.json())["error"]["message"] == "token revoked"
    finally:
        await client.close()
        await bystander.close()


async def test_a_token_that_runs_out_while_its_socket_is_open_stops_working(
    hub: RunningHub,
) -> None:
    assert hub.hub.tokens is not None
    client = await OpsClient(hub.url, hub.hub.tokens.create(role="admin", ttl_seconds=2)).connect()
    try:
        assert (await client.call(OpsEvent.WHOAMI))["ok"]
        await eventually(lambda: not client.sio.connected, timeout=5, what="closed at expiry")
    finally:
        await client.close()


async def test_a_refreshed_token_keeps_the_shift_going_and_revokes_with_its_session(
    hub: RunningHub,
) -> None:
    assert hub.hub.tokens is not None
    first = hub.hub.tokens.issue(role="operator", branch_ids=[1], ttl_seconds=6, sub="ana")
    await hub.hub.db.write(lambda d: credential_store.record_token(d, first.claims))
    client = await OpsClient(hub.url, first.token).connect()
    try:
        await asyncio.sleep(3)  # half way through the first token's life
        answer = await client.call(OpsEvent.TOKEN_REFRESH, {})
        assert answer["ok"], answer
        claims = jwt.decode(answer["token"], options={"verify_signature": False})
        assert (claims["sub"], claims["role"], claims["branch_ids"]) == ("ana", "operator", [1])
        assert claims["sess"] == first.token_id and claims["jti"] != first.token_id
        await asyncio.sleep(3.5)  # the first token has run out; this connection goes on
        assert client.sio.connected and (await client.call(OpsEvent.WHOAMI))["ok"]

        # A token refreshed just now (so it cannot have run out by the time it is
        # tried below, even on a slow machine); revoking the session's first token
        # ends it too.
        fresh = await client.call(OpsEvent.TOKEN_REFRESH, {})
        assert fresh["ok"], fresh
        result = await asyncio.to_thread(
            pm, "token", "revoke", first.token_id, "--data-dir", str(data_dir(hub))
        )
        assert result.returncode == 0, result.stderr
        await eventually(lambda: not client.sio.connected, timeout=3, what="session revoked")
        again = OpsClient(hub.url, fresh["token"])
        try:
            await again.connect()
            raise AssertionError("a token of a revoked session connected")
        except Exception:
            assert "token revoked" in str(again.connect_error)
    finally:
        await client.close()
