"""The sample hub (snapshot tests, screenshots) sends and answers what a real hub does.

A real hub, agent and simulated printers go through the kinds of changes the sample
replays (a printer changed whole, a status alone, jobs, alerts opening and
acknowledged, an agent leaving, a test print, heartbeats), with a dashboard connected
as ``pm tui`` connects (``coalesce: true``). Every event name the sample sends must be
one the hub sent, and every kind of record the sample sends or answers must carry the
fields the hub's do. When this fails after a change to the hub, record the samples
again (``python -m tests.support.record_sample``) and update the snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pm_agent.sim import SimulatorFleet
from pm_core.protocol import HubEvent, OpsEvent, is_status_entry
from pm_hub.server import RunningHub
from pm_tui.app import JOBS_ON_CONNECT
from pm_tui.hub_link import HubLink, LinkState
from tests.conftest import AgentFactory
from tests.support.company_support import (
    BranchBox,
    branch_token,
    operator_token,
    start_branch_box,
    start_company,
)
from tests.support.sample_hub import COMPANY_RECORDING, SampleHub
from tests.support.wire_shapes import WireShapes

Record = dict[str, Any]
TICKET = {"blocks": [{"type": "text", "text": "TABLE 4"}, {"type": "cut"}]}


class Dashboard:
    """Connected to a hub as ``pm tui`` is (``HubLink``): keeps the shapes it sees."""

    def __init__(self, url: str, token: str) -> None:
        self.shapes = WireShapes()
        self.received: list[tuple[str, Any]] = []
        self.link = HubLink(url, token, on_event=self._event, on_state=self._state)
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _event(self, event: str, data: Any) -> None:
        self.received.append((event, data))
        self.shapes.event(event, data)

    def _state(self, state: LinkState) -> None:
        if state.state == "connected":
            self._up.set()

    async def ask(self, event: str, payload: Record | None = None) -> Record:
        ack = await self.link.call(event, payload or {})
        assert ack.get("ok"), (event, payload, ack)
        self.shapes.answer(event, ack)
        return ack

    async def load(self) -> dict[str, Record]:
        """What the dashboard asks for when it connects."""
        answers = {
            event: await self.ask(event, payload)
            for event, payload in (
                (OpsEvent.WHOAMI, {}),
                (OpsEvent.PRINTERS_LIST, {}),
                (OpsEvent.JOBS_LIST, {"limit": JOBS_ON_CONNECT}),
                (OpsEvent.ALERTS_LIST, {"limit": 200}),
                (OpsEvent.AGENTS_LIST, {}),
                (OpsEvent.STATIONS_LIST, {}),
                (OpsEvent.HEALTH_SUMMARY, {}),
            )
        }
        if answers[OpsEvent.WHOAMI]["hub"].get("company_mode"):
            answers[OpsEvent.BRANCHES_LIST] = await self.ask(OpsEvent.BRANCHES_LIST)
        return answers

    def got(self, check: Callable[[str, Any], Any]) -> bool:
        return any(check(event, data) for event, data in self.received)

    async def until(self, what: str, check: Callable[[], Any], timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"the hub did not get there: {what}")


@contextlib.asynccontextmanager
async def connected(url: str, token: str) -> AsyncIterator[Dashboard]:
    dashboard = Dashboard(url, token)
    task = asyncio.create_task(dashboard.link.run())
    try:
        await asyncio.wait_for(dashboard._up.wait(), 10)
        yield dashboard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dashboard.link.close()


async def sample_shapes(sample: SampleHub) -> WireShapes:
    """Everything the sample answers and sends: the load, every detail, the replay,
    and an operator's actions."""
    shapes = WireShapes()
    sample.bind(on_event=shapes.event, on_state=lambda _state: None)

    async def ask(event: str, payload: Record | None = None) -> Record:
        ack = await sample.call(event, payload)
        assert ack.get("ok"), (event, payload, ack)
        shapes.answer(event, ack)
        return ack

    for event, payload in (
        (OpsEvent.WHOAMI, {}),
        (OpsEvent.PRINTERS_LIST, {}),
        (OpsEvent.JOBS_LIST, {"limit": JOBS_ON_CONNECT}),
        (OpsEvent.ALERTS_LIST, {"limit": 200}),
        (OpsEvent.AGENTS_LIST, {}),
        (OpsEvent.STATIONS_LIST, {}),
        (OpsEvent.HEALTH_SUMMARY, {}),
    ):
        await ask(event, payload)
    if sample.branches:
        await ask(OpsEvent.BRANCHES_LIST)
    assert sample.replay() > 0
    for printer_id in sample.printers:
        await ask(OpsEvent.PRINTER_GET, {"printer_id": printer_id})
    for job_id in sample.jobs:
        await ask(OpsEvent.JOB_GET, {"job_id": job_id})
        await ask(OpsEvent.JOB_GET, {"job_id": job_id, "document": True})
    printer_id = min(sample.printers)
    await ask(OpsEvent.PRINTER_CONFIGURE, {"printer_id": printer_id, "paused": True})
    job = (await ask(OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": TICKET}))["job"]
    await ask(OpsEvent.JOB_CANCEL, {"job_id": job["id"]})
    await ask(OpsEvent.JOB_REPRINT, {"job_id": job["id"]})
    await ask(OpsEvent.JOB_GET, {"job_id": job["id"] + 1, "document": True})
    alert = next(a for a in sample.alerts.values() if a["state"] == "open")
    await ask(OpsEvent.ALERT_ACK, {"alert_id": alert["id"]})
    await ask(OpsEvent.PRINTER_TEST, {"printer_id": printer_id})
    await asyncio.sleep(0)  # the test result follows the answer
    return shapes


async def test_the_sample_branch_sends_what_a_branch_hub_sends(
    hub: RunningHub, admin_token: str, make_agent: AgentFactory, fleet: SimulatorFleet
) -> None:
    """Batched printer updates (whole and status-only), job batches, alerts, an agent
    leaving, a test print's result and heartbeats, with the same fields as the
    sample's; and the same answers to every request the dashboard makes."""
    kitchen, bar = fleet.printers
    specs = [f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen" for p in fleet.printers]
    agent = await make_agent(specs, ping_interval=0.2, report_interval=0.5)
    async with connected(hub.url, admin_token) as dashboard:

        async def listed() -> dict[str, int]:
            printers = (await dashboard.ask(OpsEvent.PRINTERS_LIST))["printers"]
            return {p["name"]: p["id"] for p in printers if p["status"] == "online"}

        ids = await dashboard.until("two printers online", lambda: _both(listed()))
        await dashboard.load()
        # A printer changed whole (its settings), then one whose status alone changed.
        await dashboard.ask(OpsEvent.PRINTER_CONFIGURE, {"printer_id": ids["Bar"], "paused": True})
        await dashboard.ask(OpsEvent.PRINTER_CONFIGURE, {"printer_id": ids["Bar"], "paused": False})
        await kitchen.set_state("paper_out")
        await dashboard.until(
            "a status entry and the alert it opens",
            lambda: dashboard.got(_status_entry) and dashboard.got(_opened),
        )
        job = (
            await dashboard.ask(
                OpsEvent.JOB_SUBMIT, {"printer_id": ids["Kitchen-1"], "document": TICKET}
            )
        )["job"]
        await dashboard.ask(OpsEvent.JOB_CANCEL, {"job_id": job["id"]})
        reprint = (await dashboard.ask(OpsEvent.JOB_REPRINT, {"job_id": job["id"]}))["job"]
        await dashboard.ask(OpsEvent.JOB_GET, {"job_id": reprint["id"]})
        await dashboard.ask(OpsEvent.JOB_GET, {"job_id": job["id"], "document": True})
        await dashboard.ask(OpsEvent.PRINTER_GET, {"printer_id": ids["Kitchen-1"]})
        alerts = (await dashboard.ask(OpsEvent.ALERTS_LIST, {"state": "open"}))["alerts"]
        await dashboard.ask(OpsEvent.ALERT_ACK, {"alert_id": alerts[0]["id"]})
        await dashboard.ask(OpsEvent.PRINTER_TEST, {"printer_id": ids["Bar"]})
        await dashboard.until(
            "the test print's result",
            lambda: dashboard.got(lambda e, _d: e == HubEvent.PRINTER_TEST_COMPLETED),
        )
        await dashboard.until("health figures", lambda: _health_points(dashboard))
        # The agent re-reports an unchanged status every 10 s; the hub sends what it
        # heard that way as printers:seen every 10 s.
        await dashboard.until(
            "heartbeats as printers:seen",
            lambda: dashboard.got(lambda e, _d: e == HubEvent.PRINTERS_SEEN),
            timeout=25,
        )
        await agent.stop()
        await dashboard.until(
            "the agent leaving", lambda: dashboard.got(lambda e, _d: e == HubEvent.AGENT_UPDATE)
        )
    assert bar.state == "online"
    sample = await sample_shapes(SampleHub())
    assert sample.differences(dashboard.shapes) == []


@pytest.fixture
async def company_boxes(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, list[BranchBox]]]:
    company = await start_company(tmp_path / "company")
    boxes = [
        await start_branch_box(
            tmp_path, name, company=company, token=branch_token(company, branch_id)
        )
        for branch_id, name in ((1, "Downtown"), (2, "Harbour"))
    ]
    yield company, boxes
    for box in boxes:
        await box.close()
    await company.stop()


async def test_the_sample_company_sends_what_a_company_hub_sends(
    company_boxes: tuple[RunningHub, list[BranchBox]],
) -> None:
    """Against a company hub: branch rows (listed, and live as ``branch:update``),
    mirrored printers, jobs and alerts, a branch hub going offline."""
    company, (downtown, harbour) = company_boxes
    async with connected(company.url, operator_token(company)) as dashboard:

        async def ready() -> bool:
            answers = await dashboard.load()
            return len(answers[OpsEvent.PRINTERS_LIST]["printers"]) == 4

        await dashboard.until("both branches' printers mirrored", ready)
        await downtown.fleet.printers[0].set_state("paper_out")
        await dashboard.until(
            "the paper-out mirrored", lambda: dashboard.got(_status_entry) or dashboard.got(_whole)
        )
        await dashboard.until("its alert", lambda: dashboard.got(_opened))
        ids = {
            p["name"]: p["id"] for p in (await dashboard.load())[OpsEvent.PRINTERS_LIST]["printers"]
        }
        job = (
            await dashboard.ask(
                OpsEvent.JOB_SUBMIT, {"printer_id": ids["Kitchen-1"], "document": TICKET}
            )
        )["job"]
        await dashboard.until(
            "jobs:update", lambda: dashboard.got(lambda e, _d: e == HubEvent.JOBS_UPDATE)
        )
        await dashboard.ask(OpsEvent.JOB_GET, {"job_id": job["id"], "document": True})
        await dashboard.ask(OpsEvent.PRINTER_GET, {"printer_id": ids["Kitchen-1"]})
        await harbour.stop()
        await dashboard.until(
            "Harbour offline",
            lambda: dashboard.got(
                lambda e, d: (
                    e == HubEvent.BRANCHES_UPDATE
                    and any(row["link"]["state"] == "offline" for row in d["branches"])
                )
            ),
        )
        await dashboard.until(
            "the agent gone", lambda: dashboard.got(lambda e, _d: e == HubEvent.AGENT_UPDATE)
        )
        await dashboard.until(
            "printers:seen",
            lambda: dashboard.got(lambda e, _d: e == HubEvent.PRINTERS_SEEN),
            timeout=25,
        )
        await dashboard.load()
    sample = SampleHub(recording=COMPANY_RECORDING)
    shapes = WireShapes()
    sample.bind(on_event=shapes.event, on_state=lambda _state: None)
    for event in sample.recording["connect"]:
        shapes.answer(event, await sample.call(event))
    sample.replay()
    for printer_id in sample.printers:
        shapes.answer(
            OpsEvent.PRINTER_GET,
            await sample.call(OpsEvent.PRINTER_GET, {"printer_id": printer_id}),
        )
    for job_id in sample.jobs:
        shapes.answer(
            OpsEvent.JOB_GET,
            await sample.call(OpsEvent.JOB_GET, {"job_id": job_id, "document": True}),
        )
    assert shapes.differences(dashboard.shapes) == []


async def _both(listed: Any) -> dict[str, int] | None:
    ids: dict[str, int] = await listed
    return ids if len(ids) == 2 else None


def _status_entry(event: str, data: Any) -> bool:
    return event == HubEvent.PRINTERS_UPDATE and any(is_status_entry(p) for p in data["printers"])


def _whole(event: str, data: Any) -> bool:
    return event == HubEvent.PRINTERS_UPDATE and any(
        not is_status_entry(p) for p in data["printers"]
    )


def _opened(event: str, data: Any) -> bool:
    return event == HubEvent.HEALTH_ALERT


async def _health_points(dashboard: Dashboard) -> bool:
    summary = await dashboard.ask(OpsEvent.HEALTH_SUMMARY)
    return any(agent["series"] for agent in summary["agents"])
