"""``agent:stopping`` on ``/agent``: only an authenticated agent may say it, about its
own link, with a short plain reason; anything else is an error ack and changes
nothing."""

from __future__ import annotations

from typing import Any

import pytest

from pm_core.protocol import AgentEvent
from pm_hub.server import RunningHub
from tests.support.raw_agent import RawAgent


@pytest.mark.parametrize(
    "payload",
    ["stop", [], {"reason": 5}, {"reason": "x" * 41}, {"reason": "restart\x1b[2J"}],
)
async def test_a_bad_stopping_payload_is_refused_and_changes_nothing(
    hub: RunningHub, payload: Any
) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "box-1").connect()
    try:
        ack = await agent.call(AgentEvent.STOPPING, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
        (link,) = hub.hub.agents.values()
        assert link.stopping is None
    finally:
        await agent.close()


async def test_an_agent_that_says_it_stops_is_marked_planned(hub: RunningHub) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "box-2").connect()
    try:
        ack = await agent.call(AgentEvent.STOPPING, {"reason": "upgrade"})
        assert ack == {"ok": True}
        (link,) = hub.hub.agents.values()
        assert link.stopping == "upgrade"
    finally:
        await agent.close()
