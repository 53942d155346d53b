"""On a company hub, a branch's numbers follow the company hub's answers within a second:
the QUEUE of a mirrored printer (it moves with the branch's jobs, not only with the
printer's status) and each branch's row (printers, problems, alerts, jobs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp
from tests.support.company_support import (
    BranchBox,
    branch_token,
    operator_token,
    start_branch_box,
    start_company,
)
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.tui_support import column, dashboard, wait_until

WITHIN_S = 1.0


@pytest.fixture
async def company(tmp_path: Path) -> Any:
    running = await start_company(tmp_path / "company")
    yield running
    await running.stop()


@pytest.fixture
async def box(tmp_path: Path, company: RunningHub) -> Any:
    made = await start_branch_box(
        tmp_path, "Harbour", company=company, token=branch_token(company, 1)
    )
    yield made
    await made.close()


async def company_numbers(ops: OpsClient) -> dict[str, Any]:
    printers = (await ops.call("printers:list", {}))["printers"]
    branches = (await ops.call("branches:list", {}))["branches"]
    return {
        "queue": {p["name"]: p["queue"] for p in printers},
        "branches": {
            b["name"]: [
                str(b["printers"]),
                str(b["problems"]),
                str(sum(b["alerts"].values())),
                str(b["active_jobs"]),
            ]
            for b in branches
        },
        "problems": sum(1 for p in printers if p["status"] in PROBLEM_PRINTER_STATUSES),
    }


def screen_numbers(app: PrinterMasterApp) -> dict[str, Any]:
    names = column(app, "#printers", "name")
    queues = column(app, "#printers", "queue")
    rows = zip(
        column(app, "#branches", "name"),
        column(app, "#branches", "printers"),
        column(app, "#branches", "problems"),
        column(app, "#branches", "alerts"),
        column(app, "#branches", "jobs"),
        strict=True,
    )
    return {
        "queue": {n: int(q) for n, q in zip(names, queues, strict=True)},
        "branches": {name: rest for name, *rest in rows if not name.endswith("All branches")},
        "problems": sum(1 for s in column(app, "#printers", "status") if s != "ONLINE"),
    }


async def agree(pilot: Any, app: PrinterMasterApp, ops: OpsClient, step: str) -> None:
    settled = await company_numbers(ops)
    changed_at = time.monotonic()
    while time.monotonic() - changed_at < 0.3:
        await pilot.pause(0.05)
        now = await company_numbers(ops)
        if now != settled:
            settled, changed_at = now, time.monotonic()
    deadline = changed_at + WITHIN_S + 0.3
    while True:
        shown = screen_numbers(app)
        if shown == settled:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{step}: the screen shows {shown}, the company hub {settled}")
        await pilot.pause(0.05)


async def test_branch_numbers_follow_the_company_hub(company: RunningHub, box: BranchBox) -> None:
    token = operator_token(company)
    ops = OpsClient(company.url, token)
    await ops.connect()
    try:
        async with dashboard(company.url, token, size=(120, 30)) as (app, pilot):
            await wait_until(pilot, lambda: column(app, "#printers", "status") == ["ONLINE"] * 2)
            await wait_until(pilot, lambda: len(column(app, "#branches", "name")) >= 1)
            await agree(pilot, app, ops, "at start")
            bar_sim = next(p for p in box.fleet.printers if p.name == "Bar")
            printers = (await ops.call("printers:list", {}))["printers"]
            bar = next(p for p in printers if p["name"] == "Bar")

            await bar_sim.set_state("paper_out")
            await wait_until(pilot, lambda: "PAPER OUT" in column(app, "#printers", "status"))
            submitted = []
            for n in range(2):
                ack = await ops.call(
                    "job:submit",
                    {"printer_id": bar["id"], "document": receipt_doc(f"C{n}"), "branch_id": 1},
                )
                assert ack["ok"], ack
                submitted.append(ack["job"]["id"])

            async def bar_queue(count: int) -> bool:
                listed = (await ops.call("printers:list", {}))["printers"]
                return next(p for p in listed if p["id"] == bar["id"])["queue"] == count

            await eventually(lambda: bar_queue(2), timeout=15, what="Bar's queue is 2")
            await agree(pilot, app, ops, "paper out, 2 stuck")
            assert screen_numbers(app)["queue"]["Bar"] == 2

            await bar_sim.set_state("online")
            await bar_sim.wait_for_receipts(2)
            await eventually(lambda: bar_queue(0), timeout=15, what="Bar's queue is 0")
            await agree(pilot, app, ops, "paper back")
            await pilot.press("q")
    finally:
        await ops.close()
