"""The hub's recent log lines (issue 16, "Logs"): a bounded ring served over ``/ops``
to managers and admins only, filtered by level, printer or job (a job's lines are
joined by its correlation id), and pushed live to a dashboard that follows them,
never more than a bounded batch at a time."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pm_core.protocol import AgentEvent, OpsEvent
from pm_hub.auth import ROLE_ORDER
from pm_hub.log_ring import LogFilter, LogRing, PrinterNames, job_of
from pm_hub.server import RunningHub
from tests.hub.test_coalesce import BatchedOps
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.raw_agent import RawAgent

hub_log = logging.getLogger("pm_hub.dispatch")


def token(hub: RunningHub, role: str) -> str:
    assert hub.hub.tokens is not None
    branches = None if role == "admin" else [1]
    return hub.hub.tokens.create(role=role, branch_ids=branches, sub=f"{role}-1")


def test_the_ring_keeps_only_its_capacity_and_the_newest_lines() -> None:
    ring = LogRing(capacity=5)
    logger = logging.getLogger("pm_hub.test_ring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        for n in range(1, 21):
            logger.info("line %d about printer %d", n, n % 3 + 1)
    finally:
        logger.removeHandler(ring)
    assert len(ring) == 5
    lines = ring.lines(LogFilter(), limit=100)
    assert [line["message"] for line in lines] == [
        f"line {n} about printer {n % 3 + 1}" for n in range(16, 21)
    ]
    assert [line["seq"] for line in lines] == [16, 17, 18, 19, 20]
    # The printer a line names is found; a filter keeps only its lines.
    assert {line["printer_id"] for line in ring.lines(LogFilter(printer_id=2))} == {2}
    # A very long message is cut, not kept whole.
    logger.addHandler(ring)
    try:
        logger.warning("x" * 50_000)
    finally:
        logger.removeHandler(ring)
    assert len(ring.lines(LogFilter(), limit=1)[0]["message"]) <= 1000


def test_a_job_correlation_id_names_its_job() -> None:
    assert job_of("job_1733550000000_42_a1b2c3d4") == 42
    assert job_of("ops_1733550000000_42_a1b2c3d4") is None
    assert job_of(None) is None


@pytest.mark.parametrize("role", ROLE_ORDER)
async def test_only_managers_and_admins_read_the_logs(hub: RunningHub, role: str) -> None:
    client = await OpsClient(hub.url, token(hub, role)).connect()
    try:
        for event in (OpsEvent.LOGS_LIST, OpsEvent.LOGS_FOLLOW):
            answer = await client.call(event, {})
            if role in ("viewer", "operator"):
                assert answer["error"]["code"] == "forbidden", answer
                assert f"role {role} may not read the hub's logs" in answer["error"]["message"]
            else:
                assert answer["ok"], answer
    finally:
        await client.close()


async def test_bad_filters_are_refused(ops: OpsClient) -> None:
    for payload in ({"level": "loud"}, {"limit": 0}, {"limit": 5000}, {"job_id": "x"}, {"who": 1}):
        answer = await ops.call(OpsEvent.LOGS_LIST, payload)
        assert answer["error"]["code"] == "invalid_payload", (payload, answer)


async def test_a_jobs_lines_are_listed_by_its_id(
    hub: RunningHub, ops: OpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "logs-box").connect()
    try:
        printer_id = (await agent.register("serial:LOG-1"))["printer_id"]
        first = await ops.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("A")}
        )
        second = await ops.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("B")}
        )
        job_id = first["job"]["id"]
        await agent.call(
            AgentEvent.PRINTER_STATUS, {"printer_id": printer_id, "status": "paper_out"}
        )
        answer = await eventually(
            lambda: _with_lines(ops, {"job_id": job_id}), what="lines about the first job"
        )
        assert all(line["job_id"] == job_id for line in answer["lines"])
        assert all(line["correlation_id"].startswith("job_") for line in answer["lines"])
        assert any("accepted" in line["message"] for line in answer["lines"])
        other = await ops.call(OpsEvent.LOGS_LIST, {"job_id": second["job"]["id"]})
        assert not {line["seq"] for line in other["lines"]} & {
            line["seq"] for line in answer["lines"]
        }
        # Level: warning and above only.
        hub_log.warning("printer %d needs paper", printer_id)
        warnings = await ops.call(
            OpsEvent.LOGS_LIST, {"level": "warning", "printer_id": printer_id}
        )
        assert warnings["lines"] and all(
            line["level"] in ("warning", "error", "critical") for line in warnings["lines"]
        )
        assert warnings["lines"][-1]["message"] == f"printer {printer_id} needs paper"
        # limit: the newest ones.
        few = await ops.call(OpsEvent.LOGS_LIST, {"limit": 2})
        assert len(few["lines"]) == 2 and few["lines"][-1]["seq"] <= few["last_seq"]
    finally:
        await agent.close()


async def test_a_jobs_lines_leave_out_the_background_work_it_started(
    hub: RunningHub, ops: OpsClient, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A job's handler opens the batches a dashboard gets (``coalesce``) and the
    announcement of its printer's queue; they go out later, for every change of their
    window, so their lines carry no job's id: the job's lines are its own."""
    caplog.set_level(logging.DEBUG)
    dashboard = await BatchedOps(hub.url, admin_token).connect()
    agent = await RawAgent(hub.url, await hub.hub.create_license(), "batch-box").connect()
    try:
        printer_id = (await agent.register("serial:LOG-2"))["printer_id"]
        first_seq = hub.hub.logs.lines(LogFilter(), limit=1)[-1]["seq"]
        ack = await ops.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("A")}
        )
        job_id = ack["job"]["id"]

        def batches() -> list[dict[str, Any]]:
            lines = hub.hub.logs.lines(LogFilter(), after=first_seq, limit=500)
            sent = [line for line in lines if line["logger"] == "pm_hub.coalesce"]
            return (
                sent
                if {"jobs:update", "printers:update"}
                <= {line["message"].split(" ")[0] for line in sent}
                else []
            )

        background = await eventually(batches, what="the job's and its printer's batches")
        assert all(line["correlation_id"] is None for line in background), background
        answer = await ops.call(OpsEvent.LOGS_LIST, {"job_id": job_id, "limit": 500})
        messages = [line["message"] for line in answer["lines"]]
        assert any(f"job {job_id} accepted" in m for m in messages)
        assert all(f"job {job_id}" in m or m.startswith("job:submit from") for m in messages), (
            messages
        )
    finally:
        await agent.close()
        await dashboard.close()


