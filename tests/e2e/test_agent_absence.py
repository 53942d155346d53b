"""Agents that go away: killed outright, or gone while the hub restarted. Real hubs,
real agents (one a ``pm agent`` process), simulated printers, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub import auth
from pm_hub.credential_admin import create_license_offline
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.fault_harness import Proc, free_port, wait_healthy
from tests.support.helpers import OpsClient, eventually

THRESHOLD = 1.5


async def admin(running: RunningHub) -> OpsClient:
    assert running.hub.tokens is not None
    return await OpsClient(running.url, running.hub.tokens.create(role="admin")).connect()


async def open_kinds(ops: OpsClient) -> set[tuple[str, str]]:
    listed = await ops.call("alerts:list", {"state": ["open", "acknowledged"]})
    return {(a["kind"], a["subject"]) for a in listed["alerts"]}


async def test_killed_agent_process_raises_the_disconnect_alert_after_the_threshold(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """``pm agent`` killed with SIGKILL: its printer is offline at once, the
    ``agent_disconnected`` alert follows once the threshold has passed, not before.
    The agent's ping and report intervals come from its env and its config file."""
    running = await start_hub(hub_settings(tmp_path / "hub", agent_disconnect_alert_s=THRESHOLD))
    config = tmp_path / "agent.toml"
    config.write_text("[hub]\nagent_report_interval_s = 0.5\n")
    printer = fleet.printers[0]
    proc = Proc(
        "agent",
        [
            "agent",
            "--hub",
            running.url,
            "--license",
            await running.hub.create_license(),
            "--data-dir",
            str(tmp_path / "agent"),
            "--config",
            str(config),
            "--printer",
            f"{printer.name}=tcp://127.0.0.1:{printer.port}",
            "--poll-interval",
            "0.3",
        ],
        tmp_path / "agent.log",
        env={"PM_AGENT_PING_INTERVAL_S": "0.2"},
    )
    ops = await admin(running)
    proc.start()
    try:
        await eventually(
            lambda: any(p["status"] == "online" for p in running.hub.printers.values()),
            timeout=30,
            what=f"agent process up\n{proc.tail()}",
        )
        agent_id = next(iter(running.hub.agents))
        health = running.hub.health.agents[agent_id]
        # Every 0.2 s and 0.5 s instead of 15 s and 5 min (first one after 5 s).
        await eventually(lambda: len(health.latencies) >= 3, timeout=4, what="fast pings")
        await eventually(lambda: health.report is not None, timeout=3, what="early report")

        proc.kill9()
        killed_at = time.time()
        await ops.wait_for(
            "desktop:health:alert", lambda a: a["kind"] == "printer_offline", timeout=5
        )
        await asyncio.sleep(THRESHOLD * 0.6)
        assert ("agent_disconnected", f"agent:{agent_id}") not in await open_kinds(ops)
        alert = await ops.wait_for(
            "desktop:health:alert", lambda a: a["kind"] == "agent_disconnected", timeout=10
        )
        assert alert["subject"] == f"agent:{agent_id}"
        assert THRESHOLD - 0.05 <= alert["opened_at"] - killed_at <= THRESHOLD + 5
    finally:
        proc.stop()
        await ops.close()
        await running.stop()


async def test_agent_gone_across_a_hub_restart_still_raises_its_alerts(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """The hub process is killed; one agent dies while it is down, the other waits.
    After the restart the one that came back raises nothing; the one that did not
    gets ``agent_disconnected`` and ``printer_offline`` for its printer, once the
    threshold has passed since the hub started."""
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Long enough that a loaded machine restarts the hub, reconnects the other agent
    # and looks at the alerts well before it has passed.
    threshold = 6.0
    hub = Proc(
        "hub",
        ["hub", "--data-dir", str(hub_dir), "--port", str(port)],
        tmp_path / "hub.log",
        env={"PM_AGENT_DISCONNECT_ALERT_S": str(threshold)},
    )
    token = auth.TokenIssuer(auth.load_or_create_secret(hub_dir)).create(role="admin")
    kitchen, bar = fleet.printers

    async def agent(name: str, printer: str, printer_port: int) -> Agent:
        return Agent(
            hub_url=url,
            license_key=await asyncio.to_thread(create_license_offline, hub_dir),
            data_dir=tmp_path / name,
            printers=[parse_printer_spec(f"{printer}=tcp://127.0.0.1:{printer_port}")],
            name=name,
            poll_interval=0.2,
            spool_synchronous="NORMAL",
        )

    gone = await agent("gone", kitchen.name, kitchen.port)
    back = await agent("back", bar.name, bar.port)
    hub.start()
    ops: OpsClient | None = None
    try:
        await wait_healthy(url)
        await gone.start()
        await back.start()
        ops = await OpsClient(url, token).connect()

        async def both_online() -> dict[str, dict[str, Any]] | None:
            assert ops is not None
            listed = (await ops.call("printers:list", {}))["printers"]
            online = {p["name"]: p for p in listed if p["status"] == "online"}
            return online if len(online) == 2 else None

        printers = await eventually(both_online, what="both printers online")
        await ops.close()

        hub.kill9()  # no goodbye: the agents and their printers were connected
        await gone.stop()
        restarted_at = time.time()
        hub.start()
        await wait_healthy(url)
        ops = await OpsClient(url, token).connect()
        await eventually(
            lambda: back.connected and bool(back.by_printer_id), what="the other agent back"
        )
        await asyncio.sleep(max(0.0, restarted_at + threshold * 0.5 - time.time()))
        assert time.time() < restarted_at + threshold, "the machine was too slow to look in time"
        assert not {k for k in await open_kinds(ops) if k[0] == "agent_disconnected"}

        alert = await ops.wait_for(
            "desktop:health:alert", lambda a: a["kind"] == "agent_disconnected", timeout=15
        )
        assert alert["subject"] == f"agent:{printers[kitchen.name]['agent_id']}"
        assert alert["opened_at"] - restarted_at >= threshold
        offline = await ops.wait_for(
            "desktop:health:alert", lambda a: a["kind"] == "printer_offline", timeout=5
        )
        assert offline["subject"] == f"printer:{printers[kitchen.name]['id']}"
        assert "its agent is not connected" in offline["message"]
        kinds = await open_kinds(ops)
        assert ("agent_disconnected", f"agent:{printers[bar.name]['agent_id']}") not in kinds
        assert ("printer_offline", f"printer:{printers[bar.name]['id']}") not in kinds
    finally:
        if ops is not None:
            await ops.close()
        await back.stop()
        await gone.stop()
        hub.stop()
