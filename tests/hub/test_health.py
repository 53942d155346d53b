"""Health monitoring, alerts, webhooks, metrics and log context, with real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.logs import setup_logging
from pm_hub.server import RunningHub, start_hub
from pm_hub.store import health as health_store
from pm_hub.store import prepare_hub_db
from pm_hub.webhooks import sign
from tests.conftest import AgentFactory, hub_settings
from tests.support.fault_harness import LinkProxy
from tests.support.helpers import OpsClient, eventually
from tests.support.services import open_session


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST (and can fail the first ones)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        #: (timestamp header, signature header, the exact bytes) of each delivery.
        self.signed: list[tuple[str, str, bytes]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                return web.Response(status=503)
            raw = await request.read()
            self.signed.append(
                (
                    request.headers.get("X-PrinterMaster-Timestamp", ""),
                    request.headers.get("X-PrinterMaster-Signature", ""),
                    raw,
                )
            )
            self.bodies.append(json.loads(raw))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver(fail_first=1)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def watched_hub(tmp_path: Path, receiver: WebhookReceiver) -> AsyncIterator[RunningHub]:
    running = await start_hub(
        hub_settings(
            tmp_path / "hub",
            webhook_urls=receiver.url,
            agent_disconnect_alert_s=0.5,
            latency_alert_ms=80,
            packet_loss_alert=0.05,
        )
    )
    yield running
    await running.stop()


async def admin(running: RunningHub) -> OpsClient:
    assert running.hub.tokens is not None
    return await OpsClient(running.url, running.hub.tokens.create(role="admin")).connect()


async def test_latency_and_loss_come_from_real_pings(
    watched_hub: RunningHub, tmp_path: Path
) -> None:
    """An agent behind a slow link: latency is measured; when acks come too late they
    count as lost, and both limits raise alerts that clear when the link is good."""
    proxy = LinkProxy(watched_hub.port, delay=0.05)
    await proxy.start()
    agent = Agent(
        hub_url=f"http://127.0.0.1:{proxy.port}",
        license_key=await watched_hub.hub.create_license(),
        data_dir=tmp_path / "agent",
        printers=[],
        ping_interval=0.1,
        ping_timeout=0.4,
        spool_synchronous="NORMAL",
    )
    ops = await admin(watched_hub)
    await agent.start()
    try:
        await eventually(lambda: len(agent.health.latencies) >= 5, what="pings answered")
        # Two proxy hops of 50 ms each way: about 100 ms, never less.
        assert all(latency >= 95 for latency in agent.health.latencies)
        summary = await ops.call("health:summary", {})
        row = summary["agents"][0]
        await eventually(
            lambda: (watched_hub.hub.health.agents[row["agent_id"]].latency_avg or 0) >= 95,
            what="hub sees the latency",
        )
        alert = await ops.wait_for("desktop:health:alert", lambda a: a["kind"] == "latency_high")
        assert alert["subject"] == f"agent:{row['agent_id']}"

        proxy.delay = 0.3  # round trip 600 ms > 400 ms timeout: acks arrive late
        await eventually(lambda: agent.health.packet_loss > 0.05, timeout=15, what="loss")
        loss_alert = await ops.wait_for(
            "desktop:health:alert", lambda a: a["kind"] == "packet_loss_high", timeout=15
        )
        assert "pings lost or late" in loss_alert["message"]

        proxy.delay = 0.0
        await ops.wait_for(
            "alert:update",
            lambda a: a["kind"] == "latency_high" and a["state"] == "cleared",
            timeout=15,
        )
        summary = await ops.call("health:summary", {})
        assert summary["agents"][0]["series"], "no latency series"
        assert summary["agents"][0]["series"][-1]["latency_ms"] > 0
    finally:
        await ops.close()
        await agent.stop()
        await proxy.cut()


async def test_a_lost_ping_is_stored_as_lost_not_as_an_old_latency(
    watched_hub: RunningHub, tmp_path: Path
) -> None:
    """Each ping reports the one before it: after a lost ping the hub stores a sample
    without latency, never the last good latency again."""
    proxy = LinkProxy(watched_hub.port)
    await proxy.start()
    agent = Agent(
        hub_url=f"http://127.0.0.1:{proxy.port}",
        license_key=await watched_hub.hub.create_license(),
        data_dir=tmp_path / "agent",
        printers=[],
        ping_interval=0.1,
        ping_timeout=0.4,
        spool_synchronous="NORMAL",
    )
    await agent.start()
    try:
        await eventually(lambda: len(agent.health.latencies) >= 3, what="pings answered")
        proxy.delay = 0.3  # round trip 600 ms > 400 ms timeout: acks arrive late
        await eventually(lambda: agent.health.pings_lost >= 3, timeout=15, what="lost pings")
        proxy.delay = 0.0
        answered = len(agent.health.latencies)
        await eventually(
            lambda: (
                agent.health.pings_sent - agent.health.pings_lost >= answered + 3
                and agent.health.outcomes[-1]
            ),
            timeout=15,
            what="link back",
        )
        lost = agent.health.pings_lost
        await watched_hub.hub.health.flush()
        agent_id = next(iter(watched_hub.hub.agents))
        rows = await watched_hub.hub.db.read(
            lambda d: d.execute(
                "SELECT latency_ms FROM health_samples WHERE agent_id = ? ORDER BY at",
                (agent_id,),
            ).fetchall()
        )
    finally:
        await agent.stop()
        await proxy.cut()
    latencies = [r[0] for r in rows]
    measured = [v for v in latencies if v is not None]
    # One sample without latency per lost ping (all of them reported by now) ...
    assert latencies.count(None) == lost, latencies
    # ... and every latency stored once: no lost ping stands in as an old figure.
    assert len(set(measured)) == len(measured), measured


async def test_paper_out_raises_one_alert_that_ack_and_recovery_close(
    watched_hub: RunningHub, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    async with SimulatorFleet.start(count=1, names=["Kitchen-1"], control_port=None) as fleet:
        agent = Agent(
            hub_url=watched_hub.url,
            license_key=await watched_hub.hub.create_license(),
            data_dir=tmp_path / "agent",
            printers=[parse_printer_spec(f"Kitchen-1=tcp://127.0.0.1:{fleet.printers[0].port}")],
            poll_interval=0.1,
            spool_synchronous="NORMAL",
        )
        await agent.start()
        ops = await admin(watched_hub)
        try:
            await eventually(
                lambda: any(p["status"] == "online" for p in watched_hub.hub.printers.values()),
                what="printer online",
            )
            await fleet.printers[0].set_state("paper_out")
            alert = await ops.wait_for("desktop:health:alert", lambda a: a["kind"] == "paper_out")
            await asyncio.sleep(1.0)  # ten more polls while still out of paper
            listed = await ops.call("alerts:list", {"state": "open"})
            assert [a["kind"] for a in listed["alerts"]] == ["paper_out"]
            opened = [d for e, d in ops.events if e == "desktop:health:alert"]
            assert len(opened) == 1

            ack = await ops.call("alert:ack", {"alert_id": alert["id"]})
            assert ack["alert"]["state"] == "acknowledged"
            assert ack["alert"]["acknowledged_by"] is not None
            # Acknowledging again changes nothing and tells nobody again.
            repeat = await ops.call("alert:ack", {"alert_id": alert["id"]})
            assert repeat["ok"] and repeat["alert"] == ack["alert"]

            await fleet.printers[0].set_state("online")
            cleared = await ops.wait_for(
                "alert:update", lambda a: a["id"] == alert["id"] and a["state"] == "cleared"
            )
            assert cleared["cleared_at"] >= cleared["opened_at"]
            updates = [
                d["state"] for e, d in ops.events if e == "alert:update" and d["id"] == alert["id"]
            ]
            assert updates == ["acknowledged", "cleared"]
            again = await ops.call("alert:ack", {"alert_id": alert["id"]})
            assert again["error"]["code"] == "conflict"

            # The webhook got the opening once (after one failed attempt it retried),
            # then the acknowledgement and the clearing.
            await eventually(lambda: len(receiver.bodies) >= 3, timeout=10, what="webhooks")
            events = [
                (b["event"], b["alert"]["state"])
                for b in receiver.bodies
                if b["alert"]["kind"] == "paper_out"
            ]
            assert events == [
                ("desktop:health:alert", "open"),
                ("alert:update", "acknowledged"),
                ("alert:update", "cleared"),
            ]
            assert receiver.attempts == len(receiver.bodies) + 1
            # Each delivery is signed with the hub's webhook secret (issue 12): a receiver
            # can tell it from a forgery, and the timestamp is fresh.
            secret = (Path(watched_hub.hub.settings.data_dir) / "webhook-secret").read_bytes()
            for stamp, signature, raw in receiver.signed:
                assert abs(int(stamp) - time.time()) < 300
                expected = hmac.new(
                    secret.strip(), stamp.encode() + b"." + raw, hashlib.sha256
                ).hexdigest()
                assert hmac.compare_digest(signature, f"sha256={expected}")
            forged = receiver.signed[0][2].replace(b"open", b"gone")
            assert (
                sign(secret.strip(), int(receiver.signed[0][0]), forged) != (receiver.signed[0][1])
            )
        finally:
            await ops.close()
            await agent.stop()


async def test_agent_gone_longer_than_the_threshold_raises_an_alert(
    watched_hub: RunningHub, tmp_path: Path
) -> None:
    ops = await admin(watched_hub)
    key = await watched_hub.hub.create_license()

    def make() -> Agent:
        return Agent(
            hub_url=watched_hub.url,
            license_key=key,
            data_dir=tmp_path / "agent",
            printers=[],
            spool_synchronous="NORMAL",
        )

    agent = make()
    await agent.start()
    await agent.stop()  # gone
    alert = await ops.wait_for(
        "desktop:health:alert", lambda a: a["kind"] == "agent_disconnected", timeout=5
    )
    assert "disconnected for more than 0.5 s" in alert["message"]
    agent = make()
    await agent.start()
    await ops.wait_for(
        "alert:update", lambda a: a["kind"] == "agent_disconnected" and a["state"] == "cleared"
    )
    await agent.stop()
    await ops.close()


async def test_short_disconnect_raises_nothing(ops: OpsClient, make_agent: AgentFactory) -> None:
    """Below the threshold (60 s by default) a reconnecting agent is not an alert."""
    agent = await make_agent([])
    await agent.stop()
    await asyncio.sleep(0.3)
    listed = await ops.call("alerts:list", {})
    assert listed["alerts"] == []


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    """``GET /metrics``, parsed with prometheus_client's own parser."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def out(namespace: str, event: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("pm_events_out_total", (("event", event), ("namespace", namespace)))


