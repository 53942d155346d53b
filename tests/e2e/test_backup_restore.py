"""``pm backup FILE`` while the hub prints, ``pm restore FILE`` while it is stopped: the
restored hub serves the same printers, jobs and alerts, and the tokens made before."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import RunningHub, start_hub
from pm_hub.store import CURRENT_VERSION
from tests.conftest import hub_settings
from tests.hub.test_http_api import online_printers, request
from tests.support.helpers import eventually, receipt_doc

PM = [sys.executable, "-m", "pm"]


async def pm(*args: str) -> tuple[int, str, str]:
    """The real command in its own process; the event loop (and the hub) keeps going."""
    proc = await asyncio.create_subprocess_exec(
        *PM, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def submit(hub: RunningHub, token: str, printer_id: int, marker: str) -> int:
    job = {"printer_id": printer_id, "document": receipt_doc(marker)}
    status, body = await request(hub, "POST", "/api/v1/jobs", token, job)
    assert status == 201, body
    return int(body["job"]["id"])


async def state_of(hub: RunningHub, token: str) -> dict[str, Any]:
    _, printers = await request(hub, "GET", "/api/v1/printers", token)
    _, jobs = await request(hub, "GET", "/api/v1/jobs?limit=500", token)
    _, alerts = await request(hub, "GET", "/api/v1/alerts", token)
    return {
        "printers": sorted((p["id"], p["name"], p["station"]) for p in printers["printers"]),
        "jobs": {j["id"]: j["status"] for j in jobs["jobs"]},
        "alerts": sorted((a["id"], a["kind"], a["subject"]) for a in alerts["alerts"]),
    }


async def test_backup_under_write_load_then_restore_serves_the_same_state(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    data_dir = tmp_path / "hub"
    hub = await start_hub(hub_settings(data_dir))
    agent = None
    try:
        assert hub.hub.tokens is not None
        token = hub.hub.tokens.create(role="admin", sub="test-admin")
        agent = Agent(
            hub_url=hub.url,
            license_key=await hub.hub.create_license(),
            data_dir=tmp_path / "agent",
            printers=[
                parse_printer_spec(f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen")
                for p in fleet.printers
            ],
            name="agent",
            poll_interval=0.2,
            spool_synchronous="NORMAL",
        )
        await agent.start()
        printers = await online_printers(hub, token, 2)
        kitchen = next(p for p in printers if p["name"] == "Kitchen-1")
        await fleet.printers[1].set_state("paper_out")  # an open alert to carry over

        async def paper_alert() -> bool:
            _, body = await request(hub, "GET", "/api/v1/alerts", token)
            return any(a["kind"] == "paper_out" for a in body["alerts"])

        await eventually(paper_alert, what="paper-out alert")
        acked_before = [await submit(hub, token, kitchen["id"], f"before-{n}") for n in range(20)]

        stop = asyncio.Event()
        during: list[int] = []

        async def load() -> None:
            n = 0
            while not stop.is_set():
                during.append(await submit(hub, token, kitchen["id"], f"during-{n}"))
                n += 1

        writer = asyncio.create_task(load())
        await asyncio.sleep(0.3)
        backup_file = tmp_path / "backups" / "hub-backup.sqlite"
        backup_file.parent.mkdir()
        code, out, err = await pm("backup", str(backup_file), "--data-dir", str(data_dir))
        await asyncio.sleep(0.2)
        stop.set()
        await writer
        assert code == 0, err
        assert "backed up" in out and "jwt-secret" in out and "Traceback" not in err
        assert len(during) > 5  # the hub kept taking jobs while the backup ran
        assert backup_file.stat().st_mode & 0o077 == 0  # it holds secrets
        backed = sqlite3.connect(backup_file)
        saved_jobs = dict(backed.execute("SELECT id, status FROM jobs").fetchall())
        backed.close()
        assert set(acked_before) <= set(saved_jobs)
        assert max(saved_jobs) < max(during)  # one instant: jobs after it are not there
        await eventually(
            lambda: _all_finished(hub, token, acked_before + during), what="jobs printed"
        )
        code, out, err = await pm("restore", str(backup_file), "--data-dir", str(data_dir))
        assert code == 2 and "a hub is running" in err and "Traceback" not in err
        expected = await state_of(hub, token)
    finally:
        if agent is not None:
            await agent.stop()
        await hub.stop()

    # A new machine: an empty data dir, the backup file, and the same token still works.
    new_dir = tmp_path / "new-box"
    code, out, err = await pm("restore", str(backup_file), "--data-dir", str(new_dir))
    assert code == 0, err
    assert f"schema version {CURRENT_VERSION}" in out and "jwt-secret" in out
    restored = await start_hub(hub_settings(new_dir))
    try:
        got = await state_of(restored, token)
        assert got["printers"] == expected["printers"]
        assert got["alerts"] == expected["alerts"]
        assert got["jobs"] == saved_jobs  # each job as it was at the backup's instant
    finally:
        await restored.stop()

    # Back over the old box's data: the database it replaces is kept beside it.
    code, out, err = await pm("restore", str(backup_file), "--data-dir", str(data_dir))
    assert code == 0, err
    kept = list(data_dir.glob("hub.sqlite.before-restore-*"))
    assert len(kept) == 1 and str(kept[0]) in out
    with contextlib.closing(sqlite3.connect(kept[0])) as conn:
        assert conn.execute("SELECT MAX(id) FROM jobs").fetchone()[0] == max(during)


async def _all_finished(hub: RunningHub, token: str, job_ids: list[int]) -> bool:
    _, body = await request(hub, "GET", "/api/v1/jobs?status=completed&limit=500", token)
    return {j["id"] for j in body["jobs"]} >= set(job_ids)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a database at all, just some bytes" * 200, "is not a PrinterMaster backup"),
        ("other-sqlite", "has no schema_migrations, printers, jobs, agents, licenses table"),
        ("newer", "made by a newer PrinterMaster (schema version 99"),
    ],
)
async def test_restore_refuses_a_file_that_is_not_a_usable_backup(
    tmp_path: Path, content: Any, says: str
) -> None:
    bad = tmp_path / "bad.sqlite"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content == "other-sqlite":
        with contextlib.closing(sqlite3.connect(bad)) as conn:
            conn.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY)")
            conn.commit()
    else:
        hub = await start_hub(hub_settings(tmp_path / "src"))
        await hub.stop()
        code, _out, err = await pm("backup", str(bad), "--data-dir", str(tmp_path / "src"))
        assert code == 0, err
        with contextlib.closing(sqlite3.connect(bad)) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
            conn.commit()
    data_dir = tmp_path / "hub"
    code, _out, err = await pm("restore", str(bad), "--data-dir", str(data_dir))
    assert code == 2
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (data_dir / "hub.sqlite").exists()


async def test_backup_will_not_overwrite_a_file(tmp_path: Path) -> None:
    hub = await start_hub(hub_settings(tmp_path / "hub"))
    await hub.stop()
    target = tmp_path / "exists.sqlite"
    target.write_text("precious")
    code, _out, err = await pm("backup", str(target), "--data-dir", str(tmp_path / "hub"))
    assert code == 2 and "exists" in err and target.read_text() == "precious"


async def test_a_big_backup_shows_its_progress(tmp_path: Path) -> None:
    """Past 8 MB the command says how far it is, in steps of 10 %, on stderr."""
    hub = await start_hub(hub_settings(tmp_path / "hub"))
    await hub.stop()
    with contextlib.closing(sqlite3.connect(tmp_path / "hub" / "hub.sqlite")) as conn:
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.executemany("INSERT INTO ballast VALUES (randomblob(1000000))", [()] * 12)
        conn.commit()
    target = tmp_path / "big.pmbackup"
    code, _out, err = await pm("backup", str(target), "--data-dir", str(tmp_path / "hub"))
    assert code == 0, err
    percents = [int(line.split()[1].rstrip("%")) for line in err.strip().splitlines()]
    assert percents == sorted(set(percents)) and percents[0] == 0 and percents[-1] == 100
    assert len(percents) >= 8
    code, _out, err = await pm("backup", str(tmp_path / "q"), "--data-dir", str(tmp_path / "hub"),
                               "--quiet")  # fmt: skip
    assert code == 0 and err == ""
