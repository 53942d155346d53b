"""Roles that mean something (issue 12): viewer reads; operator prints, test-prints,
reprints, cancels, acknowledges; manager also configures printers and stations and
sends raw ESC/POS; admin may do everything. The whole role x action matrix, over
``/ops`` and over HTTP: a role below what an action takes gets ``forbidden`` and
changes nothing; a role at or above it is never refused for its role."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from pm_core.protocol import AgentEvent, OpsEvent
from pm_hub.auth import ROLE_ORDER
from pm_hub.operator_actions import REQUIRED_ROLE
from pm_hub.server import RunningHub
from tests.support.helpers import OpsClient, receipt_doc
from tests.support.raw_agent import RawAgent

RAW = {"raw_base64": base64.b64encode(b"\x1b@hello\n").decode()}


@dataclass
class Branch:
    printer_id: int
    job_id: int
    alert_id: int


@pytest.fixture
async def branch(hub: RunningHub, ops: OpsClient) -> AsyncIterator[Branch]:
    """A printer (its agent answers), a job, and an open alert."""
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "pass-box").connect()
    printer_id = (await agent.register("serial:PASS-1"))["printer_id"]
    job = await ops.call(
        OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("T1")}
    )
    await agent.call(AgentEvent.PRINTER_STATUS, {"printer_id": printer_id, "status": "paper_low"})
    alert = await ops.wait_for("desktop:health:alert")
    yield Branch(printer_id, job["job"]["id"], alert["id"])
    await agent.close()


def ops_calls(b: Branch) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each operation as an ``/ops`` event with a payload that names real things."""
    return {
        "list_printers": (OpsEvent.PRINTERS_LIST, {}),
        "get_printer": (OpsEvent.PRINTER_GET, {"printer_id": b.printer_id}),
        "list_jobs": (OpsEvent.JOBS_LIST, {}),
        "get_job": (OpsEvent.JOB_GET, {"job_id": b.job_id, "document": True}),
        "list_stations": (OpsEvent.STATIONS_LIST, {}),
        "list_alerts": (OpsEvent.ALERTS_LIST, {}),
        "list_agents": (OpsEvent.AGENTS_LIST, {}),
        "health_summary": (OpsEvent.HEALTH_SUMMARY, {}),
        "whoami": (OpsEvent.WHOAMI, {}),
        "list_branches": (OpsEvent.BRANCHES_LIST, {}),
        "test_printer": (OpsEvent.PRINTER_TEST, {"printer_id": b.printer_id}),
        "submit_job": (
            OpsEvent.JOB_SUBMIT,
            {"printer_id": b.printer_id, "document": receipt_doc("T2")},
        ),
        "reprint_job": (OpsEvent.JOB_REPRINT, {"job_id": b.job_id}),
        "cancel_job": (OpsEvent.JOB_CANCEL, {"job_id": b.job_id}),
        "ack_alert": (OpsEvent.ALERT_ACK, {"alert_id": b.alert_id}),
        "configure_printer": (
            OpsEvent.PRINTER_CONFIGURE,
            {"printer_id": b.printer_id, "name": "Pass"},
        ),
        "configure_station": (
            OpsEvent.STATION_CONFIGURE,
            {"station": "pass", "printer_ids": [b.printer_id]},
        ),
        "submit_raw_job": (OpsEvent.JOB_SUBMIT, {"printer_id": b.printer_id, "document": RAW}),
        # Last: its job waits, so the printer stays (conflict) for those allowed.
        "remove_printer": (OpsEvent.PRINTER_REMOVE, {"printer_id": b.printer_id}),
        "retire_agent": (OpsEvent.AGENT_RETIRE, {"agent_id": 999}),
        # No such agent connected: refused as offline for those allowed, nothing contacted.
        "add_printer": (OpsEvent.PRINTER_ADD, {"agent_id": 999, "uri": "tcp://127.0.0.1:9"}),
    }