def roundtrips(kind: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("pm_correlation_roundtrip_seconds_count", (("kind", kind),))


def pending(kind: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("pm_correlations_pending", (("kind", kind),))


async def test_metrics_parse_and_move(
    hub: RunningHub, ops: OpsClient, agent: Agent, fleet: SimulatorFleet, admin_token: str
) -> None:
    """Events in and out (every kind the hub sends), round trips of test prints, job
    deliveries and cancels, jobs finished, errors and SQLite writes all move."""
    await eventually(lambda: len(hub.hub.printers) == 2, what="printers")
    by_name = {p["name"]: p["id"] for p in hub.hub.printers.values()}
    before = await scrape(hub.url)
    key = ("pm_events_in_total", (("event", "printers:list"), ("namespace", "/ops")))
    for _ in range(3):
        await ops.call("printers:list", {})
    doc = {"blocks": [{"type": "text", "text": "m"}]}
    await ops.call("job:submit", {"printer_id": by_name["Kitchen-1"], "document": doc})
    await ops.wait_for("job:update", lambda j: j["status"] == "completed")
    await ops.call("printer:test", {"printer_id": 9999})
    test = await ops.call("printer:test", {"printer_id": by_name["Bar"]})
    await ops.wait_for(
        "printer:test:completed", lambda d: d["correlation_id"] == test["correlation_id"]
    )

    # A job waiting in the spool of an agent whose printer is out of paper: cancelling
    # it asks the agent (job:cancel), and that round trip is measured too.
    await fleet.printers[1].set_state("paper_out")
    await ops.wait_for("printer:update", lambda p: p["status"] == "paper_out")
    held = await ops.call("job:submit", {"printer_id": by_name["Bar"], "document": doc})
    job_id = held["job"]["id"]
    await ops.wait_for("job:update", lambda j: j["id"] == job_id and j["status"] == "dispatched")
    cancelled = await ops.call("job:cancel", {"job_id": job_id})
    assert cancelled["job"]["status"] == "cancelled"

    after = await scrape(hub.url)
    assert after[key] - before.get(key, 0) == 3
    assert after[("pm_agents_connected", ())] == 1
    assert after[("pm_operators_connected", ())] >= 1
    assert after[("pm_jobs_finished_total", (("status", "completed"),))] == 1
    assert after[("pm_jobs_finished_total", (("status", "cancelled"),))] == 1
    assert after[("pm_print_duration_seconds_count", ())] == 1
    assert after[("pm_error_acks_total", (("code", "not_found"),))] >= 1
    assert (
        after[("pm_sqlite_write_seconds_count", ())] > before[("pm_sqlite_write_seconds_count", ())]
    )
    assert after[("pm_printers", (("status", "online"),))] == 1
    assert after[("pm_printers", (("status", "paper_out"),))] == 1
    # Every kind of event the hub sends is counted, by namespace.
    for namespace, event, at_least in (
        ("/ops", "job:update", 6),
        ("/ops", "printer:update", 1),
        ("/ops", "printer:test:completed", 1),
        ("/agent", "print:job", 2),
        ("/agent", "printer:test", 1),
        ("/agent", "job:cancel", 1),
    ):
        moved = after.get(out(namespace, event), 0) - before.get(out(namespace, event), 0)
        assert moved >= at_least, (namespace, event, moved)
    # Round trips: the test print, both job deliveries, the cancel.
    assert after[roundtrips("test")] - before.get(roundtrips("test"), 0) == 1
    assert after[roundtrips("job")] - before.get(roundtrips("job"), 0) >= 2
    assert after[roundtrips("job:cancel")] == 1
    assert after[pending("job")] == 0 and after[pending("test")] == 0
    assert all(after[("pm_jobs_active", (("status", s),))] == 0 for s in ("queued", "dispatched"))


async def test_metrics_show_requests_in_flight_and_link_quality(
    hub: RunningHub, ops: OpsClient, fleet: SimulatorFleet, tmp_path: Path
) -> None:
    """Through a link that gets slow: the agent's latency gauge rises, then its loss
    gauge once acks come too late; a job on its way is a pending correlation and an
    active queued job until the agent's ack arrives, then both drop back to zero."""
    proxy = LinkProxy(hub.port)
    await proxy.start()
    agent = Agent(
        hub_url=f"http://127.0.0.1:{proxy.port}",
        license_key=await hub.hub.create_license(),
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"Kitchen-1=tcp://127.0.0.1:{fleet.printers[0].port}")],
        poll_interval=0.2,
        ping_interval=0.1,
        ping_timeout=0.5,
        spool_synchronous="NORMAL",
    )
    await agent.start()
    try:
        await eventually(lambda: len(hub.hub.agents) == 1, what="agent connected")
        agent_id = str(next(iter(hub.hub.agents)))
        latency = ("pm_agent_latency_ms", (("agent", agent_id),))
        loss = ("pm_agent_packet_loss_ratio", (("agent", agent_id),))

        async def gauge(key: tuple[str, Any], check: Any) -> Samples:
            async def met() -> Samples | None:
                samples = await scrape(hub.url)
                return samples if key in samples and check(samples[key]) else None

            result: Samples = await eventually(met, timeout=15, what=f"{key[0]}")
            return result

        fast = await gauge(latency, lambda v: v >= 0)
        assert fast[loss] == 0
        proxy.delay = 0.1  # ~200 ms round trips, under the 500 ms ping timeout
        await gauge(latency, lambda v: v >= 150 > fast[latency])

        printer_id = next(iter(hub.hub.printers))
        await eventually(lambda: hub.hub.printers[printer_id]["status"] == "online", what="online")
        proxy.delay = 0.4  # acks now come after ~800 ms: pings are lost
        await gauge(loss, lambda v: v > 0)
        job = await ops.call(
            "job:submit",
            {"printer_id": printer_id, "document": {"blocks": [{"type": "text", "text": "x"}]}},
        )
        in_flight = await gauge(pending("job"), lambda v: v == 1)
        assert in_flight[("pm_jobs_active", (("status", "queued"),))] == 1

        proxy.delay = 0.0
        await ops.wait_for(
            "job:update", lambda j: j["id"] == job["job"]["id"] and j["status"] == "completed"
        )
        done = await scrape(hub.url)
        assert done[pending("job")] == 0
        assert done[roundtrips("job")] >= 1
        assert all(done[("pm_jobs_active", (("status", s),))] == 0 for s in ("queued", "printing"))
    finally:
        await agent.stop()
        await proxy.cut()


