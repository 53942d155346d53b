"""TLS on every link (issue 12, finding 8): the hub serves https:// and wss:// with
--tls-cert/--tls-key; operators, agents, dashboards and branch links connect with a
private CA (--ca-file); nobody gets in over plain http or with an untrusted
certificate; ``pm up``'s own agent reaches its hub over TLS too."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import OpsEvent
from pm_core.tls import client_context
from pm_hub.server import RunningHub, start_hub
from pm_tui.config import TuiConfigError, preflight
from pm_tui.hub_link import HubLink
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually, free_port, receipt_doc
from tests.support.tls import Certificates

PM = [sys.executable, "-m", "pm"]


@pytest.fixture
async def tls_hub(tmp_path: Path, certs: Certificates) -> AsyncIterator[RunningHub]:
    running = await start_hub(hub_settings(tmp_path, tls_cert=certs.cert, tls_key=certs.key))
    try:
        yield running
    finally:
        await running.stop()


def admin(hub: RunningHub) -> str:
    assert hub.hub.tokens is not None
    return hub.hub.tokens.create(role="admin")


async def test_the_hub_serves_https_and_refuses_plain_http(
    tls_hub: RunningHub, certs: Certificates
) -> None:
    assert tls_hub.url.startswith("https://127.0.0.1:")
    connector = aiohttp.TCPConnector(ssl=client_context(certs.ca))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{tls_hub.url}/healthz") as resp,
    ):
        assert resp.status == 200 and (await resp.json())["ok"] is True
    plain = tls_hub.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"{plain}/healthz") as resp:
                await resp.read()


async def test_operators_and_agents_connect_over_wss_and_a_ticket_prints(
    tls_hub: RunningHub, certs: Certificates, tmp_path: Path
) -> None:
    trust = client_context(certs.ca)
    ops = await OpsClient(tls_hub.url, admin(tls_hub), tls=trust).connect()
    async with SimulatorFleet.start(count=1, names=["Pass"], control_port=None) as fleet:
        printer = fleet.printers[0]
        agent = Agent(
            hub_url=tls_hub.url,
            license_key=await tls_hub.hub.create_license(),
            data_dir=tmp_path / "agent",
            printers=[parse_printer_spec(f"Pass=tcp://127.0.0.1:{printer.port}")],
            poll_interval=0.2,
            spool_synchronous="NORMAL",
            tls=trust,
        )
        await agent.start()
        try:
            await eventually(lambda: tls_hub.hub.printers, what="printer registered over wss")
            printer_id = next(iter(tls_hub.hub.printers))
            ack = await ops.call(
                OpsEvent.JOB_SUBMIT, {"printer_id": printer_id, "document": receipt_doc("TLS-1")}
            )
            assert ack["ok"], ack
            await eventually(
                lambda: any("TLS-1" in r.text for r in printer.receipts), what="printed"
            )
        finally:
            await agent.stop()
            await ops.close()


async def test_the_dashboard_connects_over_wss(tls_hub: RunningHub, certs: Certificates) -> None:
    trust = client_context(certs.ca)
    health = await asyncio.to_thread(preflight, tls_hub.url, tls=trust)  # it blocks
    assert health["ok"] is True
    link = HubLink(tls_hub.url, admin(tls_hub), tls=trust)
    runner = asyncio.create_task(link.run())
    try:
        await eventually(lambda: link.connected, what="dashboard over wss")
        assert (await link.call(OpsEvent.PRINTERS_LIST))["ok"]
    finally:
        runner.cancel()
        await link.close()
        await asyncio.gather(runner, return_exceptions=True)


async def test_an_untrusted_certificate_is_refused_with_a_clear_word(
    tls_hub: RunningHub, tmp_path: Path
) -> None:
    with pytest.raises(TuiConfigError, match=r"certificate is not trusted.*--ca-file"):
        await asyncio.to_thread(preflight, tls_hub.url)  # the system's CAs do not know ours
    agent = Agent(
        hub_url=tls_hub.url,
        license_key=await tls_hub.hub.create_license(),
        data_dir=tmp_path / "agent",
        printers=[],
    )
    starting = asyncio.create_task(agent.start())
    try:
        await asyncio.sleep(1.5)
        assert not agent.connected and tls_hub.hub.agents == {}
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await agent.stop()


async def test_a_branch_syncs_to_its_company_hub_over_tls(
    tmp_path: Path, certs: Certificates
) -> None:
    company = await start_hub(
        hub_settings(
            tmp_path / "company", company_mode=True, tls_cert=certs.cert, tls_key=certs.key
        )
    )
    assert company.hub.tokens is not None
    token = company.hub.tokens.create(role="branch", branch_ids=[7], sub="branch-7")
    branch = await start_hub(
        hub_settings(
            tmp_path / "branch",
            branch_name="Harbour",
            upstream_url=company.url,
            upstream_token=token,
            upstream_ca_file=certs.ca,
        )
    )
    ops = await OpsClient(company.url, admin(company), tls=client_context(certs.ca)).connect()
    try:

        async def linked() -> bool:
            rows = (await ops.call(OpsEvent.BRANCHES_LIST))["branches"]
            return any(r["id"] == 7 and r["link"]["connected"] for r in rows)

        await eventually(linked, timeout=15, what="branch linked over TLS")
    finally:
        await ops.close()
        await branch.stop()
        await company.stop()


def test_pm_up_serves_tls_and_its_own_agent_connects(tmp_path: Path, certs: Certificates) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    proc = subprocess.Popen(
        [*PM, "up", "--data-dir", str(tmp_path), "--port", str(port), "--no-mdns",
         "--tls-cert", str(certs.cert), "--tls-key", str(certs.key), "--sim", "1",
         "--sim-port", str(free_port()), "--sim-control-port", str(free_port())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        context = client_context(certs.ca)
        token = subprocess.run(
            [*PM, "token", "create", "--role", "admin", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()  # fmt: skip
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/api/v1/agents",
            headers={"Authorization": f"Bearer {token}"},
        )
        deadline = time.monotonic() + 30
        agents: list[dict[str, object]] = []
        while time.monotonic() < deadline and not agents:
            try:
                with urllib.request.urlopen(request, context=context, timeout=2) as resp:
                    found = json.loads(resp.read())["agents"]
                agents = [a for a in found if a["connected"]]
            except (OSError, ssl.SSLError):
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read() if proc.stderr else "pm up exited")
            if not agents:
                time.sleep(0.3)
        assert agents and agents[0]["name"] == "local agent"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
