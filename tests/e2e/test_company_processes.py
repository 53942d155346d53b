"""A company hub in two processes on PostgreSQL and Redis, with real branch hubs,
agents and simulated printers: what an operator on one process sees and does on a
branch linked to the other, a process killed with SIGKILL in the middle of a sync,
and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import socketio

from pm_core.protocol import Namespace
from tests.e2e.test_company_sync import (
    assert_once_and_in_order,
    job_events,
    listing,
    submit,
    wait_company_printers,
    wait_mirror,
)
from tests.support.company_cluster import Balancer, CompanyCluster, CompanyProcess
from tests.support.company_support import BranchBox, operator_token, start_branch_box, wait_branch
from tests.support.fault_harness import LinkProxy, Proc
from tests.support.helpers import OpsClient, eventually, free_port
from tests.support.services import need_redis, unique_channel

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[CompanyCluster]:
    company = CompanyCluster(tmp_path, postgres_url, need_redis(), unique_channel())
    company.issuer()  # the shared secret exists before any process starts
    yield company
    company.stop()


async def close_all(*things: Any) -> None:
    for thing in things:
        try:
            await thing.close()
        except Exception:
            pass


def run_pm(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PM_MDNS": "0", **(env or {})},
    )


async def test_a_second_hub_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Before: a second ``pm hub --company-mode`` on the same data dir started without
    complaint and then answered not_found for what the first one drives. Now it stops
    at once, saying why and what to do, without a traceback."""
    data = tmp_path / "company"
    first = CompanyProcess(
        "first",
        free_port(),
        Proc(
            "first",
            ["hub", "--company-mode", "--no-mdns", "--data-dir", str(data)],
            tmp_path / "first.log",
        ),
    )
    first.proc.args += ["--port", str(first.port)]
    await first.start()
    try:
        second = await asyncio.to_thread(
            run_pm, ["hub", "--company-mode", "--data-dir", str(data), "--port", "0"]
        )
        assert second.returncode == 2, second.stderr
        assert "another hub (pid" in second.stderr and str(data) in second.stderr
        assert "Traceback" not in second.stderr
        assert (await asyncio.to_thread(_get, f"{first.url}/healthz"))["ok"] is True
    finally:
        first.stop()


async def test_processes_on_one_database_share_through_redis_or_not_at_all(
    cluster: CompanyCluster,
) -> None:
    """A second process on the same PostgreSQL database is refused unless both share
    through Redis; a process without Redis beside ones with it is refused too."""
    alone = await cluster.start_process("alone", redis=False)
    second = cluster.process("second", redis=False)
    refused = await asyncio.to_thread(run_pm, second.proc.args, second.proc.env)
    assert refused.returncode == 2 and "need --redis-url" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    alone.stop()
    await cluster.start_process("shared-1")
    await cluster.start_process("shared-2")
    third = cluster.process("third", redis=False)
    refused = await asyncio.to_thread(run_pm, third.proc.args, third.proc.env)
    assert refused.returncode == 2 and "without --redis-url" not in refused.stderr
    assert "another company hub" in refused.stderr, refused.stderr


async def test_an_operator_on_one_process_sees_and_acts_on_a_branch_linked_to_the_other(
    tmp_path: Path, cluster: CompanyCluster
) -> None:
    """Harbour syncs to process B, Station to process A. An operator on A sees every
    branch and printer; a paper-out at Harbour reaches the operator on A within a
    second of Harbour's own operators; a test print and a job from A are done at
    Harbour (through B) and answered with A's correlation id; with Harbour stopped,
    both processes answer offline."""
    a = await cluster.start_process("company-a")
    b = await cluster.start_process("company-b")
    harbour = await start_branch_box(
        tmp_path, "Harbour", company=None, token=cluster.branch_token(1), upstream_url=b.url
    )
    station = await start_branch_box(
        tmp_path, "Station", company=None, token=cluster.branch_token(2), upstream_url=a.url
    )
    on_a = await OpsClient(a.url, cluster.token()).connect()
    on_b = await OpsClient(b.url, cluster.token()).connect()
    at_harbour = await OpsClient(harbour.running.url, operator_token(harbour.running)).connect()
    try:
        for ops in (on_a, on_b):
            for branch_id in (1, 2):
                await wait_branch(ops, branch_id, lambda r: r["link"]["state"] == "connected")
        printers = await wait_company_printers(on_a, 4)
        assert len(await wait_company_printers(on_b, 4)) == 4
        kitchen = next(p for p in printers if p["branch_id"] == 1 and p["name"] == "Kitchen-1")
        sim = harbour.fleet.printers[0]

        await sim.set_state("paper_out")
        at_branch = await at_harbour.wait_for(
            "printer:update", lambda p: p["status"] == "paper_out"
        )
        seen_at_branch = time.monotonic()
        assert at_branch["name"] == "Kitchen-1"
        await on_a.wait_for(
            "printer:update", lambda p: p["id"] == kitchen["id"] and p["status"] == "paper_out"
        )
        late = time.monotonic() - seen_at_branch
        assert late < 1.0, f"the operator on A saw it {late:.2f}s after Harbour's operators"
        await sim.set_state("online")

        ack = await on_a.call("printer:test", {"printer_id": kitchen["id"]})
        assert ack["ok"], ack
        done = await on_a.wait_for(
            "printer:test:completed", lambda d: d["correlation_id"] == ack["correlation_id"]
        )
        assert done["ok"] is True, done
        assert "PRINTERMASTER TEST PAGE" in (await sim.wait_for_receipts(1))[0].text

        job = await submit(on_a, kitchen["id"], "HQ-A-1")
        await on_a.wait_for(
            "job:update", lambda j: j["id"] == job["id"] and j["status"] == "completed"
        )
        assert "ticket HQ-A-1" in (await sim.wait_for_receipts(2))[1].text

        await harbour.stop()
        for ops in (on_a, on_b):
            await wait_branch(ops, 1, lambda r: r["link"]["state"] == "offline")
        offline = await on_a.call("printer:test", {"printer_id": kitchen["id"]})
        assert offline["ok"] is False and offline["error"]["code"] == "offline"
    finally:
        await close_all(on_a, on_b, at_harbour, harbour, station)


