"""A dashboard open through a long shift is not logged out (issue 12, finding 10): the
hub link asks for a fresh token of the same session before its own runs out."""

from __future__ import annotations

import asyncio
import time

import jwt

from pm_hub.server import RunningHub
from pm_hub.store import credentials as credential_store
from pm_tui.hub_link import HubLink, token_times
from tests.support.helpers import eventually


async def test_the_dashboard_refreshes_its_token_and_stays_connected(hub: RunningHub) -> None:
    assert hub.hub.tokens is not None
    first = hub.hub.tokens.issue(role="viewer", branch_ids=[1], ttl_seconds=6, sub="night-it")
    await hub.hub.db.write(lambda d: credential_store.record_token(d, first.claims))
    states: list[str] = []
    link = HubLink(hub.url, first.token, on_state=lambda s: states.append(s.state))
    runner = asyncio.create_task(link.run())
    try:
        await eventually(lambda: link.connected, what="connected")
        await eventually(lambda: link.token != first.token, timeout=8, what="token refreshed")
        claims = jwt.decode(link.token, options={"verify_signature": False})
        assert claims["sess"] == first.token_id and claims["sub"] == "night-it"
        await asyncio.sleep(max(0.0, first.claims["exp"] + 1 - time.time()))
        assert link.connected and (await link.call("whoami"))["ok"]  # past the first's end
        assert "refused" not in states and states.count("connected") == 1
    finally:
        runner.cancel()
        await link.close()
        await asyncio.gather(runner, return_exceptions=True)


def test_token_times_reads_iat_and_exp() -> None:
    token = jwt.encode({"iat": 100, "exp": 400}, "k" * 32, algorithm="HS256")
    assert token_times(token) == (100.0, 400.0)
    assert token_times("not-a-jwt") is None
