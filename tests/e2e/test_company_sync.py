"""A company hub and branch hubs syncing to it: real hubs, agents and simulated
printers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pm_hub.global_ids import ID_SPAN
from pm_hub.server import RunningHub
from tests.support.company_support import (
    BranchBox,
    branch_token,
    operator_token,
    start_branch_box,
    start_company,
    wait_branch,
)
from tests.support.helpers import OpsClient, eventually


@pytest.fixture
async def company(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_company(tmp_path / "company")
    yield running
    await running.stop()


@pytest.fixture
async def company_ops(company: RunningHub) -> AsyncIterator[OpsClient]:
    client = await OpsClient(company.url, operator_token(company, sub="hq")).connect()
    yield client
    await client.close()


@pytest.fixture
async def branches(tmp_path: Path, company: RunningHub) -> AsyncIterator[list[BranchBox]]:
    boxes = [
        await start_branch_box(
            tmp_path, "Harbour", company=company, token=branch_token(company, 1)
        ),
        await start_branch_box(
            tmp_path, "Station", company=company, token=branch_token(company, 2)
        ),
    ]
    yield boxes
    for box in boxes:
        await box.close()


async def company_printers(ops: OpsClient) -> list[dict[str, Any]]:
    ack = await ops.call("printers:list", {})
    assert ack["ok"], ack
    printers: list[dict[str, Any]] = ack["printers"]
    return printers


async def wait_company_printers(ops: OpsClient, count: int) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]] | None:
        printers = await company_printers(ops)
        online = [p for p in printers if p["status"] == "online" and p["agent_connected"]]
        return printers if len(online) >= count else None

    result: list[dict[str, Any]] = await eventually(ready, timeout=15, what=f"{count} printers")
    return result


async def test_paper_out_at_a_branch_reaches_the_company_operator(
    company_ops: OpsClient, branches: list[BranchBox]
) -> None:
    """Both branches' printers show on the company hub under their branch, with ids
    that do not collide; a paper-out at one branch arrives as printer:update and
    counts as a problem of that branch in branches:list."""
    printers = await wait_company_printers(company_ops, 4)
    assert sorted((p["branch_id"], p["name"]) for p in printers) == [
        (1, "Bar"),
        (1, "Kitchen-1"),
        (2, "Bar"),
        (2, "Kitchen-1"),
    ]
    assert len({p["id"] for p in printers}) == 4
    assert all(p["id"] // ID_SPAN == p["branch_id"] for p in printers)

    who = await company_ops.call("whoami", {})
    assert who["hub"]["company_mode"] is True
    assert [b["name"] for b in who["branches"]] == ["Harbour", "Station"]

    station_kitchen = next(p for p in printers if p["branch_id"] == 2 and p["name"] == "Kitchen-1")
    await branches[1].fleet.printers[0].set_state("paper_out")
    update = await company_ops.wait_for(
        "printer:update",
        lambda p: p["id"] == station_kitchen["id"] and p["status"] == "paper_out",
        timeout=10,
    )
    assert update["branch_id"] == 2
    alert = await company_ops.wait_for(
        "desktop:health:alert", lambda a: a["kind"] == "paper_out", timeout=10
    )
    assert alert["branch_id"] == 2 and alert["subject"] == f"printer:{station_kitchen['id']}"

    row = await wait_branch(company_ops, 2, lambda r: r["problems"] == 1)
    assert row["name"] == "Station"
    assert row["printers"] == 2
    assert row["alerts"]["critical"] == 1
    assert row["link"]["state"] == "connected"
    assert row["link"]["last_sync_at"] is not None
    other = await wait_branch(company_ops, 1)
    assert other["problems"] == 0 and other["alerts"]["critical"] == 0

    # A pause at a branch reaches the company with the branch's pause time.
    harbour_bar = next(p for p in printers if p["branch_id"] == 1 and p["name"] == "Bar")
    branch_ops = await OpsClient(
        branches[0].running.url, operator_token(branches[0].running)
    ).connect()
    try:
        ack = await branch_ops.call(
            "printer:configure", {"printer_id": local(harbour_bar["id"]), "paused": True}
        )
        assert ack["ok"] and isinstance(ack["printer"]["paused_at"], float), ack
    finally:
        await branch_ops.close()
    paused = await company_ops.wait_for(
        "printer:update", lambda p: p["id"] == harbour_bar["id"] and p["paused"], timeout=10
    )
    assert paused["paused_at"] == ack["printer"]["paused_at"]


# -- helpers for the longer scenarios ---------------------------------------------------------


def local(gid: int) -> int:
    return gid % ID_SPAN


async def listing(ops: OpsClient, event: str, key: str, **payload: Any) -> list[dict[str, Any]]:
    ack = await ops.call(event, payload)
    assert ack["ok"], ack
    rows: list[dict[str, Any]] = ack[key]
    return rows


async def mirror_differences(
    company_ops: OpsClient, branch_ops: OpsClient, branch_id: int
) -> list[str]:
    """What the company hub shows of a branch that differs from the branch itself."""
    problems = []
    for event, key, fields, extra in (
        (
            "printers:list",
            "printers",
            ("name", "status", "flags", "station", "paused", "paused_at"),
            {},
        ),
        ("jobs:list", "jobs", ("status", "attempts", "error"), {"limit": 1000}),
        ("alerts:list", "alerts", ("kind", "state", "severity"), {"limit": 1000}),
        ("agents:list", "agents", ("name", "connected"), {}),
    ):
        at_branch = {r["id"]: r for r in await listing(branch_ops, event, key, **extra)}
        mirrored = {
            local(r["id"]): r
            for r in await listing(company_ops, event, key, **extra)
            if r["branch_id"] == branch_id
        }
        if set(at_branch) != set(mirrored):
            problems.append(
                f"{key}: ids {sorted(at_branch)} at the branch, {sorted(mirrored)} mirrored"
            )
            continue
        for ident, row in at_branch.items():
            for field in fields:
                if row[field] != mirrored[ident][field]:
                    problems.append(
                        f"{key} {ident}.{field}: {row[field]!r} at the branch, "
                        f"{mirrored[ident][field]!r} mirrored"
                    )
    return problems


async def wait_mirror(company_ops: OpsClient, branch_ops: OpsClient, branch_id: int) -> None:
    async def same() -> bool:
        return not await mirror_differences(company_ops, branch_ops, branch_id)

    try:
        await eventually(same, timeout=20, interval=0.2, what="mirror equal to the branch")
    except AssertionError:
        raise AssertionError(await mirror_differences(company_ops, branch_ops, branch_id)) from None


def job_events(ops: OpsClient) -> dict[int, list[str]]:
    seen: dict[int, list[str]] = {}
    for name, data in ops.events:
        if name == "job:update":
            seen.setdefault(data["id"], []).append(data["status"])
    return seen


RANK = {"queued": 0, "dispatched": 1, "printing": 2}


def assert_once_and_in_order(events: dict[int, list[str]]) -> None:
    for job_id, statuses in events.items():
        ranks = [RANK.get(s, 3) for s in statuses]
        assert ranks == sorted(set(ranks)), f"job {job_id} went {statuses}"


async def submit(ops: OpsClient, printer_id: int, marker: str) -> dict[str, Any]:
    from tests.support.helpers import receipt_doc

    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc(marker)})
    assert ack["ok"], ack
    job: dict[str, Any] = ack["job"]
    return job


# -- forwarding ---------------------------------------------------------------------------------


async def test_actions_from_the_company_hub_are_done_at_the_branch(
    company: RunningHub, company_ops: OpsClient, branches: list[BranchBox]
) -> None:
    """Test print, job submit, reprint, cancel and alert ack on a branch's objects from
    the company hub: the branch does them (its printer prints) and the answer comes
    back with company ids; a stopped branch answers offline."""
    printers = await wait_company_printers(company_ops, 4)
    box = branches[0]
    kitchen = next(p for p in printers if p["branch_id"] == 1 and p["name"] == "Kitchen-1")
    sim = box.fleet.printers[0]

    ack = await company_ops.call("printer:test", {"printer_id": kitchen["id"]})
    assert ack["ok"], ack
    done = await company_ops.wait_for(
        "printer:test:completed", lambda d: d["correlation_id"] == ack["correlation_id"]
    )
    assert done["ok"] is True and done["printer_id"] == kitchen["id"]
    assert "PRINTERMASTER TEST PAGE" in (await sim.wait_for_receipts(1))[0].text

    job = await submit(company_ops, kitchen["id"], "HQ-1")
    assert job["id"] // ID_SPAN == 1 and job["printer_id"] == kitchen["id"]
    await company_ops.wait_for(
        "job:update", lambda j: j["id"] == job["id"] and j["status"] == "completed"
    )
    receipts = await sim.wait_for_receipts(2)
    assert "ticket HQ-1" in receipts[1].text

    again = await company_ops.call("job:reprint", {"job_id": job["id"]})
    assert again["ok"], again
    assert again["job"]["reprint_of"] == job["id"]
    assert "ticket HQ-1" in (await sim.wait_for_receipts(3))[2].text

    refused = await company_ops.call("job:cancel", {"job_id": job["id"]})
    assert refused["ok"] is False and refused["error"]["code"] == "conflict"

    detail = await company_ops.call("job:get", {"job_id": job["id"], "document": True})
    assert detail["ok"] and detail["job"]["document"]["blocks"]
    assert [e["status"] for e in detail["job"]["events"]][-1] == "completed"
    # What the printer was sent, asked of the branch that holds it: the company
    # operator's job detail shows it too.
    sent = detail["job"]["sent_preview"]
    assert any("ticket HQ-1" in line for line in sent["lines"]), sent

    await sim.set_state("paper_out")
    alert = await company_ops.wait_for(
        "desktop:health:alert", lambda a: a["kind"] == "paper_out" and a["branch_id"] == 1
    )
    acked = await company_ops.call("alert:ack", {"alert_id": alert["id"]})
    assert acked["ok"], acked
    assert acked["alert"]["state"] == "acknowledged" and acked["alert"]["id"] == alert["id"]
    assert acked["alert"]["acknowledged_by"] == "company:hq"
    branch_ops = await OpsClient(box.running.url, operator_token(box.running)).connect()
    try:
        at_branch = await listing(branch_ops, "alerts:list", "alerts", state="acknowledged")
        assert [a["id"] for a in at_branch] == [local(alert["id"])]
    finally:
        await branch_ops.close()

    viewer = await OpsClient(
        company.url, operator_token(company, role="viewer", branch_ids=[1])
    ).connect()
    try:
        denied = await viewer.call("printer:test", {"printer_id": kitchen["id"]})
        assert denied["error"]["code"] == "forbidden"
    finally:
        await viewer.close()

    await branches[1].stop()
    await wait_branch(company_ops, 2, lambda r: r["link"]["state"] == "offline")
    await company_ops.wait_for(
        "agent:update", lambda a: a["branch_id"] == 2 and a["connected"] is False
    )
    agents = await listing(company_ops, "agents:list", "agents")
    assert [(a["branch_id"], a["connected"]) for a in agents] == [(1, True), (2, False)]
    gone = next(p for p in printers if p["branch_id"] == 2)
    offline = await company_ops.call("printer:test", {"printer_id": gone["id"]})
    assert offline["ok"] is False and offline["error"]["code"] == "offline"
    assert "Station" in offline["error"]["message"]


# -- faults ---------------------------------------------------------------------------------------


async def test_link_cut_then_restored_delivers_every_change_once(tmp_path: Path) -> None:
    """The company hub goes away while the branch keeps printing; when it is back the
    branch delivers what it owes: the mirror equals the branch, no job update is shown
    twice or out of order, and every ticket printed once."""
    from pm_hub.server import start_hub
    from pm_hub.store import outbox
    from tests.support.company_support import company_settings

    settings = company_settings(tmp_path / "company")
    company = await start_hub(settings)
    settings.port = company.port
    box = await start_branch_box(
        tmp_path, "Harbour", company=company, token=branch_token(company, 1)
    )
    branch_ops = await OpsClient(box.running.url, operator_token(box.running)).connect()
    company_ops = await OpsClient(company.url, operator_token(company)).connect()
    try:
        await wait_company_printers(company_ops, 2)
        await company_ops.close()
        await company.stop()

        printers = {p["name"]: p for p in await listing(branch_ops, "printers:list", "printers")}
        kitchen_sim, bar_sim = box.fleet.printers
        await bar_sim.set_state("cover_open")
        await eventually(
            lambda: listing_status(branch_ops, printers["Bar"]["id"], "cover_open"),
            what="Bar cover open",
        )
        jobs = [
            await submit(branch_ops, printers["Kitchen-1" if i % 2 else "Bar"]["id"], f"T-{i}")
            for i in range(30)
        ]
        await eventually(all_completed(branch_ops, 15), what="15 jobs printed without upstream")
        assert len(kitchen_sim.receipts) == 15 and not bar_sim.receipts
        owed, _oldest = await box.running.hub.db.read(lambda d: outbox.pending(d))
        assert owed >= 15  # what the company hub is owed waits in the outbox

        company = await start_hub(settings)
        company_ops = await OpsClient(company.url, operator_token(company)).connect()
        await wait_mirror(company_ops, branch_ops, 1)
        await bar_sim.set_state("online")
        await eventually(all_completed(branch_ops, 30), what="30 jobs completed")
        await wait_mirror(company_ops, branch_ops, 1)

        events = job_events(company_ops)
        assert_once_and_in_order(events)
        assert {local(j) for j in events} >= {j["id"] for j in jobs[0::2]}  # the Bar's
        for sim in box.fleet.printers:
            tickets = [r.text for r in sim.receipts]
            assert len(tickets) == 15 and len(set(tickets)) == 15
        row = await wait_branch(company_ops, 1, lambda r: r["link"]["pending"] == 0)
        assert row["link"]["state"] == "connected"
        owed, _oldest = await box.running.hub.db.read(lambda d: outbox.pending(d))
        assert owed == 0
    finally:
        await company_ops.close()
        await branch_ops.close()
        await box.close()
        await company.stop()


async def listing_status(ops: OpsClient, printer_id: int, status: str) -> bool:
    rows = await listing(ops, "printers:list", "printers")
    return any(r["id"] == printer_id and r["status"] == status for r in rows)


def all_completed(ops: OpsClient, count: int) -> Any:
    async def check() -> bool:
        rows = await listing(ops, "jobs:list", "jobs", limit=1000)
        return sum(1 for r in rows if r["status"] == "completed") == count

    return check


async def test_a_branch_restarted_mid_outbox_resumes_without_duplicates(tmp_path: Path) -> None:
    """The branch hub stops while it is still sending what it owes (slowed by a
    delaying link); started again it says hello, learns what arrived, and sends the
    rest: the mirror equals the branch and no job update shows twice."""
    from pm_hub.store import outbox
    from tests.support.fault_harness import LinkProxy

    company = await start_company(tmp_path / "company")
    proxy = LinkProxy(company.port, delay=0.05)
    await proxy.start()
    box = await start_branch_box(
        tmp_path,
        "Harbour",
        company=company,
        token=branch_token(company, 1),
        upstream_url=f"http://127.0.0.1:{proxy.port}",
        upstream_batch_size=2,
    )
    company_ops = await OpsClient(company.url, operator_token(company)).connect()
    branch_ops = await OpsClient(box.running.url, operator_token(box.running)).connect()
    try:
        await wait_company_printers(company_ops, 2)
        await proxy.cut()
        printers = await listing(branch_ops, "printers:list", "printers")
        for i in range(16):
            await submit(branch_ops, printers[i % 2]["id"], f"R-{i}")
        await eventually(all_completed(branch_ops, 16), what="16 jobs printed")
        upstream = box.running.hub.upstream
        before = upstream.acked_seq
        await proxy.restore()

        async def mid_way() -> bool:
            owed, _ = await box.running.hub.db.read(lambda d: outbox.pending(d))
            return upstream.acked_seq > before and owed > 0

        await eventually(mid_way, interval=0.01, what="part of the outbox delivered")
        await branch_ops.close()
        await box.stop()
        assert await box.outbox_rows() > 0  # stopped with changes still owed

        await box.start()
        branch_ops = await OpsClient(box.running.url, operator_token(box.running)).connect()
        await wait_mirror(company_ops, branch_ops, 1)

        async def drained() -> bool:
            owed, _ = await box.running.hub.db.read(lambda d: outbox.pending(d))
            return owed == 0

        await eventually(drained, what="outbox delivered")
        assert_once_and_in_order(job_events(company_ops))
        statuses = job_events(company_ops)
        assert len(statuses) == 16
        assert sum(len(p.receipts) for p in box.fleet.printers) == 16
    finally:
        await company_ops.close()
        await branch_ops.close()
        await box.close()
        await proxy.cut()
        await company.stop()


# -- the /branch protocol itself ---------------------------------------------------------------


class RawBranch:
    """A hand-driven branch hub: a plain Socket.IO client on /branch."""

    def __init__(self, url: str, token: str | None) -> None:
        import socketio

        self.url = url
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.connect_error: Any = None

        @self.sio.on("connect_error", namespace="/branch")
        async def on_error(data: Any = None) -> None:
            self.connect_error = data

    async def connect(self) -> RawBranch:
        await self.sio.connect(
            self.url,
            namespaces=["/branch"],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    async def call(self, event: str, payload: Any) -> Any:
        return await self.sio.call(event, payload, namespace="/branch", timeout=10)

    async def close(self) -> None:
        await self.sio.disconnect()


def printer_entry(seq: int, local_id: int, status: str = "online") -> dict[str, Any]:
    record = {
        "id": local_id,
        "name": f"P{local_id}",
        "address": f"tcp://127.0.0.1:{9100 + local_id}",
        "status": status,
        "flags": {},
        "station": "kitchen",
        "paused": False,
        "branch_id": 1,
        "company_id": 1,
        "agent_id": None,
        "last_seen": 1.0,
    }
    return {"seq": seq, "kind": "printer", "id": local_id, "record": record}


async def test_a_batch_sent_twice_is_applied_once(
    company: RunningHub, company_ops: OpsClient
) -> None:
    """The company hub applies an entry once: a repeated batch is acknowledged with the
    same sequence number, changes nothing and tells operators nothing; a new outbox
    stream (a branch whose database was replaced) starts its mirror afresh."""
    raw = await RawBranch(company.url, branch_token(company, 5)).connect()
    try:
        hello = await raw.call("branch:hello", {"stream_id": "s1", "name": "Raw"})
        assert hello == {
            "ok": True,
            "branch_id": 5,
            "company_id": 1,
            "last_seq": 0,
            "reset": False,
        }
        batch = {"entries": [printer_entry(1, 1), printer_entry(2, 2, "paper_out")]}
        first = await raw.call("branch:changes", batch)
        assert first["ok"] and first["acked_seq"] == 2 and first["applied"] == 2
        again = await raw.call("branch:changes", batch)
        assert again["ok"] and again["acked_seq"] == 2
        assert again["applied"] == 0 and again["repeats"] == 2
        newer = await raw.call("branch:changes", {"entries": [printer_entry(3, 1, "cover_open")]})
        assert newer["acked_seq"] == 3 and newer["applied"] == 1

        await eventually(
            lambda: len([e for e in company_ops.events if e[0] == "printer:update"]) >= 3,
            what="three printer updates",
        )
        updates = [(d["id"], d["status"]) for e, d in company_ops.events if e == "printer:update"]
        assert updates == [
            (5 * ID_SPAN + 1, "online"),
            (5 * ID_SPAN + 2, "paper_out"),
            (5 * ID_SPAN + 1, "cover_open"),
        ]
        printers = await company_printers(company_ops)
        assert {(p["id"], p["status"]) for p in printers} == {
            (5 * ID_SPAN + 1, "cover_open"),
            (5 * ID_SPAN + 2, "paper_out"),
        }
        # A branch that says it is behind shows lagging, then connected once it caught up.
        assert (await raw.call("branch:heartbeat", {"pending": 40, "oldest_age_s": 120}))["ok"]
        row = await wait_branch(company_ops, 5)
        assert row["link"]["state"] == "lagging" and row["link"]["lag_s"] >= 120
        assert row["link"]["pending"] == 40
        assert (await raw.call("branch:heartbeat", {"pending": 0}))["ok"]
        row = await wait_branch(company_ops, 5)
        assert row["link"]["state"] == "connected" and row["link"]["lag_s"] == 0
        update = await company_ops.wait_for(
            "branch:update", lambda b: b["id"] == 5 and b["link"]["state"] == "lagging"
        )
        assert update["name"] == "Raw"
        # The same branch again after a restart: it learns what was applied.
        await raw.close()
        raw = await RawBranch(company.url, branch_token(company, 5)).connect()
        hello = await raw.call("branch:hello", {"stream_id": "s1", "name": "Raw"})
        assert hello["last_seq"] == 3 and hello["reset"] is False
        hello = await raw.call("branch:hello", {"stream_id": "s2", "name": "Raw"})
        assert hello["last_seq"] == 0 and hello["reset"] is True
        assert await company_printers(company_ops) == []
    finally:
        await raw.close()


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("branch:changes", {"entries": "nope"}, "invalid_payload"),
        (
            "branch:changes",
            {"entries": [printer_entry(2, 1), printer_entry(1, 2)]},
            "invalid_payload",
        ),
        (
            "branch:changes",
            {"entries": [{**printer_entry(1, 1), "kind": "toaster"}]},
            "invalid_payload",
        ),
        ("branch:changes", {"entries": [{**printer_entry(1, 1), "id": 2}]}, "invalid_payload"),
        ("branch:changes", {"entries": [printer_entry(1, 1, "on fire")]}, "invalid_payload"),
        ("branch:changes", {"entries": [printer_entry(1, ID_SPAN)]}, "invalid_payload"),
        ("branch:snapshot", {"seq": 1, "kind": "job", "records": [{"id": 1}]}, "invalid_payload"),
        ("branch:hello", {"stream_id": 7}, "invalid_payload"),
        ("branch:teleport", {}, "invalid_payload"),
    ],
)
async def test_bad_branch_input_gets_an_error_and_changes_nothing(
    company: RunningHub, company_ops: OpsClient, event: str, payload: Any, code: str
) -> None:
    raw = await RawBranch(company.url, branch_token(company, 5)).connect()
    try:
        if event != "branch:hello":
            assert (await raw.call("branch:hello", {"stream_id": "s1"}))["ok"]
        ack = await raw.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
        assert await company_printers(company_ops) == []
    finally:
        await raw.close()


async def test_changes_before_hello_are_refused(company: RunningHub) -> None:
    raw = await RawBranch(company.url, branch_token(company, 5)).connect()
    try:
        ack = await raw.call("branch:changes", {"entries": [printer_entry(1, 1)]})
        assert ack["ok"] is False and ack["error"]["code"] == "conflict"
    finally:
        await raw.close()


# -- tenants ---------------------------------------------------------------------------------------


async def test_tokens_see_only_their_company_and_branches(
    company: RunningHub, company_ops: OpsClient, branches: list[BranchBox]
) -> None:
    """An operator of branch 1 sees nothing of branch 2 (lists, events, actions); a
    company-2 admin sees only company 2; a token naming another company's branch
    joins nothing; a branch token may not claim another company's branch."""
    import aiohttp
    import socketio

    await wait_company_printers(company_ops, 4)
    other = await RawBranch(company.url, branch_token(company, 9, company_id=2)).connect()
    assert (await other.call("branch:hello", {"stream_id": "c2", "name": "Elsewhere"}))["ok"]
    assert (await other.call("branch:changes", {"entries": [printer_entry(1, 1)]}))["ok"]

    only_one = await OpsClient(
        company.url, operator_token(company, role="operator", branch_ids=[1])
    ).connect()
    company_two = await OpsClient(company.url, operator_token(company, company_id=2)).connect()
    sneaky = await OpsClient(
        company.url, operator_token(company, role="operator", company_id=2, branch_ids=[1])
    ).connect()
    try:
        assert {p["branch_id"] for p in await company_printers(only_one)} == {1}
        assert [b["id"] for b in await listing(only_one, "branches:list", "branches")] == [1]
        assert [b["id"] for b in (await only_one.call("whoami", {}))["branches"]] == [1]
        assert [p["id"] for p in await company_printers(company_two)] == [9 * ID_SPAN + 1]
        assert [b["name"] for b in await listing(company_two, "branches:list", "branches")] == [
            "Elsewhere"
        ]
        assert await company_printers(sneaky) == []

        printers = await company_printers(company_ops)
        station_bar = next(p for p in printers if p["branch_id"] == 2 and p["name"] == "Bar")
        denied = await only_one.call("printer:test", {"printer_id": station_bar["id"]})
        assert denied["error"]["code"] == "not_found"
        denied = await company_two.call(
            "job:submit",
            {"printer_id": station_bar["id"], "document": {"blocks": [{"type": "cut"}]}},
        )
        assert denied["error"]["code"] == "not_found"

        await branches[1].fleet.printers[1].set_state("paper_out")
        await branches[0].fleet.printers[1].set_state("paper_out")
        for client in (company_ops, only_one):
            await client.wait_for(
                "printer:update", lambda p: p["branch_id"] == 1 and p["status"] == "paper_out"
            )
        await company_ops.wait_for(
            "printer:update", lambda p: p["branch_id"] == 2 and p["status"] == "paper_out"
        )
        assert all(d.get("branch_id", d.get("id")) == 1 for _e, d in only_one.events)
        assert all(d["company_id"] == 2 for _e, d in company_two.events)
        assert sneaky.events == []

        refused = RawBranch(company.url, branch_token(company, 1, company_id=2))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect()
        assert refused.connect_error["data"]["code"] == "auth_failed"
        assert "another company" in refused.connect_error["data"]["message"]

        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {branch_token(company, 1)}"}
            async with http.get(f"{company.url}/api/v1/printers", headers=headers) as response:
                assert response.status == 401
    finally:
        for client in (only_one, company_two, sneaky):
            await client.close()
        await other.close()


