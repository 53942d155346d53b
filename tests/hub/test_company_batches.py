"""What a company hub's batched operators (the dashboard) receive while many branches
sync: one ``printers:update`` per window with the changes of every branch, short
status entries for status changes of mirrored printers, and ``branches:update``
instead of one ``branch:update`` per branch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pm_core.protocol import HubEvent, Namespace, is_status_entry
from pm_hub.global_ids import global_id
from pm_hub.server import RunningHub
from tests.support.company_support import (
    RawBranchLink,
    branch_token,
    mirrored_printer,
    operator_token,
    start_company,
)
from tests.support.helpers import OpsClient, eventually


class BatchedCompanyOps(OpsClient):
    async def connect(self) -> BatchedCompanyOps:
        for event in (HubEvent.PRINTERS_UPDATE, HubEvent.BRANCHES_UPDATE):
            self.sio.on(event, self._recorder(event), namespace=Namespace.OPS)
        await self.sio.connect(
            self.url,
            namespaces=[Namespace.OPS],
            auth={"token": self.token, "coalesce": True},
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    def messages(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]


@pytest.fixture
async def company(tmp_path: Path) -> AsyncIterator[RunningHub]:
    hub = await start_company(tmp_path / "company")
    yield hub
    await hub.stop()


async def linked(company: RunningHub, *branches: int) -> list[RawBranchLink]:
    links = []
    for branch_id in branches:
        link = RawBranchLink(company.url, branch_token(company, branch_id), branch_id)
        await link.connect()
        assert (await link.snapshot("printer", [mirrored_printer(1)]))["ok"]
        links.append(link)
    return links


async def test_one_batch_per_window_carries_the_changes_of_every_branch(
    company: RunningHub,
) -> None:
    ops = await BatchedCompanyOps(company.url, operator_token(company)).connect()
    links = await linked(company, 3, 4)
    try:
        company.hub.broadcaster.coalescer.window = 0.6
        await asyncio.sleep(0.8)
        ops.events.clear()
        await links[0].change("printer", mirrored_printer(1, status="paper_low"))
        await eventually(lambda: ops.messages(HubEvent.PRINTERS_UPDATE), what="first batch")
        # Within the window that just started: one change in each branch.
        await asyncio.gather(
            links[0].change("printer", mirrored_printer(1, status="paper_out")),
            links[1].change("printer", mirrored_printer(1, status="offline")),
        )
        await eventually(
            lambda: len(ops.messages(HubEvent.PRINTERS_UPDATE)) >= 2, what="second batch"
        )
        await asyncio.sleep(0.8)
        batches = ops.messages(HubEvent.PRINTERS_UPDATE)
        assert len(batches) == 2, f"one batch per window for the whole company: {batches}"
        second = {p["id"]: p["status"] for p in batches[1]["printers"]}
        assert second == {global_id(3, 1): "paper_out", global_id(4, 1): "offline"}
    finally:
        for link in links:
            await link.close()
        await ops.close()


async def test_mirrored_status_changes_are_short_entries_and_other_changes_whole(
    company: RunningHub,
) -> None:
    ops = await BatchedCompanyOps(company.url, operator_token(company)).connect()
    (link,) = await linked(company, 3)
    try:
        await asyncio.sleep(0.3)
        ops.events.clear()
        await link.change("printer", mirrored_printer(1, status="paper_out"))
        entry = (await ops.wait_for(HubEvent.PRINTERS_UPDATE))["printers"][0]
        assert is_status_entry(entry) and entry["status"] == "paper_out"
        assert entry["id"] == global_id(3, 1) and "queue" in entry
        company.hub.broadcaster.coalescer.window = 0.6
        ops.events.clear()
        # A rename, then a status change in the same window: the entry must be whole.
        await link.change("printer", mirrored_printer(1, name="Grill", status="paper_out"))
        await link.change("printer", mirrored_printer(1, name="Grill", status="online"))
        await eventually(
            lambda: any(
                p.get("status") == "online"
                for b in ops.messages(HubEvent.PRINTERS_UPDATE)
                for p in b["printers"]
            ),
            what="the last state",
        )
        entries = [p for b in ops.messages(HubEvent.PRINTERS_UPDATE) for p in b["printers"]]
        assert any(p.get("name") == "Grill" for p in entries), entries
    finally:
        await link.close()
        await ops.close()


async def test_batched_operators_get_branch_rows_in_batches(company: RunningHub) -> None:
    plain = await OpsClient(company.url, operator_token(company)).connect()
    batched = await BatchedCompanyOps(company.url, operator_token(company)).connect()
    links = await linked(company, 3, 4)
    try:
        await eventually(
            lambda: (
                {r["id"] for b in batched.messages(HubEvent.BRANCHES_UPDATE) for r in b["branches"]}
                == {3, 4}
            ),
            what="both branches' rows in branches:update",
        )
        assert not any(name == HubEvent.BRANCH_UPDATE for name, _ in batched.events)
        await plain.wait_for(HubEvent.BRANCH_UPDATE, lambda row: row["id"] == 4)
    finally:
        for link in links:
            await link.close()
        await plain.close()
        await batched.close()
