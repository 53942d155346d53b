"""A company hub and branch hubs syncing to it: real hubs, agents and simulated
printers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pm_hub.company.ids import ID_SPAN
from pm_hub.server import RunningHub
from tests.company_support import (
    BranchBox,
    branch_token,
    operator_token,
    start_branch_box,
    start_company,
    wait_branch,
)
from tests.helpers import OpsClient, eventually


@pytest.fixture
async def company(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_company(tmp_path / "company")
    yield running
    await running.stop()


@pytest.fixture
async def company_ops(company: RunningHub) -> AsyncIterator[OpsClient]:
    client = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
    yield client
    await client.close()


@pytest.fixture
async def branches(tmp_path: Path, company: RunningHub) -> AsyncIterator[list[BranchBox]]:
    boxes = [
        await start_branch_box(
            tmp_path, "Harbour", company=company, token=branch_token(company, 1)
        ),
        await start_branch_box(
            tmp_path, "Station", company=company, token=branch_token(company, 2)
        ),
    ]
    yield boxes
    for box in boxes:
        await box.close()


async def company_printers(ops: OpsClient) -> list[dict[str, Any]]:
    ack = await ops.call("printers:list", {})
    assert ack["ok"], ack
    printers: list[dict[str, Any]] = ack["printers"]
    return printers


async def wait_company_printers(ops: OpsClient, count: int) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]] | None:
        printers = await company_printers(ops)
        online = [p for p in printers if p["status"] == "online" and p["agent_connected"]]
        return printers if len(online) >= count else None

    result: list[dict[str, Any]] = await eventually(ready, timeout=15, what=f"{count} printers")
    return result


async def test_paper_out_at_a_branch_reaches_the_company_operator(
    company_ops: OpsClient, branches: list[BranchBox]
) -> None:
    """Both branches' printers show on the company hub under their branch, with ids
    that do not collide; a paper-out at one branch arrives as printer:update and
    counts as a problem of that branch in branches:list."""
    printers = await wait_company_printers(company_ops, 4)
    assert sorted((p["branch_id"], p["name"]) for p in printers) == [
        (1, "Bar"),
        (1, "Kitchen-1"),
        (2, "Bar"),
        (2, "Kitchen-1"),
    ]
    assert len({p["id"] for p in printers}) == 4
    assert all(p["id"] // ID_SPAN == p["branch_id"] for p in printers)

    who = await company_ops.call("whoami", {})
    assert who["hub"]["company_mode"] is True
    assert [b["name"] for b in who["branches"]] == ["Harbour", "Station"]

    station_kitchen = next(p for p in printers if p["branch_id"] == 2 and p["name"] == "Kitchen-1")
    await branches[1].fleet.printers[0].set_state("paper_out")
    update = await company_ops.wait_for(
        "printer:update",
        lambda p: p["id"] == station_kitchen["id"] and p["status"] == "paper_out",
        timeout=10,
    )
    assert update["branch_id"] == 2
    alert = await company_ops.wait_for(
        "desktop:health:alert", lambda a: a["kind"] == "paper_out", timeout=10
    )
    assert alert["branch_id"] == 2 and alert["subject"] == f"printer:{station_kitchen['id']}"

    row = await wait_branch(company_ops, 2, lambda r: r["problems"] == 1)
    assert row["name"] == "Station"
    assert row["printers"] == 2
    assert row["alerts"]["critical"] == 1
    assert row["link"]["state"] == "connected"
    assert row["link"]["last_sync_at"] is not None
    other = await wait_branch(company_ops, 1)
    assert other["problems"] == 0 and other["alerts"]["critical"] == 0