async def test_a_process_killed_mid_sync_loses_and_repeats_nothing(
    tmp_path: Path, cluster: CompanyCluster
) -> None:
    """Harbour and a dashboard reach the company through a balancer that sends them to
    B. Tickets print at Harbour while B is killed with SIGKILL: within 10 s Harbour's
    link and the dashboard are back (on A), and once the tickets are done the company's
    mirror equals Harbour: every job, in its final state, none shown going back."""
    b = await cluster.start_process("company-b")
    a = await cluster.start_process("company-a")
    front = await Balancer([b.port, a.port]).start()
    harbour = await start_branch_box(
        tmp_path, "Harbour", company=None, token=cluster.branch_token(1), upstream_url=front.url
    )
    on_a = await OpsClient(a.url, cluster.token()).connect()
    at_harbour = await OpsClient(harbour.running.url, operator_token(harbour.running)).connect()
    dashboard = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2)
    dashboard_ups: list[float] = []
    dashboard.on("connect", lambda: dashboard_ups.append(time.monotonic()), namespace=Namespace.OPS)
    try:
        await dashboard.connect(
            front.url,
            namespaces=[Namespace.OPS],
            auth={"token": cluster.token(sub="dashboard")},
            transports=["websocket"],
        )
        await wait_branch(on_a, 1, lambda r: r["link"]["state"] == "connected")
        printers = await listing(at_harbour, "printers:list", "printers")
        kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
        jobs = [await submit(at_harbour, kitchen["id"], f"T-{n}") for n in range(10)]
        b.kill9()
        killed = time.monotonic()
        jobs += [await submit(at_harbour, kitchen["id"], f"T-{n}") for n in range(10, 25)]
        await wait_branch(on_a, 1, lambda r: r["link"]["state"] == "connected", timeout=10)
        await eventually(lambda: len(dashboard_ups) >= 2, timeout=10, what="dashboard back")
        assert dashboard_ups[-1] - killed < 10
        ack = await dashboard.call("printers:list", {}, namespace=Namespace.OPS, timeout=5)
        assert ack["ok"] and len(ack["printers"]) == 2
        await eventually(
            lambda: len(harbour.fleet.printers[0].receipts) >= 25, timeout=60, what="all printed"
        )
        await wait_mirror(on_a, at_harbour, 1)
        assert_once_and_in_order(job_events(on_a))
        mirrored = {
            j["id"] % 1_000_000_000: j["status"]
            for j in await listing(on_a, "jobs:list", "jobs", limit=1000)
        }
        assert mirrored == {j["id"]: "completed" for j in jobs}
    finally:
        await close_all(on_a, at_harbour, harbour)
        await dashboard.disconnect()
        await front.close()


async def test_redis_away_and_back(tmp_path: Path, cluster: CompanyCluster) -> None:
    """Both processes reach Redis through a proxy that is cut for a few seconds: they
    keep serving (each its own branches); when Redis is back they catch up by
    themselves (what changed meanwhile shows on the other process) and changes flow
    between them again within a second."""
    parsed = urlsplit(cluster.redis_url)
    proxy = LinkProxy(parsed.port or 6379)
    await proxy.start()
    via_proxy = parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    a = await cluster.start_process("company-a", redis_url=via_proxy)
    b = await cluster.start_process("company-b", redis_url=via_proxy)
    harbour: BranchBox = await start_branch_box(
        tmp_path, "Harbour", company=None, token=cluster.branch_token(1), upstream_url=b.url
    )
    on_a = await OpsClient(a.url, cluster.token()).connect()
    try:
        kitchen = next(p for p in await wait_company_printers(on_a, 2) if p["name"] == "Kitchen-1")
        sim = harbour.fleet.printers[0]
        await proxy.cut()
        await sim.set_state("paper_out")
        await asyncio.sleep(3)
        health = await asyncio.to_thread(_get, f"{b.url}/healthz")
        assert health["ok"] is True, health
        await proxy.restore()

        async def shows_paper_out() -> bool:
            printers = await listing(on_a, "printers:list", "printers")
            return any(p["id"] == kitchen["id"] and p["status"] == "paper_out" for p in printers)

        await eventually(shows_paper_out, timeout=15, what="A caught up after Redis came back")
        on_a.events.clear()
        await asyncio.sleep(1.5)  # both listen again
        await sim.set_state("online")
        await on_a.wait_for(
            "printer:update", lambda p: p["id"] == kitchen["id"] and p["status"] == "online",
            timeout=5,
        )  # fmt: skip
    finally:
        await close_all(on_a, harbour)
        await proxy.cut()


def _get(url: str) -> dict[str, Any]:
    import json
    import urllib.request

    return dict(json.loads(urllib.request.urlopen(url, timeout=5).read()))
