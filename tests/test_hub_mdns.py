"""The hub on mDNS, on the loopback interface only: it announces itself with its
branch, port and version, and an agent started without --hub finds it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pm_hub import __version__
from pm_hub.branch_box import run_agent
from pm_hub.mdns import announce_plan, browse_hubs, find_hub
from pm_hub.server import start_hub
from tests.conftest import hub_settings
from tests.helpers import eventually

LOOPBACK = ["127.0.0.1"]


def test_a_hub_announces_only_where_it_listens() -> None:
    assert announce_plan("127.0.0.1") == (LOOPBACK, LOOPBACK)
    assert announce_plan("localhost") == (LOOPBACK, LOOPBACK)
    assert announce_plan("192.168.1.2") == (["192.168.1.2"], ["192.168.1.2"])
    interfaces, addresses = announce_plan("0.0.0.0")
    assert interfaces is None and addresses and "127.0.0.1" not in addresses[1:]


async def test_hub_is_announced_and_found_then_withdrawn(tmp_path: Path) -> None:
    running = await start_hub(hub_settings(tmp_path, mdns=True, branch_name="Harbour St"))
    try:
        assert running.advertiser is not None
        hubs = await browse_hubs(timeout=5.0, interfaces=LOOPBACK, first=True)
        assert [(h.url, h.branch, h.branch_id, h.version, h.company_mode) for h in hubs] == [
            (running.url, "Harbour St", running.hub.branch_id, __version__, False)
        ]
        assert await running.advertiser.announced()
    finally:
        await running.stop()
    assert await browse_hubs(timeout=0.5, interfaces=LOOPBACK) == []


async def test_agent_without_hub_url_finds_the_hub_on_mdns(tmp_path: Path) -> None:
    running = await start_hub(hub_settings(tmp_path / "hub", mdns=True))
    agent_task: asyncio.Task[int] | None = None
    try:
        key = await running.hub.create_license()
        agent_task = asyncio.create_task(
            run_agent(
                hub_url=None,
                license_key=key,
                data_dir=tmp_path / "agent",
                printers=[],
                mdns_interfaces=LOOPBACK,
            )
        )
        assert await find_hub(timeout=5.0, interfaces=LOOPBACK) == running.url
        await eventually(lambda: len(running.hub.agents) == 1, what="agent found the hub")
    finally:
        if agent_task is not None:
            agent_task.cancel()
            await asyncio.gather(agent_task, return_exceptions=True)
        await running.stop()


async def test_agent_says_what_to_do_when_no_hub_is_announced(tmp_path: Path) -> None:
    code = await run_agent(
        hub_url=None,
        license_key="pmk_x",
        data_dir=tmp_path,
        printers=[],
        mdns_interfaces=LOOPBACK,
        mdns_timeout=0.3,
    )
    assert code == 2
