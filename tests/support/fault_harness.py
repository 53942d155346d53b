"""Processes and faults for the crash tests: a hub and an agent in their own
processes (so they can be killed with SIGKILL), a TCP proxy that can cut the
agent's link, and a load of kitchen tickets whose fate is checked at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import FINAL_JOB_STATUSES, Namespace
from pm_hub import auth
from pm_hub.credential_admin import create_license_offline
from tests.support.helpers import free_port

PM = [sys.executable, "-m", "pm"]


class Proc:
    """A ``pm`` subcommand in its own process group, logging to a file."""

    def __init__(
        self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = args
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PM_LOG_LEVEL="INFO", **self.env)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*PM, *self.args], stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


async def wait_healthy(url: str, timeout: float = 20) -> dict[str, Any]:
    import json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            )
            return dict(json.loads(body))
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"hub at {url} did not come up")


class LinkProxy:
    """A TCP proxy on 127.0.0.1 that can cut every connection through it."""

    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.port = 0
        #: Seconds each chunk waits before it is passed on (both directions).
        self.delay = delay
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Close the listener and every open connection (the peers see a dropped link)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()
        if server is not None:
            # Connections are gone first: a loop whose wait_closed waits for them (newer
            # asyncio, uvloop) must not wait for ever; and never longer than a few seconds.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def restore(self) -> None:
        await self.start(self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._pipes -= {writer, up_writer}


@dataclass
class Ledger:
    """Every ticket the load tried to print and what the hub said about it."""

    accepted: dict[str, int] = field(default_factory=dict)  # marker -> job id
    printer_of: dict[str, int] = field(default_factory=dict)  # marker -> printer id
    refused: int = 0


class BranchUnderTest:
    """Hub and agent processes, simulated printers in this process."""

    def __init__(self, tmp: Path, fleet: SimulatorFleet, *, via_proxy: bool = False) -> None:
        self.tmp = tmp
        self.fleet = fleet
        self.hub_port = free_port()
        self.hub_dir = tmp / "hub"
        self.hub_dir.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{self.hub_port}"
        self.proxy = LinkProxy(self.hub_port) if via_proxy else None
        self.hub = Proc(
            "hub",
            ["hub", "--data-dir", str(self.hub_dir), "--port", str(self.hub_port)],
            tmp / "hub.log",
        )
        self.token = auth.TokenIssuer(auth.load_or_create_secret(self.hub_dir)).create(
            role="admin", sub="fault-test"
        )
        self.agent: Proc | None = None

    async def start(self) -> None:
        self.hub.start()
        await wait_healthy(self.url)
        agent_url = self.url
        if self.proxy is not None:
            await self.proxy.start()
            agent_url = f"http://127.0.0.1:{self.proxy.port}"
        key = await asyncio.to_thread(create_license_offline, self.hub_dir)
        printers = [f"{p.name}=tcp://127.0.0.1:{p.port}" for p in self.fleet.printers]
        args = [
            "agent",
            "--hub",
            agent_url,
            "--license",
            key,
            "--data-dir",
            str(self.tmp / "agent"),
            "--poll-interval",
            "0.3",
        ]
        for spec in printers:
            args += ["--printer", spec]
        self.agent = Proc("agent", args, self.tmp / "agent.log")
        self.agent.start()
        await self.wait_printers()

    async def wait_printers(self, timeout: float = 30) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        count = len(self.fleet.printers)
        while time.monotonic() < deadline:
            printers = await self.http("/api/v1/printers")
            if printers is not None:
                ready = {
                    p["name"]: p["id"]
                    for p in printers["printers"]
                    if p["agent_connected"] and p["status"] == "online"
                }
                if len(ready) == count:
                    return ready
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"printers not ready\nhub:\n{self.hub.tail()}\nagent:\n"
            f"{self.agent.tail() if self.agent else ''}"
        )

    async def http(self, path: str) -> Any:
        import json

        def get() -> Any:
            req = urllib.request.Request(
                self.url + path, headers={"Authorization": f"Bearer {self.token}"}
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read())

        try:
            return await asyncio.to_thread(get)
        except OSError:
            return None

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.hub.stop()


def ticket(marker: str) -> dict[str, Any]:
    return {"blocks": [{"type": "text", "text": f"ticket {marker}"}, {"type": "cut"}]}


async def submit_load(
    branch: BranchUnderTest, printer_ids: list[int], count: int, *, rate: float = 150
) -> Ledger:
    """Submit ``count`` tickets round-robin; a submit that gets no answer (hub down)
    is retried with the same idempotency key until the hub accepts it."""
    ledger = Ledger()
    client = socketio.AsyncClient(
        reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1
    )
    await client.connect(
        branch.url,
        namespaces=[Namespace.OPS],
        auth={"token": branch.token},
        transports=["websocket"],
    )
    try:
        for n in range(count):
            marker = f"T{n:04d}"
            printer_id = printer_ids[n % len(printer_ids)]
            payload = {
                "printer_id": printer_id,
                "document": ticket(marker),
                "idempotency_key": marker,
                "expires_in": 600,
            }
            started = time.monotonic()
            while True:
                try:
                    ack = await client.call(
                        "job:submit", payload, namespace=Namespace.OPS, timeout=2
                    )
                except Exception:
                    ack = None
                if isinstance(ack, dict) and ack.get("ok"):
                    ledger.accepted[marker] = ack["job"]["id"]
                    ledger.printer_of[marker] = printer_id
                    break
                if time.monotonic() - started > 60:
                    ledger.refused += 1
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1 / rate)
    finally:
        await client.disconnect()
    return ledger


async def wait_all_final(
    branch: BranchUnderTest, ledger: Ledger, timeout: float = 60
) -> dict[int, Any]:
    deadline = time.monotonic() + timeout
    wanted = set(ledger.accepted.values())
    jobs: dict[int, Any] = {}
    while time.monotonic() < deadline:
        listed = await branch.http("/api/v1/jobs?limit=1000")
        if listed is not None:
            jobs = {j["id"]: j for j in listed["jobs"]}
            if all(jobs.get(i, {}).get("status") in FINAL_JOB_STATUSES for i in wanted):
                return jobs
        await asyncio.sleep(0.3)
    pending = Counter(jobs.get(i, {}).get("status") for i in wanted)
    raise AssertionError(
        f"jobs not all final: {pending}\nagent:\n{branch.agent.tail() if branch.agent else ''}"
    )


def check_exactly_once(
    branch: BranchUnderTest, ledger: Ledger, jobs: dict[int, Any]
) -> Counter[str]:
    """The guarantees: printed once or ended with a reason; never twice; in order."""
    printed: Counter[str] = Counter()
    order: dict[str, list[int]] = {}
    for printer in branch.fleet.printers:
        # Torn receipts (no cut: the link broke mid-send) count too: a cook who got
        # half a ticket and then the whole one again has been given it twice.
        for receipt in printer.receipts:
            for marker in re.findall(r"ticket (T\d{4})", receipt.text):
                printed[marker] += 1
                order.setdefault(printer.name, []).append(ledger.accepted.get(marker, -1))
    twice = {m: c for m, c in printed.items() if c > 1}
    assert not twice, f"printed more than once: {twice}"
    assert set(printed) <= set(ledger.accepted), "printed something never accepted"
    outcome: Counter[str] = Counter()
    for marker, job_id in ledger.accepted.items():
        job = jobs[job_id]
        outcome[job["status"]] += 1
        if job["status"] == "completed":
            assert printed[marker] == 1, f"{marker} (job {job_id}) completed but not printed"
        else:
            assert job["error"] and job["error"]["message"], f"job {job_id} ended without reason"
            if job["status"] in ("cancelled", "expired"):
                assert printed[marker] == 0, f"{marker} {job['status']} yet printed"
    for name, ids in order.items():
        assert ids == sorted(ids), f"{name} printed out of order: {ids}"
    return outcome
