"""A company hub and branch boxes (hub + agent + simulated printers) that sync to it,
all real, on 127.0.0.1, in the test's event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import BranchEvent, Namespace
from pm_hub.config import HubSettings
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually


def company_settings(data_dir: Path, **overrides: Any) -> HubSettings:
    return hub_settings(data_dir, company_mode=True, **overrides)


async def start_company(data_dir: Path, **overrides: Any) -> RunningHub:
    return await start_hub(company_settings(data_dir, **overrides))


def branch_token(company: RunningHub, branch_id: int, *, company_id: int = 1) -> str:
    assert company.hub.tokens is not None
    return company.hub.tokens.create(
        role="branch", branch_ids=[branch_id], company_id=company_id, sub=f"branch-{branch_id}"
    )


def operator_token(hub: RunningHub, **kw: Any) -> str:
    assert hub.hub.tokens is not None
    kw.setdefault("role", "admin")
    return hub.hub.tokens.create(**kw)


@dataclass
class BranchBox:
    """A branch hub syncing upstream, its agent and its simulated printers."""

    name: str
    settings: HubSettings
    fleet: SimulatorFleet
    hub: RunningHub | None = None
    agent: Agent | None = None
    license_key: str = ""
    data_dir: Path = field(default_factory=Path)

    @property
    def running(self) -> RunningHub:
        assert self.hub is not None
        return self.hub

    async def start(self) -> BranchBox:
        self.hub = await start_hub(self.settings)
        self.settings.port = self.hub.port  # a restart comes back on the same port
        if not self.license_key:
            self.license_key = await self.hub.hub.create_license()
        self.agent = Agent(
            hub_url=self.hub.url,
            license_key=self.license_key,
            data_dir=self.data_dir / "agent",
            printers=[
                parse_printer_spec(f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen")
                for p in self.fleet.printers
            ],
            name=f"{self.name} agent",
            poll_interval=0.2,
            spool_synchronous="NORMAL",
        )
        await self.agent.start()
        return self

    async def outbox_rows(self) -> int:
        """Entries in the branch's outbox, read from its SQLite file (hub stopped or not)."""

        def count() -> int:
            with sqlite3.connect(self.settings.db_path) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM upstream_outbox").fetchone()[0])

        return await asyncio.to_thread(count)

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    async def close(self) -> None:
        await self.stop()
        await self.fleet.stop()


async def start_branch_box(
    root: Path,
    name: str,
    *,
    company: RunningHub | None,
    token: str,
    printers: tuple[str, ...] = ("Kitchen-1", "Bar"),
    upstream_url: str | None = None,
    **overrides: Any,
) -> BranchBox:
    fleet = await SimulatorFleet.start(count=len(printers), names=list(printers), control_port=None)
    overrides.setdefault("upstream_heartbeat_s", 0.5)
    overrides.setdefault("upstream_retry_max_s", 0.5)
    settings = hub_settings(
        root / name,
        branch_name=name,
        upstream_url=upstream_url or (company.url if company is not None else None),
        upstream_token=token,
        **overrides,
    )
    box = BranchBox(name=name, settings=settings, fleet=fleet, data_dir=root / name)
    return await box.start()


async def branch_row(ops: OpsClient, branch_id: int) -> dict[str, Any] | None:
    ack = await ops.call("branches:list", {})
    assert ack["ok"], ack
    return next((b for b in ack["branches"] if b["id"] == branch_id), None)


async def wait_branch(
    ops: OpsClient, branch_id: int, check: Any = lambda row: True, timeout: float = 15
) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        row = await branch_row(ops, branch_id)
        return row if row is not None and check(row) else None

    result: dict[str, Any] = await eventually(
        ready, timeout=timeout, what=f"branch {branch_id} in branches:list"
    )
    return result


class RawBranchLink:
    """A branch hub's side of ``/branch`` spoken by hand: hello, snapshots and outbox
    batches exactly as the test writes them (no branch hub behind it)."""

    def __init__(self, url: str, token: str, branch_id: int) -> None:
        self.url = url
        self.token = token
        self.branch_id = branch_id
        self.sio = socketio.AsyncClient(reconnection=False)
        self.seq = 0
        self.requests: list[dict[str, Any]] = []
        #: What the link answers a forwarded request with (a function of the request).
        self.answer: Any = lambda request: {"ok": True}

        @self.sio.on(BranchEvent.OPS_REQUEST, namespace=Namespace.BRANCH)
        async def on_request(data: Any = None) -> Any:
            self.requests.append(data)
            return self.answer(data)

    async def connect(self, *, stream_id: str = "stream-1", name: str | None = None) -> Any:
        await self.sio.connect(
            self.url,
            namespaces=[Namespace.BRANCH],
            auth={"token": self.token},
            transports=["websocket"],
            wait_timeout=5,
        )
        hello = await self.say(
            BranchEvent.HELLO, {"stream_id": stream_id, "name": name or f"Branch {self.branch_id}"}
        )
        assert hello["ok"], hello
        self.seq = int(hello["last_seq"])
        return hello

    async def say(self, event: str, payload: Any) -> dict[str, Any]:
        answer = await self.sio.call(event, payload, namespace=Namespace.BRANCH, timeout=10)
        assert isinstance(answer, dict)
        return answer

    async def snapshot(self, kind: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        return await self.say(
            BranchEvent.SNAPSHOT, {"seq": self.seq, "kind": kind, "records": records, "last": True}
        )

    async def change(self, kind: str, *records: dict[str, Any]) -> dict[str, Any]:
        """One outbox batch: a new state of each record."""
        entries = []
        for record in records:
            self.seq += 1
            entries.append({"seq": self.seq, "kind": kind, "id": record["id"], "record": record})
        return await self.say(BranchEvent.CHANGES, {"entries": entries, "remaining": 0})

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception:
            pass


def mirrored_printer(local_id: int, **fields: Any) -> dict[str, Any]:
    """A printer record as a branch hub sends it."""
    return {
        "id": local_id,
        "name": f"Printer {local_id}",
        "status": "online",
        "station": "kitchen",
        "flags": {},
        "last_seen": None,
        "status_changed_at": None,
        **fields,
    }
