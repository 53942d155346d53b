"""Clean input at the hub (issue 12, findings 3, 7 and 11): names refuse control
characters, out-of-range numbers, lone surrogates and hostile nesting are
``invalid_payload`` (never ``internal``), a packet that cannot be decoded closes that
one connection with one log line, and the reserved event names are refused."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from pm_core.protocol import Namespace, OpsEvent
from pm_hub.config import load_settings
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, eventually
from tests.support.raw_agent import RawAgent
from tests.support.raw_ws import RawSocketIO

ESCAPE = "Kitchen\x1b]0;pwned\x07"


async def test_an_agent_naming_a_printer_with_terminal_commands_is_refused(
    hub: RunningHub,
) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "box").connect()
    try:
        for field in ("name", "station"):
            answer = await agent.call(
                "printer:discovered",
                {"address": "tcp://127.0.0.1:9", "identity": f"id-{field}", field: ESCAPE},
            )
            assert answer["ok"] is False, answer
            assert answer["error"] == {
                "code": "invalid_payload",
                "message": f"{field} must not hold control characters (\\x1b, \\x07)",
            }
        assert hub.hub.printers == {}
        # What a printer says about itself is cleaned, not refused.
        ok = await agent.call(
            "printer:discovered",
            {"address": "tcp://127.0.0.1:9", "identity": "id-3", "model": "TM-T20\x1b\x00III"},
        )
        assert ok["ok"] and ok["printer"]["model"] == "TM-T20III"
    finally:
        await agent.close()


async def test_an_agent_with_a_hostile_name_cannot_connect(hub: RunningHub) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", lambda data=None: errors.append(data), namespace="/agent")
    auth = {"license_key": await hub.hub.create_license(), "device_id": "d1", "name": ESCAPE}
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(hub.url, namespaces=["/agent"], auth=auth, transports=["websocket"])
    assert "name must not hold control characters" in str(errors)
    assert hub.hub.agents == {}


async def test_operators_cannot_name_printers_or_stations_with_control_characters(
    hub: RunningHub, ops: OpsClient
) -> None:
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "box").connect()
    try:
        printer_id = (await agent.register("serial:1"))["printer_id"]
        for event, payload, field in (
            (OpsEvent.PRINTER_CONFIGURE, {"printer_id": printer_id, "name": ESCAPE}, "name"),
            (OpsEvent.PRINTER_CONFIGURE, {"printer_id": printer_id, "station": ESCAPE}, "station"),
            (OpsEvent.STATION_CONFIGURE, {"station": ESCAPE, "printer_ids": []}, "station"),
        ):
            answer = await ops.call(event, payload)
            assert answer["error"]["code"] == "invalid_payload", answer
            assert answer["error"]["message"].startswith(f"{field} must not hold control")
        assert hub.hub.printers[printer_id]["name"] == "Pass"
    finally:
        await agent.close()


def test_a_branch_name_with_control_characters_stops_the_hub_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="branch_name must not hold control characters"):
        load_settings(overrides={"data_dir": tmp_path, "branch_name": ESCAPE})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"printer_id": 2**63}, "out of range"),
        ({"printer_id": -(2**64)}, "out of range"),
        ({"job_id": 1, "reason": "\ud800"}, "surrogate"),
        ({"printer_id": float("nan")}, "not finite"),
    ],
)
async def test_hostile_values_are_invalid_payload_not_internal(
    ops: OpsClient, payload: dict[str, Any], message: str
) -> None:
    for event in (OpsEvent.PRINTER_GET, OpsEvent.JOB_CANCEL, OpsEvent.PRINTERS_LIST):
        answer = await ops.call(event, payload)
        assert answer["error"]["code"] == "invalid_payload", (event, answer)
        assert message in answer["error"]["message"]


async def test_http_refuses_the_same_values(hub: RunningHub, admin_token: str) -> None:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    bodies = [
        '{"printer_id": 9223372036854775808, "document": {"blocks": [{"type": "feed"}]}}',
        '{"printer_id": 1, "document": {"blocks": [{"type": "text", "text": "\\ud800"}]}}',
        '{"printer_id": NaN}',
        "[" * 50_000 + "]" * 50_000,
    ]
    async with aiohttp.ClientSession(headers=headers) as session:
        for body in bodies:
            async with session.post(f"{hub.url}/api/v1/jobs", data=body) as resp:
                answer = await resp.json()
                assert resp.status == 400, (body[:40], answer)
                assert answer["error"]["code"] == "invalid_payload"
        async with session.get(f"{hub.url}/api/v1/jobs/99999999999999999999") as resp:
            assert resp.status == 400


async def test_nesting_too_deep_for_a_handler_is_refused(ops: OpsClient) -> None:
    deep: Any = {"x": 1}
    for _ in range(40):
        deep = {"x": deep}
    answer = await ops.call(OpsEvent.JOBS_LIST, deep)
    assert answer["error"] == {
        "code": "invalid_payload",
        "message": "payload is nested deeper than 32 levels",
    }


@pytest.mark.parametrize(
    "packet",
    [
        "42/ops," + "[" * 100_000 + "]" * 100_000,  # deeper than the JSON parser goes
        "42/ops,not json at all",
        '42/ops,{"an": "object, not a list"}',
        "4zz",
    ],
    ids=["too-deep", "not-json", "not-a-list", "bad-type"],
)
async def test_an_undecodable_packet_closes_that_connection_with_one_line(
    hub: RunningHub, admin_token: str, caplog: pytest.LogCaptureFixture, packet: str
) -> None:
    caplog.set_level(logging.INFO)
    client = await asyncio.to_thread(RawSocketIO, "127.0.0.1", hub.port)
    try:
        answer = await asyncio.to_thread(
            client.connect_namespace, Namespace.OPS, {"token": admin_token}
        )
        assert answer.startswith("40/ops,")
        await eventually(lambda: len(hub.hub.state.operators) == 1, what="connected")
        await asyncio.to_thread(client.send_text, packet)
        assert await asyncio.to_thread(client.closed_by_peer)
        await eventually(lambda: not hub.hub.state.operators, what="dropped")
    finally:
        client.close()
    assert "Traceback" not in caplog.text
    lines = [r for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None


async def test_the_reserved_event_names_are_refused(ops: OpsClient, hub: RunningHub) -> None:
    for event in ("connect", "disconnect"):
        answer = await ops.call(event, {"token": "x"})
        assert answer == {
            "ok": False,
            "error": {"code": "invalid_payload", "message": f"{event} is reserved; not an event"},
        }
    assert len(hub.hub.state.operators) == 1  # still connected, nothing else happened
