"""The HTTP API: the same operations as /ops, Bearer JWT, error codes as HTTP statuses."""

from __future__ import annotations

from typing import Any

import aiohttp

from pm_agent.agent import Agent
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub
from tests.support.helpers import eventually, receipt_doc


async def request(
    hub: RunningHub, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, hub.url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def online_printers(hub: RunningHub, token: str, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        status, body = await request(hub, "GET", "/api/v1/printers", token)
        good = [p for p in body["printers"] if p["status"] == "online"]
        return body["printers"] if status == 200 and len(good) >= count else None

    return await eventually(check, what="printers online over HTTP")


async def test_healthz_says_alive_to_anyone_and_more_only_with_a_token(
    hub: RunningHub, admin_token: str
) -> None:
    """Load balancers and ``pm tui``'s first check need no token; the branch's name,
    counts and its company hub's address are not for anyone who can reach the port."""
    for token in (None, "garbage"):
        status, body = await request(hub, "GET", "/healthz", token)
        assert status == 200 and set(body) == {"ok", "version"} and body["ok"] is True
    status, body = await request(hub, "GET", "/healthz", admin_token)
    assert status == 200 and body["printers"] == 0 and body["branch"]["id"] == 1


async def test_api_refuses_missing_or_bad_tokens(hub: RunningHub) -> None:
    for token in (None, "garbage"):
        status, body = await request(hub, "GET", "/api/v1/printers", token)
        assert status == 401 and body["error"]["code"] == "auth_failed"


async def test_job_over_http_prints_and_can_be_fetched(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await online_printers(hub, admin_token, 2)
    kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
    status, body = await request(
        hub,
        "POST",
        "/api/v1/jobs",
        admin_token,
        {"printer_id": kitchen["id"], "document": receipt_doc("H-7")},
    )
    assert status == 201 and body["job"]["status"] == "queued"
    job_id = body["job"]["id"]

    async def completed() -> bool:
        _, got = await request(hub, "GET", f"/api/v1/jobs/{job_id}", admin_token)
        return got["job"]["status"] == "completed"

    await eventually(completed, what="job completed")
    receipts = await fleet.printers[0].wait_for_receipts(1)
    assert "ticket H-7" in receipts[0].text
    status, listed = await request(hub, "GET", "/api/v1/jobs?status=completed", admin_token)
    assert status == 200 and [j["id"] for j in listed["jobs"]] == [job_id]
    status, with_doc = await request(hub, "GET", f"/api/v1/jobs/{job_id}?document=1", admin_token)
    assert with_doc["job"]["document"]["blocks"][1]["text"] == "ticket H-7"


async def test_test_print_over_http_waits_for_the_result(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await online_printers(hub, admin_token, 2)
    bar = next(p for p in printers if p["name"] == "Bar")
    status, body = await request(hub, "POST", f"/api/v1/printers/{bar['id']}/test", admin_token)
    assert status == 200 and body["ok"] is True
    assert body["result"]["duration_ms"] > 0
    assert "PRINTERMASTER TEST PAGE" in fleet.printers[1].receipts[0].text


async def test_test_print_over_http_reports_a_printer_fault(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    printers = await online_printers(hub, admin_token, 2)
    bar = next(p for p in printers if p["name"] == "Bar")
    await fleet.printers[1].set_state("cover_open")
    status, body = await request(hub, "POST", f"/api/v1/printers/{bar['id']}/test", admin_token)
    assert status == 500 and body["ok"] is False
    assert "cover open" in body["error"]["message"]
    assert fleet.printers[1].receipts == []


async def test_http_errors_use_the_same_codes(hub: RunningHub, admin_token: str) -> None:
    cases = [
        ("GET", "/api/v1/jobs/999", None, 404, "not_found"),
        ("GET", "/api/v1/jobs/abc", None, 400, "invalid_payload"),
        ("GET", "/api/v1/jobs?limit=nope", None, 400, "invalid_payload"),
        ("POST", "/api/v1/jobs", {"printer_id": 3}, 400, "invalid_payload"),
        ("POST", "/api/v1/jobs", ["not", "an", "object"], 400, "invalid_payload"),
        ("POST", "/api/v1/printers/42/test", None, 404, "not_found"),
        ("PATCH", "/api/v1/printers/42", {"name": "x"}, 404, "not_found"),
        ("GET", "/api/v1/jobs/99999999999999999999", None, 400, "invalid_payload"),
        ("POST", "/api/v1/alerts/99999999999999999999/ack", None, 400, "invalid_payload"),
        ("GET", "/api/v1/jobs?limit=--5", None, 400, "invalid_payload"),
        ("GET", "/api/v1/jobs?printer_id=%C2%B2", None, 400, "invalid_payload"),
        ("GET", "/api/v1/jobs?since=yesterday", None, 400, "invalid_payload"),
        ("GET", "/api/v1/alerts?since=1e999", None, 400, "invalid_payload"),
    ]
    for method, path, body, want_status, code in cases:
        status, got = await request(hub, method, path, admin_token, body)
        assert (status, got["error"]["code"]) == (want_status, code), (method, path, got)


async def test_http_test_print_times_out_with_504(tmp_path: Any) -> None:
    import socketio

    from pm_core.protocol import Namespace
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    running = await start_hub(hub_settings(tmp_path, request_timeout=0.4))
    silent = socketio.AsyncClient(reconnection=False)
    try:
        key = await running.hub.create_license()
        await silent.connect(
            running.url,
            namespaces=[Namespace.AGENT],
            auth={"license_key": key, "device_id": "mute"},
            transports=["websocket"],
        )
        reg = await silent.call(
            "printer:discovered", {"address": "tcp://127.0.0.1:2"}, namespace=Namespace.AGENT
        )
        assert running.hub.tokens is not None
        token = running.hub.tokens.create(role="admin")
        status, body = await request(
            running, "POST", f"/api/v1/printers/{reg['printer_id']}/test", token
        )
        assert status == 504 and body["error"]["code"] == "timeout"
    finally:
        await silent.disconnect()
        await running.stop()


async def test_oversized_body_is_refused_with_a_json_error(tmp_path: Any) -> None:
    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    running = await start_hub(hub_settings(tmp_path, max_payload_bytes=4096))
    try:
        assert running.hub.tokens is not None
        token = running.hub.tokens.create(role="admin")
        big = {"printer_id": 1, "document": {"raw_base64": "A" * 10_000}}
        status, body = await request(running, "POST", "/api/v1/jobs", token, big)
        assert status == 413 and body["error"]["code"] == "invalid_payload"
        assert "4096" in body["error"]["message"]
    finally:
        await running.stop()


async def test_queue_filters_cancel_reprint_and_alerts_over_http(
    hub: RunningHub, admin_token: str, agent: Agent, fleet: SimulatorFleet
) -> None:
    """What an operator does in the dashboard, done with curl."""
    import time

    printers = await online_printers(hub, admin_token, 2)
    bar = next(p for p in printers if p["name"] == "Bar")
    kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
    await fleet.printers[1].set_state("cover_open")

    async def bar_open() -> bool:
        _, got = await request(hub, "GET", f"/api/v1/printers/{bar['id']}", admin_token)
        return got["printer"]["status"] == "cover_open"

    await eventually(bar_open, what="cover open seen")
    before = time.time()
    status, held = await request(
        hub,
        "POST",
        "/api/v1/jobs",
        admin_token,
        {"printer_id": bar["id"], "document": receipt_doc("WAIT")},
    )
    assert status == 201
    status, done = await request(
        hub,
        "POST",
        "/api/v1/jobs",
        admin_token,
        {"printer_id": kitchen["id"], "document": receipt_doc("DONE")},
    )
    assert status == 201

    async def kitchen_done() -> bool:
        _, got = await request(hub, "GET", f"/api/v1/jobs/{done['job']['id']}", admin_token)
        return got["job"]["status"] == "completed"

    await eventually(kitchen_done, what="kitchen job printed")
    status, listed = await request(
        hub, "GET", f"/api/v1/jobs?since={before - 0.001}&until={time.time() + 1}", admin_token
    )
    assert status == 200, listed
    assert {j["id"] for j in listed["jobs"]} == {held["job"]["id"], done["job"]["id"]}
    _, later = await request(hub, "GET", f"/api/v1/jobs?since={time.time() + 60}", admin_token)
    assert later["jobs"] == []
    _, by_printer = await request(
        hub, "GET", f"/api/v1/jobs?printer_id={bar['id']}&status=queued,dispatched", admin_token
    )
    assert [j["id"] for j in by_printer["jobs"]] == [held["job"]["id"]]
    _, by_station = await request(hub, "GET", "/api/v1/jobs?station=nowhere", admin_token)
    assert by_station["jobs"] == []

    status, cancelled = await request(
        hub, "POST", f"/api/v1/jobs/{held['job']['id']}/cancel", admin_token, {"reason": "gone"}
    )
    assert status == 200 and cancelled["job"]["status"] == "cancelled", cancelled
    status, again = await request(
        hub, "POST", f"/api/v1/jobs/{held['job']['id']}/cancel", admin_token
    )
    assert status == 409 and again["error"]["code"] == "conflict"
    status, copy = await request(
        hub, "POST", f"/api/v1/jobs/{done['job']['id']}/reprint", admin_token
    )
    assert status == 201 and copy["job"]["reprint_of"] == done["job"]["id"]

    async def cover_alert() -> dict[str, Any] | None:
        _, got = await request(hub, "GET", "/api/v1/alerts?state=open", admin_token)
        return next((a for a in got["alerts"] if a["kind"] == "cover_open"), None)

    alert = await eventually(cover_alert, what="cover alert over HTTP")
    status, acked = await request(hub, "POST", f"/api/v1/alerts/{alert['id']}/ack", admin_token)
    assert status == 200 and acked["alert"]["state"] == "acknowledged"
    status, health = await request(hub, "GET", "/api/v1/health", admin_token)
    assert status == 200 and health["ok"] and len(health["agents"]) == 1
    await fleet.printers[1].set_state("online")
