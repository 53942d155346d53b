"""Smaller doors (issue 12, finding 11): browsers may use the hub only from the web
pages it allows (none by default; programs are not affected), and a branch hub's
synced records carry on only the fields of their kind, bounded in size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import socketio

from pm_core.protocol import BranchEvent, Namespace, OpsEvent
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually

WS = "/socket.io/?EIO=4&transport=websocket"


@pytest.fixture
async def pos_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(hub_settings(tmp_path, allowed_origins="https://pos.example"))
    yield running
    await running.stop()


async def handshake(hub: RunningHub, origin: str | None) -> int:
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(hub.url + WS, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


async def test_browsers_elsewhere_are_refused_by_default(hub: RunningHub) -> None:
    assert await handshake(hub, "http://evil.example") == 400
    assert await handshake(hub, None) == 101  # a program (no Origin) is not affected


async def test_an_allowed_page_may_use_the_hub_from_a_browser(pos_hub: RunningHub) -> None:
    assert await handshake(pos_hub, "https://pos.example") == 101
    assert await handshake(pos_hub, "http://evil.example") == 400
    preflight = {
        "Origin": "https://pos.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with aiohttp.ClientSession() as session:
        async with session.options(f"{pos_hub.url}/api/v1/jobs", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://pos.example"
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        evil = {**preflight, "Origin": "http://evil.example"}
        async with session.options(f"{pos_hub.url}/api/v1/jobs", headers=evil) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
        async with session.get(
            f"{pos_hub.url}/api/v1/printers", headers={"Origin": "http://evil.example"}
        ) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers


async def test_a_branch_cannot_push_extra_fields_to_every_company_operator(
    tmp_path: Path,
) -> None:
    company = await start_hub(hub_settings(tmp_path, company_mode=True))
    assert company.hub.tokens is not None
    ops = await OpsClient(company.url, company.hub.tokens.create(role="admin")).connect()
    branch = socketio.AsyncClient(reconnection=False)
    try:
        token = company.hub.tokens.create(role="branch", branch_ids=[3], sub="branch-3")
        await branch.connect(
            company.url, namespaces=[Namespace.BRANCH], auth={"token": token},
            transports=["websocket"],
        )  # fmt: skip

        async def say(event: str, payload: object) -> dict[str, object]:
            answer = await branch.call(event, payload, namespace=Namespace.BRANCH, timeout=10)
            assert isinstance(answer, dict)
            return answer

        assert (await say(BranchEvent.HELLO, {"stream_id": "s1", "name": "Dock"}))["ok"]
        printer = {
            "id": 1, "name": "Grill", "status": "online", "station": "kitchen",
            "company_id": 1, "branch_id": 3, "flags": {},
            "tracking_pixel": "https://evil.example/p.gif", "notes": "x" * 100,
        }  # fmt: skip
        answer = await say(
            BranchEvent.SNAPSHOT, {"seq": 1, "kind": "printer", "records": [printer], "last": True}
        )
        assert answer["ok"], answer

        async def listed() -> list[dict[str, object]]:
            return list((await ops.call(OpsEvent.PRINTERS_LIST))["printers"])

        shown = (await eventually(listed, what="mirrored printer"))[0]
        assert shown["name"] == "Grill"
        assert "tracking_pixel" not in shown and "notes" not in shown

        huge = {**printer, "capabilities": {"blob": "x" * 1_500_000}}
        answer = await say(
            BranchEvent.SNAPSHOT, {"seq": 2, "kind": "printer", "records": [huge], "last": True}
        )
        assert answer["ok"] is False and "bytes, more than" in str(answer["error"])
        hostile = {**printer, "name": "Grill\x1b]0;x\x07"}
        answer = await say(
            BranchEvent.SNAPSHOT, {"seq": 3, "kind": "printer", "records": [hostile], "last": True}
        )
        assert answer["ok"] is False and "control characters" in str(answer["error"])
        # Times are numbers (or null): a word, a bool or year 10,000 in a time field would
        # break every operator's dashboard that shows it (NaN is refused for any field).
        for seq, stamp in enumerate(("yesterday", True, 1e12, -5), start=4):
            bad = {**printer, "paused": True, "paused_at": stamp}
            answer = await say(
                BranchEvent.SNAPSHOT,
                {"seq": seq, "kind": "printer", "records": [bad], "last": True},
            )
            assert answer["ok"] is False, (stamp, answer)
            assert "paused_at must be a time" in str(answer["error"]), answer
        fine = {**printer, "paused": True, "paused_at": 1_765_000_000.5, "status_changed_at": None}
        answer = await say(
            BranchEvent.SNAPSHOT, {"seq": 10, "kind": "printer", "records": [fine], "last": True}
        )
        assert answer["ok"], answer
    finally:
        await branch.disconnect()
        await ops.close()
        await company.stop()
