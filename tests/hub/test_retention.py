"""Retention: the hub forgets what is old, and only that; the file stops growing; the
5-minute health reports are kept across a restart."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from pm_core.database import Database
from pm_core.protocol import AgentEvent
from pm_core.sql import Session
from pm_hub.config import HubSettings
from pm_hub.retention import RetentionKeeper
from pm_hub.server import start_hub
from pm_hub.store import health as health_store
from pm_hub.store import jobs as job_store
from pm_hub.store import prepare_hub_db, tenants
from tests.conftest import hub_settings
from tests.hub.test_http_api import request
from tests.support.helpers import eventually
from tests.support.raw_agent import RawAgent

DAY = 86400.0
#: A logo's worth of PNG bytes (incompressible, as a real one mostly is).
LOGO = base64.b64encode(os.urandom(6000)).decode()


def ticket(marker: str, *, logo: bool = True) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": marker}]
    if logo:
        blocks.insert(0, {"type": "image", "png_base64": LOGO})
    return {"blocks": blocks}


def add_job(d: Session, printer_id: int | None, *, finished_days_ago: float | None,
            now: float, reprint_of: int | None = None, logo: bool = True) -> int:  # fmt: skip
    company_id, branch_id = tenants.ensure_default_tenant(d)
    row, _ = job_store.insert_job(
        d, company_id=company_id, branch_id=branch_id, printer_id=printer_id, station=None,
        document=ticket("x", logo=logo), copies=1, idempotency_key=None, submitted_by="t",
        expires_at=None, reprint_of=reprint_of,
    )  # fmt: skip
    job_id = int(row["id"])
    if finished_days_ago is not None:
        job_store.transition(d, job_id, "completed", actor="agent:1")
        at = now - finished_days_ago * DAY
        d.execute("UPDATE jobs SET finished_at = ?, created_at = ? WHERE id = ?", (at, at, job_id))
        d.execute("UPDATE job_events SET at = ? WHERE job_id = ?", (at, job_id))
    return job_id


async def test_retention_prunes_what_is_due_and_nothing_else(tmp_path: Path) -> None:
    """Documents of jobs finished over 30 days ago go (the job stays); jobs finished
    over a year ago go with their events; unfinished jobs, recent ones, open alerts,
    recent history and the latest reports stay. Batches smaller than the work."""
    hub = await start_hub(hub_settings(tmp_path / "hub", retention_batch_rows=3))
    try:
        db = hub.hub.db
        now = time.time()
        keeper = hub.hub.retention
        assert keeper is not None

        def seed(d: Session) -> dict[str, Any]:
            company_id, branch_id = tenants.ensure_default_tenant(d)
            d.execute(
                "INSERT INTO printers (company_id, branch_id, identity, name, address, "
                "created_at, updated_at) VALUES (?, ?, 'tcp://p', 'P', 'tcp://p', ?, ?)",
                (company_id, branch_id, now, now),
            )
            pid = d.execute("SELECT id FROM printers").fetchone()[0]
            ids = {
                "ancient": [add_job(d, pid, finished_days_ago=400, now=now) for _ in range(4)],
                "old": [add_job(d, pid, finished_days_ago=40, now=now) for _ in range(7)],
                "recent": [add_job(d, pid, finished_days_ago=2, now=now) for _ in range(2)],
                "waiting": [add_job(d, pid, finished_days_ago=None, now=now)],
            }
            ids["reprint"] = [
                add_job(d, pid, finished_days_ago=1, now=now, reprint_of=ids["ancient"][0])
            ]
            d.execute(
                "INSERT INTO agents (device_id, company_id, branch_id, first_seen, last_seen) "
                "VALUES ('dev', ?, ?, ?, ?)",
                (company_id, branch_id, now, now),
            )
            agent_id = d.execute("SELECT id FROM agents").fetchone()[0]
            events = [(pid, now - 100 * DAY, "offline")] * 5 + [(pid, now - 60, "online")] * 12
            d.conn.executemany(
                "INSERT INTO printer_events (printer_id, at, status) VALUES (?, ?, ?)", events
            )
            reports = [(agent_id, now - 40 * DAY, "{}")] * 4 + [(agent_id, now - 60, "{}")]
            d.conn.executemany(
                "INSERT INTO health_reports (agent_id, at, report) VALUES (?, ?, ?)", reports
            )
            for state, cleared in (("cleared", 400), ("cleared", 5), ("open", None)):
                d.execute(
                    "INSERT INTO alerts (company_id, kind, severity, subject, message, state, "
                    "opened_at, cleared_at) VALUES (1, 'paper_out', 'critical', ?, 'm', ?, ?, ?)",
                    (f"printer:{state}{cleared}", state, now - 500 * DAY,
                     None if cleared is None else now - cleared * DAY),
                )  # fmt: skip
            return ids

        ids = await db.write(seed)
        hub.hub.settings.printer_history_max_rows = 10
        pruned = await keeper.run_once()
        assert pruned["jobs"] == 4 and pruned["documents"] == 7
        assert pruned["printer_history_over_cap"] == 7  # by age: pm_hub.health's upkeep
        assert pruned["health_reports"] == 4 and pruned["alerts"] == 1

        def read(d: Session) -> dict[str, Any]:
            jobs = {r["id"]: dict(r) for r in d.execute(job_store.WITH_DOCUMENT)}
            events = {r[0] for r in d.execute("SELECT DISTINCT job_id FROM job_events")}
            return {
                "jobs": jobs,
                "events": events,
                "history": d.execute("SELECT COUNT(*) FROM printer_events").fetchone()[0],
                "reports": d.execute("SELECT COUNT(*) FROM health_reports").fetchone()[0],
                "alerts": sorted(r[0] for r in d.execute("SELECT subject FROM alerts")),
            }

        got = await db.read(read)
        ancient = set(ids["ancient"])
        assert not ancient & set(got["jobs"]) and not ancient & got["events"]
        for job_id in ids["old"]:
            job = got["jobs"][job_id]
            assert job["document_pruned_at"] is not None and job["document"] is None
            assert job_id in got["events"]  # the history stays
        for job_id in ids["recent"] + ids["waiting"] + ids["reprint"]:
            job = got["jobs"][job_id]
            assert job["document_pruned_at"] is None and LOGO in job["document"]
        assert got["jobs"][ids["reprint"][0]]["reprint_of"] is None
        assert got["history"] == 10 and got["reports"] == 1
        assert got["alerts"] == ["printer:cleared5", "printer:openNone"]
        assert (await keeper.run_once())["documents"] == 0  # nothing left to do

        # What an operator sees of a pruned job: its outcome, no ticket, no reprint.
        assert hub.hub.tokens is not None
        token = hub.hub.tokens.create(role="admin", sub="test-admin")
        old = ids["old"][0]
        status, body = await request(hub, "GET", f"/api/v1/jobs/{old}?document=1", token)
        assert status == 200 and body["job"]["status"] == "completed"
        assert body["job"]["document"] == {} and body["job"]["document_pruned_at"]
        status, body = await request(hub, "POST", f"/api/v1/jobs/{old}/reprint", token, {})
        assert status == 409 and "pruned" in body["error"]["message"]
    finally:
        await hub.stop()


async def test_the_file_stops_growing_without_vacuum(tmp_path: Path) -> None:
    """Jobs with a logo every day for 90 days, documents kept 10 days and jobs 30: once
    both are due the file no longer grows (freed pages are used again or given back)."""
    settings = HubSettings(
        data_dir=tmp_path, job_document_retention_s=10 * DAY, job_retention_s=30 * DAY,
        retention_batch_rows=200, sqlite_synchronous="OFF",
    )  # fmt: skip
    db = Database(settings.db_path, synchronous="OFF")
    db.start(prepare_hub_db)
    keeper = RetentionKeeper(settings, db=db)
    start = time.time() - 90 * DAY
    sizes: dict[int, int] = {}
    try:
        for day in range(90):
            now = start + day * DAY

            def one_day(d: Session, now: float = now) -> None:
                for _ in range(60):
                    add_job(d, None, finished_days_ago=0, now=now)

            await db.write(one_day)
            await keeper.run_once(now=now)
            sizes[day] = settings.db_path.stat().st_size
    finally:
        db.close()
    assert sizes[45] > 0
    assert sizes[89] <= sizes[45] * 1.1  # steady state: no growth once retention bites
    assert sizes[9] < sizes[29]  # it did grow before (the test would see a no-op)


async def test_health_reports_are_kept_across_a_restart(tmp_path: Path) -> None:
    """The agent's 5-minute report is on disk: after a restart ``health:summary``
    shows it (and when it came) before the agent reports again."""
    data_dir = tmp_path / "hub"
    hub = await start_hub(hub_settings(data_dir))
    try:
        key = await hub.hub.create_license()
        agent = await RawAgent(hub.url, key, "dev-report").connect()
        ack = await agent.call(
            AgentEvent.HEALTH_REPORT, {"uptime_s": 1234, "spool_depth": 3, "latency_avg_ms": 2.5}
        )
        assert ack["ok"]
        await agent.close()
    finally:
        await hub.stop()
    hub = await start_hub(hub_settings(data_dir))
    try:
        assert hub.hub.tokens is not None
        token = hub.hub.tokens.create(role="admin", sub="test-admin")

        async def summary() -> Any:
            _, body = await request(hub, "GET", "/api/v1/health", token)
            agents = body.get("agents") or []
            return agents[0] if agents and agents[0]["last_report_at"] else None

        agent_health = await eventually(summary, what="health summary with the report")
        # Until the agent pings again, its figures are the report's (uptime only while
        # it is connected; the spool depth is the hub's own count).
        assert agent_health["latency_ms"]["avg"] == 2.5
        rows = await hub.hub.db.read(
            lambda d: [json.loads(r[0]) for r in d.execute("SELECT report FROM health_reports")]
        )
        assert rows == [{"latency_avg_ms": 2.5, "spool_depth": 3, "uptime_s": 1234}]
    finally:
        await hub.stop()


async def test_pruning_runs_on_both_engines(store_target: str) -> None:
    """The same pruning SQL on a SQLite file and on PostgreSQL (a company hub)."""
    settings = HubSettings(retention_batch_rows=2, printer_history_max_rows=1)
    db = Database(store_target)
    db.start(prepare_hub_db)
    now = time.time()
    try:

        def seed(d: Session) -> None:
            company_id, branch_id = tenants.ensure_default_tenant(d)
            for days in (400, 400, 400, 40, 40, 40, 1):
                add_job(d, None, finished_days_ago=days, now=now, logo=False)
            d.execute(
                "INSERT INTO agents (device_id, company_id, branch_id, first_seen, last_seen) "
                "VALUES ('dev', ?, ?, ?, ?)",
                (company_id, branch_id, now, now),
            )

        await db.write(seed)
        await db.write(
            lambda d: health_store.insert_reports(
                d, [(1, now - 40 * DAY, "{}"), (1, now - 40 * DAY, "{}"), (1, now, "{}")]
            )
        )
        pruned = await RetentionKeeper(settings, db=db).run_once(now=now)
        assert (pruned["jobs"], pruned["documents"], pruned["health_reports"]) == (3, 3, 2)
        left = await db.read(
            lambda d: [
                (r["document_pruned_at"] is not None, r["document"] is not None)
                for r in d.execute(job_store.WITH_DOCUMENT + " ORDER BY id").fetchall()
            ]
        )
        assert left == [(True, False)] * 3 + [(False, True)]
    finally:
        db.close()
