"""An agent restarted while the hub is down prints what is already in its spool at
once (each printer takes up the hub id it had, kept in the spool), in order and
once each, and the hub learns the results from the agent's outbox when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.printer import SimulatedPrinter
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually, receipt_doc


def tickets(sim: SimulatedPrinter) -> list[str]:
    return [m for r in sim.receipts for m in re.findall(r"ticket (\S+)", r.text)]


def make_agent(tmp_path: Path, hub_url: str, key: str, sim: SimulatedPrinter) -> Agent:
    return Agent(
        hub_url=hub_url,
        license_key=key,
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"Pass={sim.address}#kitchen")],
        poll_interval=0.2,
        spool_synchronous="NORMAL",
    )


async def test_restarted_agent_prints_its_spool_while_the_hub_is_down(tmp_path: Path) -> None:
    settings = hub_settings(tmp_path / "hub")
    running: RunningHub | None = await start_hub(settings)
    assert running is not None and running.hub.tokens is not None
    settings.port = running.port  # the hub comes back on the same address
    url = running.url
    token = running.hub.tokens.create(role="admin")
    key = await running.hub.create_license()
    async with SimulatedPrinter("Pass", serial="PASS-1") as sim:
        first = make_agent(tmp_path, url, key, sim)
        await first.start()
        second: Agent | None = None
        starting: asyncio.Task[None] | None = None
        try:
            ops = await OpsClient(running.url, token).connect()
            printer_id = await eventually(lambda: first.workers[0].printer_id, what="registered")
            await eventually(lambda: first.workers[0].identity == "serial:PASS-1")
            await sim.set_state("paper_out")
            await eventually(lambda: first.workers[0].status == "paper_out", what="paper out")
            jobs = []
            for n in range(3):
                ack = await ops.call(
                    "job:submit", {"printer_id": printer_id, "document": receipt_doc(f"R{n}")}
                )
                assert ack["ok"], ack
                jobs.append(ack["job"]["id"])

            async def all_dispatched() -> bool:
                listed = await ops.call("jobs:list", {"printer_id": printer_id})
                return all(j["status"] == "dispatched" for j in listed["jobs"])

            await eventually(all_dispatched, what="jobs in the agent's spool")
            await ops.close()
            await first.stop()
            await running.stop()
            running = None

            # Restarted with the hub still down: it keeps trying to connect meanwhile.
            second = make_agent(tmp_path, url, key, sim)
            starting = asyncio.create_task(second.start())
            await eventually(lambda: second.workers, what="agent started")
            await asyncio.sleep(0.5)
            assert tickets(sim) == []  # still out of paper
            await sim.set_state("online")
            await eventually(lambda: len(sim.receipts) >= 3, what="spooled jobs printed")
            await asyncio.sleep(0.5)  # a duplicate, if any, would be out by now
            assert tickets(sim) == ["R0", "R1", "R2"]
            assert not second.connected

            running = await start_hub(settings)
            await asyncio.wait_for(starting, 20)
            ops = await OpsClient(running.url, token).connect()

            async def all_completed() -> list[dict[str, Any]] | None:
                listed = await ops.call("jobs:list", {"printer_id": printer_id})
                done = [j for j in listed["jobs"] if j["status"] == "completed"]
                return listed["jobs"] if len(done) == len(jobs) else None

            await eventually(all_completed, timeout=20, what="hub shows the jobs completed")
            await asyncio.sleep(0.5)  # the hub redelivers on registration: not printed again
            assert tickets(sim) == ["R0", "R1", "R2"]
            await ops.close()
        finally:
            if starting is not None and not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            if second is not None:
                await second.stop()
            if running is not None:
                await running.stop()
