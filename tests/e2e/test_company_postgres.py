"""A company hub on PostgreSQL: two branch hubs (SQLite) syncing to it, a restart that
keeps every branch's sync position, and a database that goes away and comes back.
Real hubs, agents and simulated printers on 127.0.0.1; a PostgreSQL schema per test."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import jwt
import pytest

from pm_core.sql import DatabaseUnavailable
from pm_hub.global_ids import global_id
from pm_hub.server import start_hub
from pm_hub.store import credentials as credential_store
from pm_hub.store import mirror as mirror_store
from pm_hub.store import tenants
from tests.e2e.test_company_sync import (
    all_completed,
    assert_once_and_in_order,
    job_events,
    listing,
    submit,
    wait_company_printers,
    wait_mirror,
)
from tests.support.company_support import (
    branch_token,
    company_settings,
    operator_token,
    start_branch_box,
    wait_branch,
)
from tests.support.fault_harness import LinkProxy
from tests.support.helpers import OpsClient, eventually


async def test_a_company_hub_on_postgresql_keeps_every_branch_position_across_a_restart(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two branches sync to a company hub whose state is in PostgreSQL: the operator
    sees both branches' printers, a test print forwarded to a branch completes. The
    company hub stops while the branches go on printing and starts again on the same
    database: each branch resumes at the position PostgreSQL kept (told in its hello),
    delivers what it owes, and the mirror equals each branch, no job update shown
    twice, every ticket printed once."""
    caplog.set_level(logging.INFO, logger="pm_hub.upstream")
    settings = company_settings(tmp_path / "company", database_url=postgres_url)
    company = await start_hub(settings)
    settings.port = company.port
    assert company.hub.db.engine == "postgresql"
    boxes = [
        await start_branch_box(
            tmp_path, "Harbour", company=company, token=branch_token(company, 1)
        ),
        await start_branch_box(
            tmp_path, "Station", company=company, token=branch_token(company, 2)
        ),
    ]
    branch_ops = [
        await OpsClient(box.running.url, operator_token(box.running)).connect() for box in boxes
    ]
    company_ops = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
    try:
        printers = await wait_company_printers(company_ops, 4)
        assert sorted((p["branch_id"], p["name"]) for p in printers) == [
            (1, "Bar"),
            (1, "Kitchen-1"),
            (2, "Bar"),
            (2, "Kitchen-1"),
        ]
        kitchen = next(p for p in printers if p["branch_id"] == 2 and p["name"] == "Kitchen-1")
        ack = await company_ops.call("printer:test", {"printer_id": kitchen["id"]})
        assert ack["ok"], ack
        done = await company_ops.wait_for(
            "printer:test:completed", lambda d: d["correlation_id"] == ack["correlation_id"]
        )
        assert done["ok"] is True
        assert (
            "PRINTERMASTER TEST PAGE"
            in (await boxes[1].fleet.printers[0].wait_for_receipts(1))[0].text
        )

        for box, ops in zip(boxes, branch_ops, strict=True):
            local = await listing(ops, "printers:list", "printers")
            for i in range(4):
                await submit(ops, local[i % 2]["id"], f"{box.name}-A{i}")
            await eventually(all_completed(ops, 4), what=f"{box.name}: 4 jobs printed")
        for branch_id, ops in ((1, branch_ops[0]), (2, branch_ops[1])):
            await wait_mirror(company_ops, ops, branch_id)
            await wait_branch(company_ops, branch_id, lambda r: r["link"]["pending"] == 0)
        before = {
            link["branch_id"]: link["last_seq"]
            for link in await company.hub.db.read(mirror_store.all_links)
        }
        assert before[1] > 0 and before[2] > 0
        first_jobs = {
            global_id(branch_id, j["id"])
            for branch_id, ops in ((1, branch_ops[0]), (2, branch_ops[1]))
            for j in await listing(ops, "jobs:list", "jobs", limit=100)
        }

        await company_ops.close()
        await company.stop()
        for box, ops in zip(boxes, branch_ops, strict=True):
            local = await listing(ops, "printers:list", "printers")
            for i in range(4):
                await submit(ops, local[i % 2]["id"], f"{box.name}-B{i}")
            await eventually(all_completed(ops, 8), what=f"{box.name}: 8 jobs printed")
        caplog.clear()

        company = await start_hub(settings)  # the same database, the same port
        company_ops = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
        await wait_company_printers(company_ops, 4)
        for branch_id, ops in ((1, branch_ops[0]), (2, branch_ops[1])):
            await wait_mirror(company_ops, ops, branch_id)
            await wait_branch(company_ops, branch_id, lambda r: r["link"]["pending"] == 0)

        # Each branch heard, in its hello, the position PostgreSQL kept for it.
        told = [
            int(m.group(1))
            for r in caplog.records
            if (m := re.search(r"it has applied up to (\d+)", r.getMessage()))
        ]
        assert sorted(told)[:2] == sorted(before.values()), told

        # The position kept in PostgreSQL moved past the old one and equals what the
        # branch was told (the acknowledgement may follow the mirror by a moment).
        async def positions() -> dict[int, tuple[int, int]]:
            stored = {
                link["branch_id"]: link["last_seq"]
                for link in await company.hub.db.read(mirror_store.all_links)
            }
            acked: dict[int, tuple[int, int]] = {}
            for branch_id, box in ((1, boxes[0]), (2, boxes[1])):
                assert box.running.hub.upstream is not None
                acked[branch_id] = (stored[branch_id], box.running.hub.upstream.acked_seq)
            return acked

        async def moved_on() -> bool:
            return all(
                kept == acked > before[branch_id]
                for branch_id, (kept, acked) in (await positions()).items()
            )

        try:
            await eventually(moved_on, timeout=15, what="positions past the old ones")
        except AssertionError:
            raise AssertionError(f"before {before}, now {await positions()}") from None
        for box in boxes:
            assert await box.outbox_rows() == 0
        # Nothing applied twice: the jobs the mirror had before the restart were not
        # shown again, the new ones once each and in order.
        events = job_events(company_ops)
        assert not set(events) & first_jobs, sorted(set(events) & first_jobs)
        assert_once_and_in_order(events)
        for box, test_pages in ((boxes[0], 0), (boxes[1], 1)):
            tickets = [r.text for p in box.fleet.printers for r in p.receipts]
            assert len(tickets) == len(set(tickets)) == 8 + test_pages
        branches = await company.hub.db.read(lambda d: tenants.list_branches(d, 1))
        assert [b["name"] for b in branches] == ["Harbour", "Station"]
    finally:
        await company_ops.close()
        for ops in branch_ops:
            await ops.close()
        for box in boxes:
            await box.close()
        await company.stop()