def test_downsampling_keeps_a_month_of_samples_small(store_target: str) -> None:
    """Two agents pinging every 15 s for 30 days: the table stops growing after a week
    (on SQLite and on PostgreSQL)."""
    db = open_session(store_target)
    prepare_hub_db(db)
    db.execute("INSERT INTO companies (id, name, created_at) VALUES (1, 'c', 0)")
    db.execute("INSERT INTO branches (id, company_id, name, created_at) VALUES (1, 1, 'b', 0)")
    for agent_id in (1, 2):
        db.execute(
            "INSERT INTO agents (id, device_id, company_id, branch_id, first_seen, last_seen) "
            "VALUES (?, ?, 1, 1, 0, 0)",
            (agent_id, f"d{agent_id}"),
        )
    start = 1_700_000_000.0
    sizes = []
    for day in range(30):
        rows = [
            (agent_id, start + day * 86400 + i * 15, 5.0 + (i % 7), 0.0)
            for agent_id in (1, 2)
            for i in range(5760)
        ]
        db.execute("BEGIN")  # as the hub's writer thread does
        health_store.insert_samples(db, rows)
        health_store.downsample(
            db,
            now=start + (day + 1) * 86400,
            raw_window=2 * 3600,
            minute_window=7 * 86400,
            retention=90 * 86400,
        )
        db.execute("COMMIT")
        sizes.append(sum(health_store.count(db).values()))
    raw_total = 30 * 5760 * 2
    assert sizes[-1] < raw_total / 10
    # After the first week only one row per agent per hour is added (until retention).
    assert sizes[-1] - sizes[9] <= 20 * 24 * 2 + 4
    counts = health_store.count(db)
    # (a bucket is never split, so up to one extra minute or hour per agent)
    assert counts["raw"] <= 2 * (480 + 4) and counts["minute"] <= 2 * (7 * 1440 + 60)
    # Averages survive the folding: every sample was 5..11 ms.
    series = health_store.series(db, 1, since=start, bucket=86400)
    assert all(5.0 <= p["latency_ms"] <= 11.0 for p in series)
    # Retention removes the oldest hours.
    health_store.downsample(
        db, now=start + 40 * 86400, raw_window=7200, minute_window=7 * 86400, retention=20 * 86400
    )
    oldest = db.execute("SELECT MIN(at) FROM health_samples").fetchone()[0]
    assert oldest >= start + 20 * 86400


