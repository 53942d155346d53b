"""The hub on mDNS, on the loopback interface only: it announces itself with its
branch, port and version, and an agent started without --hub finds it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import urllib.request
import uuid
from asyncio.subprocess import DEVNULL
from pathlib import Path
from typing import Any

from pm.branch_box import run_agent
from pm_core import __version__
from pm_core.mdns import announce_plan, browse_hubs, find_hub
from pm_hub.config import HubSettings
from pm_hub.credential_admin import create_license_offline, issue_token
from pm_hub.server import start_hub
from pm_tui.config import discover_hub, resolve
from tests.conftest import hub_settings
from tests.support.helpers import eventually

LOOPBACK = ["127.0.0.1"]
PM = [sys.executable, "-m", "pm"]


def _unique_branch(word: str) -> str:
    """A branch name no other hub on this machine announces (a running demo, another
    test run): the tests look for their own hub by it."""
    return f"{word} {uuid.uuid4().hex[:8]}"


def test_a_hub_announces_only_where_it_listens() -> None:
    assert announce_plan("127.0.0.1") == (LOOPBACK, LOOPBACK)
    assert announce_plan("localhost") == (LOOPBACK, LOOPBACK)
    assert announce_plan("192.168.1.2") == (["192.168.1.2"], ["192.168.1.2"])
    interfaces, addresses = announce_plan("0.0.0.0")
    assert interfaces is None and addresses and "127.0.0.1" not in addresses[1:]


async def test_hub_is_announced_and_found_then_withdrawn(tmp_path: Path) -> None:
    branch = _unique_branch("Harbour St")
    running = await start_hub(hub_settings(tmp_path, mdns=True, branch_name=branch))
    try:
        assert running.advertiser is not None

        async def ours() -> list[Any]:
            # Other hubs may be announced on this machine's loopback at the same time.
            hubs = await browse_hubs(timeout=1.0, interfaces=LOOPBACK)
            return [h for h in hubs if h.url == running.url]

        hubs = await eventually(ours, timeout=8, what="our hub announced")
        assert [(h.url, h.branch, h.branch_id, h.version, h.company_mode) for h in hubs] == [
            (running.url, branch, running.hub.branch_id, __version__, False)
        ]
        assert await running.advertiser.announced()
    finally:
        await running.stop()
    gone = await browse_hubs(timeout=0.5, interfaces=LOOPBACK)
    assert [h for h in gone if h.url == running.url] == []


async def test_agent_without_hub_url_finds_the_hub_on_mdns(tmp_path: Path) -> None:
    branch = _unique_branch("Quay")
    running = await start_hub(hub_settings(tmp_path / "hub", mdns=True, branch_name=branch))
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
                hub_branch=branch,
            )
        )
        assert await find_hub(timeout=5.0, interfaces=LOOPBACK, branch=branch) == running.url
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
        hub_branch=_unique_branch("Nowhere"),  # a demo running beside the tests is not it
    )
    assert code == 2


# -- the commands, as a user runs them -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env_without_settings() -> dict[str, str]:
    """The environment a user has: no PM_* settings (the suite sets PM_MDNS=0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def _healthz(url: str, token: str | None = None) -> dict[str, Any] | None:
    """What ``/healthz`` says (its details with a token), None while nothing answers."""

    def get() -> dict[str, Any] | None:
        request = urllib.request.Request(f"{url}/healthz")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return dict(json.loads(response.read()))
        except OSError:
            return None

    return await asyncio.to_thread(get)


async def _start(args: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *PM, *args, stdout=out, stderr=out, stdin=DEVNULL, env=_env_without_settings()
        )


async def _end(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_pm_up_announces_itself_by_default_and_agent_and_tui_find_it(
    tmp_path: Path,
) -> None:
    """`pm up` with no mDNS option announces itself (on 127.0.0.1 only, where it
    listens); `pm agent` without --hub connects to it, and `pm tui` without --hub
    resolves its URL. The branch name is unique so no other hub on this machine is taken."""
    branch = _unique_branch("Dock")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "box"
    up = await _start(
        ["up", "--data-dir", str(data), "--port", str(port), "--branch-name", branch],
        tmp_path / "up.log",
    )
    agent: asyncio.subprocess.Process | None = None
    try:
        await eventually(lambda: _healthz(url), timeout=20, what="pm up answers")
        key = await asyncio.to_thread(create_license_offline, data)
        token = (
            await asyncio.to_thread(issue_token, HubSettings(data_dir=data), role="admin")
        ).token
        agent = await _start(
            ["agent", "--license", key, "--data-dir", str(tmp_path / "agent"),
             "--mdns-interface", "127.0.0.1", "--hub-branch", branch],
            tmp_path / "agent.log",
        )  # fmt: skip

        async def two_agents() -> bool:
            health = await _healthz(url, token)
            assert agent is not None and agent.returncode is None, (
                tmp_path / "agent.log"
            ).read_text()
            return bool(health and health["agents_connected"] == 2)  # pm up's own + ours

        await eventually(two_agents, timeout=20, what="pm agent found pm up on mDNS")
        assert "found the hub at " + url in (tmp_path / "agent.log").read_text()

        settings = await asyncio.to_thread(
            resolve,
            token="t",
            config_file=None,
            env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
            discover=lambda: discover_hub(timeout=5.0, interfaces=LOOPBACK, branch=branch),
        )
        assert (settings.hub_url, settings.hub_from) == (url, "mDNS")
    finally:
        if agent is not None:
            await _end(agent)
        await _end(up)


async def test_hub_started_with_no_mdns_is_not_announced(tmp_path: Path) -> None:
    branch = _unique_branch("Quiet")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    hub = await _start(
        ["hub", "--data-dir", str(tmp_path), "--port", str(port), "--branch-name", branch,
         "--no-mdns"],
        tmp_path / "hub.log",
    )  # fmt: skip
    try:
        await eventually(lambda: _healthz(url), timeout=20, what="pm hub answers")
        assert await find_hub(timeout=2.0, interfaces=LOOPBACK, branch=branch) is None
    finally:
        await _end(hub)