async def _with_lines(ops: OpsClient, payload: dict[str, object]) -> dict[str, object] | None:
    answer = await ops.call(OpsEvent.LOGS_LIST, payload)
    return answer if answer.get("ok") and answer["lines"] else None


async def test_a_follower_gets_new_matching_lines_pushed_in_bounded_batches(
    hub: RunningHub, ops: OpsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = await ops.call(OpsEvent.LOGS_FOLLOW, {"level": "warning"})
    assert answer == {"ok": True, "following": True, "last_seq": answer["last_seq"]}
    hub_log.info("printer 7 is fine")
    hub_log.warning("printer 7 ran out of paper")
    update = await ops.wait_for("logs:update", timeout=5)
    messages = [line["message"] for line in update["lines"]]
    assert "printer 7 ran out of paper" in messages
    assert "printer 7 is fine" not in messages
    assert update["lines"][-1]["printer_id"] == 7
    # A burst bigger than a batch: the newest lines come, the rest are counted as dropped.
    ops.events.clear()
    for n in range(hub.hub.logs.push_limit * 3):
        hub_log.warning("burst %d", n)
    burst = await ops.wait_for("logs:update", lambda d: d["dropped"] > 0, timeout=5)
    assert len(burst["lines"]) <= hub.hub.logs.push_limit
    assert burst["lines"][-1]["message"].startswith("burst ")
    # Stop following: nothing more comes.
    await ops.call(OpsEvent.LOGS_FOLLOW, {"follow": False})
    assert hub.hub.logs.followers == 0
    # A dashboard that goes away stops being a follower.
    await ops.call(OpsEvent.LOGS_FOLLOW, {})
    assert hub.hub.logs.followers == 1
    await ops.close()
    await eventually(lambda: hub.hub.logs.followers == 0, what="the follower dropped")


def test_a_printer_named_in_a_line_is_found() -> None:
    class State:
        printers = {3: {"name": "Bar"}, 4: {"name": "Kitchen-1"}}

    ring = LogRing(capacity=10)
    ring.printer_named = PrinterNames(State()).lookup
    logger = logging.getLogger("pm_hub.test_names")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        logger.info("printer Kitchen-1 is paper_out")
        logger.info("printer Nowhere is online")
        logger.info("alert cleared: printer:3")
    finally:
        logger.removeHandler(ring)
    assert [line["printer_id"] for line in ring.lines(LogFilter())] == [4, None, 3]