async def test_log_lines_about_a_request_carry_its_correlation_id(
    hub: RunningHub, ops: OpsClient, agent: Agent
) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream, json_format=True)
    try:
        await eventually(lambda: len(hub.hub.printers) == 2, what="printers")
        printer_id = next(iter(hub.hub.printers))
        ack = await ops.call("printer:test", {"printer_id": printer_id})
        await ops.wait_for("printer:test:completed", lambda d: True)
    finally:
        logging.getLogger().handlers[:] = []
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    tagged = [line for line in lines if line.get("correlation_id") == ack["correlation_id"]]
    assert any("test print sent" in line["msg"] for line in tagged), lines[-10:]


async def test_a_new_agent_has_latency_figures_from_its_first_report(
    ops: OpsClient, make_agent: AgentFactory
) -> None:
    """Right after connecting the hub has no ping sample yet (a ping reports the one
    before it); the dashboard still gets the agent's own figures from its first report."""
    await make_agent([], ping_interval=60.0, report_interval=0.5)

    async def figures() -> dict[str, Any] | None:
        ack = await ops.call("health:summary", {})
        agents = ack.get("agents") or []
        latency = agents[0]["latency_ms"] if agents else {}
        return latency if isinstance(latency.get("avg"), int | float) else None

    latency = await eventually(figures, timeout=5, what="latency in the summary")
    assert latency["last"] is not None and latency["avg"] > 0