def http_calls(b: Branch) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """The same operations as HTTP requests (those the API has)."""
    p, j, a = b.printer_id, b.job_id, b.alert_id
    doc = {"printer_id": p, "document": receipt_doc("T3")}
    return {
        "list_printers": ("GET", "/api/v1/printers", None),
        "get_printer": ("GET", f"/api/v1/printers/{p}", None),
        "list_jobs": ("GET", "/api/v1/jobs", None),
        "get_job": ("GET", f"/api/v1/jobs/{j}?document=1", None),
        "list_stations": ("GET", "/api/v1/stations", None),
        "list_alerts": ("GET", "/api/v1/alerts", None),
        "list_agents": ("GET", "/api/v1/agents", None),
        "health_summary": ("GET", "/api/v1/health", None),
        "test_printer": ("POST", f"/api/v1/printers/{p}/test", {}),
        "submit_job": ("POST", "/api/v1/jobs", doc),
        "reprint_job": ("POST", f"/api/v1/jobs/{j}/reprint", {}),
        "cancel_job": ("POST", f"/api/v1/jobs/{j}/cancel", {}),
        "ack_alert": ("POST", f"/api/v1/alerts/{a}/ack", None),
        "configure_printer": ("PATCH", f"/api/v1/printers/{p}", {"name": "Pass"}),
        "configure_station": ("PUT", "/api/v1/stations/pass", {"printer_ids": [p]}),
        "submit_raw_job": ("POST", "/api/v1/jobs", {"printer_id": p, "document": RAW}),
        "remove_printer": ("DELETE", f"/api/v1/printers/{p}", None),
        "retire_agent": ("POST", "/api/v1/agents/999/retire", {}),
        "add_printer": ("POST", "/api/v1/printers", {"agent_id": 999, "uri": "tcp://127.0.0.1:9"}),
    }


def required(operation: str) -> str:
    return "manager" if operation == "submit_raw_job" else REQUIRED_ROLE[operation]


def allowed(role: str, operation: str) -> bool:
    return ROLE_ORDER.index(role) >= ROLE_ORDER.index(required(operation))


def test_every_operation_has_a_rule_and_a_call() -> None:
    probe = Branch(1, 1, 1)
    assert set(ops_calls(probe)) == set(REQUIRED_ROLE) | {"submit_raw_job"}
    assert set(http_calls(probe)) <= set(ops_calls(probe))


def token(hub: RunningHub, role: str) -> str:
    assert hub.hub.tokens is not None
    branches = None if role == "admin" else [1]
    return hub.hub.tokens.create(role=role, branch_ids=branches, sub=f"{role}-1")


@pytest.mark.parametrize("role", ROLE_ORDER)
async def test_the_role_matrix_over_ops(hub: RunningHub, branch: Branch, role: str) -> None:
    client = await OpsClient(hub.url, token(hub, role)).connect()
    try:
        for operation, (event, payload) in ops_calls(branch).items():
            answer = await client.call(event, payload)
            refused = not answer.get("ok") and answer["error"]["code"] == "forbidden"
            assert refused == (not allowed(role, operation)), (role, operation, answer)
            if refused:
                assert f"role {role} may not" in answer["error"]["message"]
    finally:
        await client.close()


@pytest.mark.parametrize("role", ROLE_ORDER)
async def test_the_role_matrix_over_http(hub: RunningHub, branch: Branch, role: str) -> None:
    headers = {"Authorization": f"Bearer {token(hub, role)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for operation, (method, path, body) in http_calls(branch).items():
            async with session.request(method, hub.url + path, json=body) as resp:
                answer = await resp.json()
            refused = resp.status == 403
            assert refused == (not allowed(role, operation)), (role, operation, answer)
            if refused:
                assert answer["error"]["code"] == "forbidden"


async def test_a_refused_action_changes_nothing(
    hub: RunningHub, ops: OpsClient, branch: Branch
) -> None:
    viewer = await OpsClient(hub.url, token(hub, "viewer")).connect()
    operator = await OpsClient(hub.url, token(hub, "operator")).connect()
    try:
        before = await ops.call(OpsEvent.JOBS_LIST, {})
        printers = await ops.call(OpsEvent.PRINTERS_LIST, {})
        await viewer.call(OpsEvent.JOB_CANCEL, {"job_id": branch.job_id})
        await viewer.call(OpsEvent.ALERT_ACK, {"alert_id": branch.alert_id})
        await operator.call(
            OpsEvent.PRINTER_CONFIGURE, {"printer_id": branch.printer_id, "paused": True}
        )
        await operator.call(OpsEvent.JOB_SUBMIT, {"printer_id": branch.printer_id, "document": RAW})
        assert await ops.call(OpsEvent.JOBS_LIST, {}) == before
        assert await ops.call(OpsEvent.PRINTERS_LIST, {}) == printers
        alerts = await ops.call(OpsEvent.ALERTS_LIST, {"state": "open"})
        assert branch.alert_id in [a["id"] for a in alerts["alerts"]]
    finally:
        await viewer.close()
        await operator.close()
