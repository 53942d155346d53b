"""Record the sample branch from a real hub: ``python -m tests.support.record_sample``.

Starts real hubs, agents and simulated printers in this process (as
``tests/conftest.py`` does), plays an hour in a restaurant, and connects as the
dashboard does (``pm_tui.hub_link.HubLink``, ``coalesce: true``) a few minutes before
the end. It writes what the dashboard asked for when it connected and what the hub
answered, every event the dashboard received after that, and the hub's answers at
the end (lists, every printer's ``printer:get``, every job's ``job:get``).
``SampleHub`` replays it for the snapshot tests and the screenshots in
``docs/tui.md``. Two recordings:

- ``sample_branch.json``: the Downtown branch hub, two agents, five printers.
- ``sample_company.json``: a company hub with the Downtown and Harbour branch hubs
  syncing to it; Harbour's box goes offline.

The hour is played on a scripted wall clock: ``time.time()`` in the hub and agent
modules starts an hour in the past and jumps forward between the steps (monotonic
time is untouched, so timeouts, retries and latencies run as usual). Only the
timestamps tell the story; everything else is what the hubs and agents did.

Normalized so that a replay is stable: times are shifted so the run ends at
``SAMPLE_NOW`` (and rounded to the millisecond), the printers' random ports become
9101-9105, the agents' device ids and host names fixed ones. Record again when the
hub changes what it sends (``tests/tui/test_sample_hub.py`` says so), then update
the snapshots and look at them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import pkgutil
import platform
import re
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pm_agent
import pm_core
import pm_hub
from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim import SimulatedPrinter, SimulatorFleet
from pm_core.protocol import HubEvent, OpsEvent
from pm_hub.server import RunningHub, start_hub
from pm_tui.app import JOBS_ON_CONNECT
from pm_tui.hub_link import HubLink, LinkState
from tests.conftest import hub_settings
from tests.support.sample_hub import BRANCH_RECORDING, COMPANY_RECORDING, SAMPLE_NOW

Record = dict[str, Any]

#: Keys whose numbers are wall-clock times (shifted by the normalization).
TIME_KEYS = frozenset(
    {
        "at",
        "created_at",
        "updated_at",
        "expires_at",
        "finished_at",
        "last_seen",
        "status_changed_at",
        "first_seen",
        "last_disconnect",
        "opened_at",
        "acknowledged_at",
        "cleared_at",
        "connected_since",
        "last_report_at",
        "generated_at",
        "server_time",
        "connected_at",
        "disconnected_at",
        "last_sync_at",
    }
)


def ticket(table: int, order: int, items: list[str]) -> Record:
    """A kitchen ticket as a POS sends it."""
    blocks: list[Record] = [
        {"type": "text", "text": f"TABLE {table}", "bold": True, "align": "center", "width": 2},
        {"type": "text", "text": f"order #{order}", "align": "center"},
        {"type": "line"},
        *({"type": "text", "text": item} for item in items),
        {"type": "feed", "lines": 1},
        {"type": "qr", "data": f"order:{order}"},
        {"type": "cut"},
    ]
    return {"blocks": blocks}


async def eventually(check: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the scenario did not get there: {what}")


# -- the scripted wall clock -----------------------------------------------------------


class ScriptedClock:
    """``time.time()`` for the hubs and agents: ``behind`` seconds in the past at
    first, jumping forward with :meth:`advance`, never ahead of the real clock."""

    def __init__(self, behind: float) -> None:
        self.offset = -behind
        self._real = time.time
        self.module = types.ModuleType("time")
        self.module.__dict__.update(time.__dict__)
        self.module.time = self.time  # type: ignore[attr-defined]
        self.module.scripted = True  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset = min(0.0, self.offset + seconds)

    def install(self) -> None:
        """Every module of the hub, agent and floor that did ``import time`` reads this
        clock instead (the libraries under them keep the real one)."""
        for package in (pm_core, pm_hub, pm_agent):
            for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
                if not info.name.endswith("__main__"):
                    with contextlib.suppress(ImportError):
                        importlib.import_module(info.name)
        for name, module in list(sys.modules.items()):
            if name.split(".")[0] in ("pm_core", "pm_hub", "pm_agent"):
                clock = getattr(module, "time", None)
                if clock is time or getattr(clock, "scripted", False):
                    module.time = self.module  # type: ignore[attr-defined]


# -- an operator or a dashboard ----------------------------------------------------------


class OpsTap:
    """Connected to a hub's ``/ops`` as the dashboard connects; keeps what it receives."""

    def __init__(self, url: str, token: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.link = HubLink(url, token, on_event=self._event, on_state=self._state)
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _event(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    def _state(self, state: LinkState) -> None:
        if state.state == "connected":
            self.connected.set()

    async def start(self) -> OpsTap:
        self._task = asyncio.create_task(self.link.run())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def call(self, event: str, payload: Record | None = None) -> Record:
        ack = await self.link.call(event, payload or {})
        if not ack.get("ok"):
            raise RuntimeError(f"{event} {payload}: {ack}")
        return ack

    async def load(self) -> dict[str, Record]:
        """What ``PrinterMasterApp.load_everything`` asks for."""
        answers = {
            OpsEvent.WHOAMI: await self.call(OpsEvent.WHOAMI),
            OpsEvent.PRINTERS_LIST: await self.call(OpsEvent.PRINTERS_LIST),
            OpsEvent.JOBS_LIST: await self.call(OpsEvent.JOBS_LIST, {"limit": JOBS_ON_CONNECT}),
            OpsEvent.ALERTS_LIST: await self.call(OpsEvent.ALERTS_LIST, {"limit": 200}),
            OpsEvent.AGENTS_LIST: await self.call(OpsEvent.AGENTS_LIST),
            OpsEvent.STATIONS_LIST: await self.call(OpsEvent.STATIONS_LIST),
        }
        if answers[OpsEvent.WHOAMI]["hub"].get("company_mode"):
            answers[OpsEvent.BRANCHES_LIST] = await self.call(OpsEvent.BRANCHES_LIST)
        answers[OpsEvent.HEALTH_SUMMARY] = await self.call(OpsEvent.HEALTH_SUMMARY)
        return answers

    async def load_all(self) -> dict[str, Any]:
        """Everything, and every printer's ``printer:get`` and job's ``job:get``."""
        answers: dict[str, Any] = await self.load()
        printers = answers[OpsEvent.PRINTERS_LIST]["printers"]
        jobs = answers[OpsEvent.JOBS_LIST]["jobs"]
        answers[OpsEvent.PRINTER_GET] = {
            str(p["id"]): await self.call(OpsEvent.PRINTER_GET, {"printer_id": p["id"]})
            for p in printers
        }
        answers[OpsEvent.JOB_GET] = {
            str(j["id"]): await self.call(OpsEvent.JOB_GET, {"job_id": j["id"], "document": True})
            for j in jobs
        }
        answers[OpsEvent.LOGS_LIST] = await self.call(OpsEvent.LOGS_LIST, {"limit": 300})
        return answers

    def count(self, event: str) -> int:
        return sum(1 for name, _data in self.events if name == event)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.link.close()


# -- a branch box ----------------------------------------------------------------------


class BranchBox:
    """A branch hub, its simulated printers and its agents, and an operator on it.

    ``printers``: (name, station, model, agent, print delay) in the order they get
    their ids."""

    def __init__(
        self,
        root: Path,
        clock: ScriptedClock,
        name: str,
        printers: tuple[tuple[str, str, str, str, float], ...],
        **settings: Any,
    ) -> None:
        self.root = root / name
        self.clock = clock
        self.name = name
        self.specs = printers
        self.settings = hub_settings(
            self.root / "hub", branch_name=name, update_batch_window_s=0.05, **settings
        )
        self.hub: RunningHub | None = None
        self.fleet: SimulatorFleet | None = None
        self.agents: dict[str, Agent] = {}
        self.licenses: dict[str, str] = {}
        self.ops: OpsTap | None = None
        self.ids: dict[str, int] = {}
        self.order = 900

    @property
    def running(self) -> RunningHub:
        assert self.hub is not None
        return self.hub

    @property
    def operator(self) -> OpsTap:
        assert self.ops is not None
        return self.ops

    def token(self, **kw: Any) -> str:
        assert self.running.hub.tokens is not None
        return self.running.hub.tokens.create(**kw)

    def printer(self, name: str) -> SimulatedPrinter:
        assert self.fleet is not None
        return next(p for p in self.fleet.printers if p.name == name)

    async def start(self) -> BranchBox:
        self.hub = await start_hub(self.settings)
        printers = [
            SimulatedPrinter(name, model=model, print_delay=delay)
            for name, _station, model, _agent, delay in self.specs
        ]
        self.fleet = await SimulatorFleet(printers, control_port=None).start_all()
        self.ops = await OpsTap(self.running.url, self.token(role="admin", sub="it-admin")).start()
        for agent in dict.fromkeys(spec[3] for spec in self.specs):
            self.licenses[agent] = await self.running.hub.create_license()
            await self.start_agent(agent)
            names = [spec[0] for spec in self.specs if spec[3] == agent]
            await eventually(lambda n=names: self._registered(n), f"{agent}'s printers")
        expected = {spec[0]: index for index, spec in enumerate(self.specs, start=1)}
        if self.ids != expected:
            raise RuntimeError(f"printer ids came out in another order: {self.ids}")
        return self

    async def _registered(self, names: list[str]) -> bool:
        listed = await self.operator.call(OpsEvent.PRINTERS_LIST)
        found = {p["name"]: p["id"] for p in listed["printers"]}
        if all(name in found for name in names):
            self.ids.update({name: found[name] for name in names})
            return True
        return False

    async def start_agent(self, agent: str) -> None:
        specs = [
            f"{name}=tcp://127.0.0.1:{self.printer(name).port}#{station}"
            for name, station, _model, owner, _delay in self.specs
            if owner == agent
        ]
        running = Agent(
            hub_url=self.running.url,
            license_key=self.licenses[agent],
            data_dir=self.root / agent,
            printers=[parse_printer_spec(spec) for spec in specs],
            name=agent,
            poll_interval=0.2,
            ping_interval=0.25,
            report_interval=1.0,
            spool_synchronous="NORMAL",
        )
        # LinkHealth took the real time.time as a default factory before the clock was
        # scripted: its start (for the uptime it reports) is set on the scripted clock.
        running.health.started = self.clock.time()
        self.agents[agent] = running
        await running.start()

    async def stop(self) -> None:
        for agent in self.agents.values():
            await agent.stop()
        self.agents = {}
        if self.ops is not None:
            await self.ops.close()
            self.ops = None
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    async def close(self) -> None:
        await self.stop()
        if self.fleet is not None:
            await self.fleet.stop()

    def normalized_names(self, first_port: int) -> tuple[dict[str, str], dict[str, str]]:
        """Fixed printer addresses, and fixed device ids for the agents."""
        addresses = {
            f"tcp://127.0.0.1:{self.printer(spec[0]).port}": f"tcp://127.0.0.1:{port}"
            for port, spec in enumerate(self.specs, start=first_port)
        }
        names = {agent.device_id: f"dev-{name}" for name, agent in self.agents.items()}
        return addresses, names

    # -- what an operator (or a POS) does ------------------------------------------------

    async def submit(self, target: Record, items: list[str], **extra: Any) -> Record:
        self.order += 1
        document = ticket(self.order % 23 + 1, self.order, items)
        payload = {**target, "document": document, "idempotency_key": f"pos-{self.order}", **extra}
        job: Record = (await self.operator.call(OpsEvent.JOB_SUBMIT, payload))["job"]
        return job

    async def job_status(self, job_id: int, *statuses: str) -> Record:
        ops = self.operator

        async def reached() -> Record | None:
            job: Record = (await ops.call(OpsEvent.JOB_GET, {"job_id": job_id}))["job"]
            return job if job["status"] in statuses else None

        found: Record = await eventually(reached, f"job {job_id} {statuses}")
        return found

    async def printer_status(self, name: str, status: str) -> None:
        ops, printer_id = self.operator, self.ids[name]

        async def reached() -> bool:
            ack = await ops.call(OpsEvent.PRINTER_GET, {"printer_id": printer_id})
            return bool(ack["printer"]["status"] == status)

        await eventually(reached, f"{name} {status}")

    async def configure(self, name: str, **settings: Any) -> None:
        await self.operator.call(
            OpsEvent.PRINTER_CONFIGURE, {"printer_id": self.ids[name], **settings}
        )

    async def minutes(self, count: int) -> None:
        """Let ``count`` minutes pass: the agents ping the hub in each of them."""
        for _ in range(count):
            self.clock.advance(60)
            await asyncio.sleep(0.3)


# -- the branch's hour ---------------------------------------------------------------------

DOWNTOWN = (
    ("Kitchen-1", "kitchen", "TM-T20III", "kitchen-box", 0.6),
    ("Kitchen-2", "kitchen", "TM-T20III", "kitchen-box", 0.6),
    ("Bar", "bar", "TM-T20III", "kitchen-box", 0.4),
    ("Receipt-2", "receipt", "TM-T20III", "front-box", 0.3),
    ("Receipt-1", "receipt", "TM-T88V", "front-box", 0.3),
)


async def branch_hour(box: BranchBox) -> dict[str, Any]:
    """Lunch at Downtown; the dashboard connects five minutes before the end."""
    ops = box.operator
    kitchen, bar = {"station": "kitchen"}, {"station": "bar"}
    await box.minutes(1)
    first = await box.submit(kitchen, ["2x Burger", "1x Fries"])
    rush = [first, await box.submit(bar, ["2x Lemonade"])]
    rush.append(await box.submit(kitchen, ["1x Soup of the day"]))
    for job in rush:
        await box.job_status(job["id"], "completed")
    await box.minutes(6)
    receipt = await box.submit({"printer_id": box.ids["Receipt-1"]}, ["Bill table 4"])
    await box.job_status(receipt["id"], "completed")
    await box.minutes(6)
    reprint = await ops.call(OpsEvent.JOB_REPRINT, {"job_id": first["id"]})
    await box.job_status(reprint["job"]["id"], "completed")
    await box.minutes(8)
    # A bill sent to a paused printer, then cancelled.
    await box.configure("Receipt-1", paused=True)
    waiting = await box.submit({"printer_id": box.ids["Receipt-1"]}, ["Bill table 9"])
    await ops.call(OpsEvent.JOB_CANCEL, {"job_id": waiting["id"], "reason": "wrong table"})
    await box.configure("Receipt-1", paused=False)
    await box.minutes(5)
    # A drink order that waited on a paused bar printer longer than it may.
    await box.configure("Bar", paused=True)
    stale = await box.submit(bar, ["1x Espresso"], expires_in=120)
    await box.minutes(3)
    await box.job_status(stale["id"], "expired")
    await box.configure("Bar", paused=False)
    await box.minutes(4)
    done = await box.submit(bar, ["2x Iced tea"])
    await box.job_status(done["id"], "completed")
    await box.minutes(8)
    # The bar printer runs low on paper.
    await box.printer("Bar").set_state("paper_low")
    await box.printer_status("Bar", "paper_low")
    for items in (["1x Salad"], ["3x Burger", "2x Fries"]):
        job = await box.submit(kitchen, items)
        await box.job_status(job["id"], "completed")
        await box.minutes(3)
    await box.minutes(9)
    # Five minutes before the end: the dashboard connects.
    connect = await ops.load()
    seen = len(ops.events)
    await box.minutes(2)
    # A bill printing on Receipt-2 when it loses power.
    box.printer("Receipt-2").print_delay = 5.0
    lost = await box.submit({"printer_id": box.ids["Receipt-2"]}, ["Bill table 7"])
    await box.job_status(lost["id"], "printing")
    await box.printer("Receipt-2").set_state("offline")
    await box.job_status(lost["id"], "failed")
    await box.printer_status("Receipt-2", "offline")
    await box.minutes(1)
    # The front box restarts (an update, say).
    await box.agents["front-box"].stop()
    await asyncio.sleep(0.5)
    await box.start_agent("front-box")
    box.clock.advance(40)
    # Kitchen-1 runs out of paper: station tickets move to Kitchen-2; tickets sent to
    # Kitchen-1 itself wait in its agent's spool.
    await box.printer("Kitchen-1").set_state("paper_out")
    await box.printer_status("Kitchen-1", "paper_out")
    box.clock.advance(6)
    moved = await box.submit(kitchen, ["1x Burger", "1x Salad"])
    await box.job_status(moved["id"], "completed")
    for items in (["2x Fries"], ["1x Soup of the day"], ["4x Burger"], ["1x Steak"]):
        box.clock.advance(13)
        await box.submit({"printer_id": box.ids["Kitchen-1"]}, items)
    box.clock.advance(8)
    alerts = await ops.call(OpsEvent.ALERTS_LIST, {"state": "open"})
    failover = next(a for a in alerts["alerts"] if a["kind"] == "failover")
    await ops.call(OpsEvent.ALERT_ACK, {"alert_id": failover["id"]})
    # A long ticket printing on Kitchen-2, and a test page on Receipt-1.
    box.printer("Kitchen-2").print_delay = 120.0
    box.clock.advance(5)
    long = await box.submit(kitchen, ["1x Party platter", "12x Mini burger"])
    await box.job_status(long["id"], "printing")
    await ops.call(OpsEvent.PRINTER_TEST, {"printer_id": box.ids["Receipt-1"]})
    await eventually(lambda: ops.count(HubEvent.PRINTER_TEST_COMPLETED), "the test page")
    # Heartbeats that change nothing arrive as printers:seen (every 10 s).
    before = ops.count(HubEvent.PRINTERS_SEEN)
    await eventually(lambda: ops.count(HubEvent.PRINTERS_SEEN) > before, "printers:seen", 15)
    await asyncio.sleep(0.3)
    end = await ops.load_all()
    return {"connect": connect, "events": [list(e) for e in ops.events[seen:]], "end": end}


async def record_branch(root: Path, clock: ScriptedClock) -> tuple[Record, Normalizer]:
    box = await BranchBox(root, clock, "Downtown", DOWNTOWN).start()
    try:
        played = await branch_hour(box)
        addresses, names = box.normalized_names(9101)
        end = clock.time()
    finally:
        await box.close()
    return played, Normalizer(end, addresses, {**names, platform.node(): "box-downtown"})


# -- the company's hour ----------------------------------------------------------------------

COMPANY_DOWNTOWN = (
    ("Kitchen-1", "kitchen", "TM-T20III", "downtown-box", 0.6),
    ("Bar", "bar", "TM-T20III", "downtown-box", 0.4),
    ("Receipt-1", "receipt", "TM-T88V", "downtown-box", 0.3),
)
COMPANY_HARBOUR = (
    ("Grill", "kitchen", "TM-T20III", "harbour-box", 0.6),
    ("Harbour-Bar", "bar", "TM-T20III", "harbour-box", 0.4),
)


async def company_hour(
    company: RunningHub, downtown: BranchBox, harbour: BranchBox
) -> dict[str, Any]:
    """Two branch hubs syncing to a company hub; Harbour's box goes offline 25 minutes
    before the end; the dashboard, on the company hub, connects half an hour before it."""
    assert company.hub.tokens is not None
    ops = await OpsTap(company.url, company.hub.tokens.create(role="admin", sub="it-admin")).start()
    try:
        await eventually(
            lambda: _branches_connected(ops, 2), "both branch hubs connected", timeout=20
        )
        kitchen = {"station": "kitchen"}
        await downtown.minutes(1)
        for box, items in ((downtown, ["2x Burger"]), (harbour, ["1x Fish"]), (downtown, ["Tea"])):
            job = await box.submit(kitchen, items)
            await box.job_status(job["id"], "completed")
            await box.minutes(4)
        await harbour.printer("Harbour-Bar").set_state("cover_open")
        await harbour.printer_status("Harbour-Bar", "cover_open")
        await downtown.minutes(17)
        await _synced(ops, downtown, harbour)
        connect = await ops.load()
        seen = len(ops.events)
        await downtown.minutes(3)
        # Harbour's box loses its link to the company hub (it keeps printing).
        await harbour.stop()
        await eventually(lambda: _branch_offline(ops, harbour.name), "Harbour offline")
        await downtown.minutes(12)
        job = await downtown.submit(kitchen, ["3x Burger", "1x Salad"])
        await downtown.job_status(job["id"], "completed")
        await downtown.minutes(12)
        await downtown.printer("Kitchen-1").set_state("paper_out")
        await downtown.printer_status("Kitchen-1", "paper_out")
        downtown.clock.advance(20)
        await downtown.submit({"printer_id": downtown.ids["Kitchen-1"]}, ["2x Fries"])
        downtown.clock.advance(30)
        await _synced(ops, downtown)
        end = await ops.load_all()
        return {"connect": connect, "events": [list(e) for e in ops.events[seen:]], "end": end}
    finally:
        await ops.close()


async def _branches_connected(ops: OpsTap, count: int) -> bool:
    rows = (await ops.call(OpsEvent.BRANCHES_LIST))["branches"]
    return sum(1 for row in rows if row["link"]["state"] == "connected") >= count


async def _branch_offline(ops: OpsTap, name: str) -> bool:
    rows = (await ops.call(OpsEvent.BRANCHES_LIST))["branches"]
    return any(row["name"] == name and row["link"]["state"] == "offline" for row in rows)


async def _synced(ops: OpsTap, *boxes: BranchBox) -> None:
    """Wait until the company hub has what the branches have (and the links settled)."""
    await asyncio.sleep(1.5)
    for box in boxes:
        want = len((await box.operator.call(OpsEvent.JOBS_LIST, {"limit": 1000}))["jobs"])

        async def caught_up(box: BranchBox = box, want: int = want) -> bool:
            rows = (await ops.call(OpsEvent.BRANCHES_LIST))["branches"]
            row = next(r for r in rows if r["name"] == box.name)
            jobs = await ops.call(OpsEvent.JOBS_LIST, {"limit": 1000})
            mine = [j for j in jobs["jobs"] if j["branch_id"] == row["id"]]
            return len(mine) >= want and row["link"]["state"] == "connected"

        await eventually(caught_up, f"{box.name} synced", timeout=20)


async def record_company(root: Path, clock: ScriptedClock) -> tuple[Record, Normalizer]:
    company = await start_hub(hub_settings(root / "company", company_mode=True))
    assert company.hub.tokens is not None
    boxes = []
    try:
        for branch_id, name, printers in (
            (1, "Downtown", COMPANY_DOWNTOWN),
            (2, "Harbour", COMPANY_HARBOUR),
        ):
            token = company.hub.tokens.create(
                role="branch", branch_ids=[branch_id], sub=f"branch-{branch_id}"
            )
            box = BranchBox(
                root,
                clock,
                name,
                printers,
                upstream_url=company.url,
                upstream_token=token,
                upstream_heartbeat_s=0.5,
                upstream_retry_max_s=0.5,
            )
            boxes.append(await box.start())
        downtown, harbour = boxes
        addresses, names = downtown.normalized_names(9101)
        more_addresses, more_names = harbour.normalized_names(9201)
        played = await company_hour(company, downtown, harbour)
        end = clock.time()
    finally:
        for box in boxes:
            await box.close()
        await company.stop()
    names = {**names, **more_names, platform.node(): "box-downtown"}
    return played, Normalizer(end, {**addresses, **more_addresses}, names)


# -- normalizing -------------------------------------------------------------------------


class Normalizer:
    """Fixed times, ports and names, so a replay is stable."""

    def __init__(self, end: float, addresses: dict[str, str], names: dict[str, str]) -> None:
        #: Whole seconds, so that the hub's minute buckets stay whole numbers.
        self.shift = float(round(SAMPLE_NOW - end))
        #: Printer addresses, wherever they appear (messages name them too).
        self.addresses = addresses
        self.pattern = re.compile("|".join(re.escape(k) for k in addresses))
        #: Device ids and host names: whole values only.
        self.names = names
        self.window = (end - 3 * 86400, time.time() + 86400)

    def __call__(self, value: Any, key: str = "", path: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self(v, k, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self(v, key, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str):
            value = self.names.get(value, value)
            value = self.pattern.sub(lambda m: self.addresses[m.group(0)], value)
            return re.sub(r"^(job|test)_(\d{13})_", self._shift_id, value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if key in TIME_KEYS:
            shifted = value + self.shift
            return int(shifted) if isinstance(value, int) else round(shifted, 3)
        if isinstance(value, float) and self.window[0] < value < self.window[1]:
            raise ValueError(f"{path} looks like a time the normalizer does not know: {value}")
        return value

    def _shift_id(self, match: re.Match[str]) -> str:
        return f"{match.group(1)}_{int(match.group(2)) + int(self.shift * 1000)}_"


async def record(which: str, root: Path) -> Record:
    clock = ScriptedClock(behind=62 * 60)
    clock.install()
    play = record_company if which == "company" else record_branch
    played, normalize = await play(root, clock)
    return {"about": "recorded by python -m tests.support.record_sample", **normalize(played)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.record_sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("which", nargs="*", help="branch, company (default: both)")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.INFO)  # the hubs' rings keep INFO lines (Logs tab)
    unknown = set(args.which) - {"branch", "company"}
    if unknown:
        parser.error(f"no such recording: {', '.join(sorted(unknown))}")
    for which in args.which or ["branch", "company"]:
        out = COMPANY_RECORDING if which == "company" else BRANCH_RECORDING
        with tempfile.TemporaryDirectory(prefix="pm-sample-") as tmp:
            recording = asyncio.run(record(which, Path(tmp)))
        out.write_text(json.dumps(recording, indent=1) + "\n")
        print(f"{out}: {len(recording['events'])} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