async def test_summary_figures_are_live_and_consistent(
    hub: RunningHub, make_agent: AgentFactory, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """p95 and average come from the same pings (p95 is never under the average);
    uptime counts on between reports; spool_depth is the jobs the agent holds now."""
    specs = [f"{p.name}=tcp://127.0.0.1:{p.port}" for p in fleet.printers]
    await make_agent(specs, ping_interval=0.05, report_interval=300.0)
    await eventually(lambda: len(hub.hub.printers) == 2, what="printers")
    agent_id = next(iter(hub.hub.state.agents))
    await eventually(lambda: len(hub.hub.health.agents[agent_id].recent) >= 20, what="pings")
    first = (await ops.call("health:summary", {}))["agents"][0]
    latency = first["latency_ms"]
    assert latency["p95"] >= latency["avg"] > 0
    await asyncio.sleep(1.2)
    second = (await ops.call("health:summary", {}))["agents"][0]
    assert second["uptime_s"] >= first["uptime_s"] + 1.0  # not frozen at the last report

    bar = next(p for p in fleet.printers if p.name == "Bar")
    bar_id = next(p["id"] for p in hub.hub.printers.values() if p["name"] == "Bar")
    await bar.set_state("paper_out")
    await eventually(lambda: hub.hub.printers[bar_id]["status"] == "paper_out")
    for n in range(3):
        doc = {"blocks": [{"type": "text", "text": f"held {n}"}]}
        await ops.call("job:submit", {"printer_id": bar_id, "document": doc})

    async def held() -> bool:
        row = (await ops.call("health:summary", {}))["agents"][0]
        return bool(row["spool_depth"] == 3)

    await eventually(held, what="three jobs in the agent's spool")