async def test_a_branch_pointed_at_a_plain_hub_says_why_it_is_refused(tmp_path: Path) -> None:
    """An upstream that is not a company hub (or a wrong token) refuses the branch; the
    branch's /healthz says so in words, and it keeps serving its own operators."""
    import aiohttp

    from pm_hub.server import start_hub
    from tests.conftest import hub_settings

    plain = await start_hub(hub_settings(tmp_path / "plain"))
    box = await start_branch_box(tmp_path, "Harbour", company=plain, token=branch_token(plain, 1))
    try:
        headers = {"Authorization": f"Bearer {operator_token(box.running)}"}

        async def health() -> dict[str, Any]:
            async with (
                aiohttp.ClientSession(headers=headers) as http,
                http.get(f"{box.running.url}/healthz") as response,
            ):
                body: dict[str, Any] = await response.json()
                return body

        async def refused() -> dict[str, Any] | None:
            upstream = (await health())["upstream"]
            return upstream if upstream["state"] == "refused" else None

        upstream = await eventually(refused, what="upstream refused")
        assert "not a company hub" in upstream["message"]
        branch_ops = await OpsClient(box.running.url, operator_token(box.running)).connect()
        try:
            who = await branch_ops.call("whoami", {})
            assert who["hub"]["upstream"]["state"] == "refused"
            await wait_company_printers(branch_ops, 2)  # the branch itself works as ever
        finally:
            await branch_ops.close()
    finally:
        await box.close()
        await plain.stop()