def through(url: str, port: int) -> str:
    """``url`` with its port replaced (to reach the server through a proxy)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}:{port}"))


async def test_postgresql_going_away_answers_unavailable_and_the_hub_recovers(
    tmp_path: Path, postgres_url: str
) -> None:
    """The company hub's link to PostgreSQL is cut (a proxy in between; the shared
    server itself is left alone): requests answer ``unavailable``, the hub stays up,
    a branch's changes wait at the branch; when the link is back, reads and writes
    work again without a restart and the change the branch made meanwhile arrives."""
    port = urlsplit(postgres_url).port or 5432
    proxy = LinkProxy(port)
    await proxy.start()
    company = await start_hub(
        company_settings(tmp_path / "company", database_url=through(postgres_url, proxy.port))
    )
    box = await start_branch_box(
        tmp_path, "Harbour", company=company, token=branch_token(company, 1)
    )
    company_ops = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
    try:
        printers = await wait_company_printers(company_ops, 2)
        bar = next(p for p in printers if p["name"] == "Bar")
        ok = await company_ops.call("jobs:list", {})
        assert ok["ok"], ok

        await proxy.cut()
        refused = await company_ops.call("jobs:list", {}, timeout=30)
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable", refused
        with pytest.raises(DatabaseUnavailable):
            await company.hub.db.write(lambda d: d.execute("SELECT 1"))
        healthz = await company_ops.call("whoami", {})
        assert healthz["ok"], healthz  # the process is up and answers what needs no database
        await box.fleet.printers[1].set_state("cover_open")  # the Bar, while cut off

        await proxy.restore()

        async def answers() -> bool:
            ack = await company_ops.call("jobs:list", {}, timeout=30)
            return bool(ack["ok"])

        await eventually(answers, timeout=30, interval=0.5, what="reads work again")
        assert await company.hub.db.write(lambda d: d.execute("SELECT 1").fetchone()[0]) == 1
        await company_ops.wait_for(
            "printer:update",
            lambda p: p["id"] == bar["id"] and p["status"] == "cover_open",
            timeout=30,
        )
    finally:
        await company_ops.close()
        await box.close()
        await company.stop()
        await proxy.cut()


# -- the command line ----------------------------------------------------------------------------


def pm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_credentials_made_on_the_command_line_live_in_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """``pm token`` and ``pm license`` with ``--database`` (or PM_DATABASE_URL) write
    the company hub's PostgreSQL store; a hub process on the same database and the
    same data dir (its signing secret) takes the token, and drops the connection when
    another process revokes it."""
    data = tmp_path / "company"
    made = await asyncio.to_thread(
        pm, "token", "create", "--role", "admin", "--sub", "hq", "--data-dir", str(data),
        "--database", postgres_url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    listed = await asyncio.to_thread(
        pm, "token", "list", "--data-dir", str(data), env={"PM_DATABASE_URL": postgres_url}
    )
    assert listed.returncode == 0 and token_id in listed.stdout, listed.stderr
    license_made = await asyncio.to_thread(
        pm, "license", "create", "--label", "till", "--data-dir", str(data),
        "--database", postgres_url,
    )  # fmt: skip
    assert license_made.returncode == 0, license_made.stderr
    licenses = await asyncio.to_thread(
        pm, "license", "list", "--data-dir", str(data), "--database", postgres_url
    )
    assert "till" in licenses.stdout and license_made.stdout.strip() not in licenses.stdout

    company = await start_hub(company_settings(data, database_url=postgres_url))
    ops = await OpsClient(company.url, token).connect()
    try:
        assert (await ops.call("whoami", {}))["ok"]
        revoked = await asyncio.to_thread(
            pm, "token", "revoke", token_id, "--data-dir", str(data), "--database", postgres_url
        )
        assert revoked.returncode == 0 and "revoked 1 token" in revoked.stdout, revoked.stderr
        await eventually(lambda: not ops.sio.connected, timeout=5, what="connection closed")
        gone = await asyncio.to_thread(
            pm, "license", "revoke", "1", "--data-dir", str(data), "--database", postgres_url
        )
        assert gone.returncode == 0, gone.stderr
        assert await company.hub.db.read(credential_store.revoked_license_ids) == {1}
    finally:
        await ops.close()
        await company.stop()


def test_the_hub_says_why_it_cannot_use_postgresql(tmp_path: Path) -> None:
    upstream = pm(
        "hub", "--data-dir", str(tmp_path), "--port", "0", "--upstream", "http://127.0.0.1:9",
        "--upstream-token", "t", "--database", "postgresql://postgres@127.0.0.1:1/test",
    )  # fmt: skip
    assert upstream.returncode == 2 and "keeps SQLite" in upstream.stderr, upstream.stderr
    down = pm(
        "hub", "--company-mode", "--data-dir", str(tmp_path), "--port", "0",
        "--database", "postgresql://postgres@127.0.0.1:1/test",
    )  # fmt: skip
    assert down.returncode == 2, down.stderr
    assert "unreachable" in down.stderr and "127.0.0.1:1" in down.stderr
    assert "Traceback" not in down.stderr
    wrong = pm("token", "list", "--data-dir", str(tmp_path), "--database", "mysql://x/y")
    assert wrong.returncode == 2 and "postgresql://" in wrong.stderr
