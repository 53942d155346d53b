"""Every number on the dashboard follows the hub's own answer within a second, whatever
changed it: tickets stuck on a printer out of paper, paper back, a cancel, a failover,
an expiry. A real hub, two real agents and simulated printers; after each change the
screen's QUEUE column, the selected printer's "N jobs waiting", the Jobs tab's count,
the header's alerts and problems and each agent's SPOOL are compared with
``printers:list``, ``alerts:list`` and ``health:summary``."""

from __future__ import annotations

import re
import time
from typing import Any

from pm_agent.sim.fleet import SimulatorFleet
from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_hub.server import RunningHub
from pm_tui.app import PrinterMasterApp
from tests.conftest import AgentFactory
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.tui_support import dashboard, select_row, text, wait_until

#: How long the screen may lag behind the hub.
WITHIN_S = 1.0


async def hub_numbers(ops: OpsClient) -> dict[str, Any]:
    printers = (await ops.call("printers:list", {}))["printers"]
    alerts = (await ops.call("alerts:list", {}))["alerts"]
    health = (await ops.call("health:summary", {}))["agents"]
    queues = {p["name"]: p["queue"] for p in printers}
    return {
        "queue": queues,
        "jobs": sum(queues.values()),
        "alerts": sum(1 for a in alerts if a["state"] == "open"),
        "problems": sum(1 for p in printers if p["status"] in PROBLEM_PRINTER_STATUSES),
        "spool": {a["name"]: a["spool_depth"] for a in health},
    }


def _count(pattern: str, line: str) -> int:
    found = re.search(pattern, line)
    return int(found.group(1)) if found else 0


def screen_numbers(app: PrinterMasterApp) -> dict[str, Any]:
    main = app.main_screen
    assert main is not None
    printers = main.query_one("#printers")
    agents = main.query_one("#agents")
    names = {pid: printers.cell_text(pid, "name") for pid in printers.row_ids}
    tabbar = text(app, "#tabbar")
    topbar = text(app, "#topbar")
    detail = text(app, "#detail")
    selected = printers.selected_id
    return {
        "queue": {names[pid]: int(printers.cell_text(pid, "queue")) for pid in names},
        "waiting": (names.get(selected), _count(r"(\d+) jobs? waiting", detail)),
        "jobs": _count(r"2 Jobs (\d+)", tabbar),
        "alerts": _count(r"(\d+) alerts?", topbar),
        "problems": _count(r"(\d+) problems?", topbar),
        "spool": {
            agents.cell_text(aid, "name"): int(agents.cell_text(aid, "spool"))
            for aid in agents.row_ids
        },
    }


async def numbers_agree(pilot: Any, app: PrinterMasterApp, ops: OpsClient, step: str) -> None:
    """Wait for the hub to settle, then for the screen to say the same: within
    ``WITHIN_S`` of the hub's last change."""
    settled = await hub_numbers(ops)
    changed_at = time.monotonic()
    while True:  # the hub may still be moving (a job printing): follow it
        await pilot.pause(0.05)
        now = await hub_numbers(ops)
        if now == settled and time.monotonic() - changed_at > 0.3:
            break
        if now != settled:
            settled, changed_at = now, time.monotonic()
    deadline = changed_at + WITHIN_S + 0.3  # + the settling wait above
    shown: dict[str, Any] = {}
    while True:
        shown = screen_numbers(app)
        hub = dict(settled)
        name = shown["waiting"][0]
        expected_waiting = (name, hub["queue"].get(name, 0))
        comparable = {k: shown[k] for k in ("queue", "jobs", "alerts", "problems", "spool")}
        if comparable == {k: hub[k] for k in comparable} and shown["waiting"] == expected_waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{step}: the screen shows {shown}, the hub says {hub}")
        await pilot.pause(0.05)


async def test_every_number_follows_the_hub(
    hub: RunningHub, admin_token: str, make_agent: AgentFactory, fleet: SimulatorFleet
) -> None:
    kitchen, bar = fleet.printers
    # Kitchen-1's agent polls slowly: the paper-out it finds when it tries to print is
    # what triggers the station's failover to Bar.
    await make_agent(
        [f"Kitchen-1=tcp://127.0.0.1:{kitchen.port}#kitchen"], name="kitchen-box",
        poll_interval=30.0,
    )  # fmt: skip
    await make_agent([f"Bar=tcp://127.0.0.1:{bar.port}#kitchen"], name="bar-box")
    ops = OpsClient(hub.url, admin_token)
    await ops.connect()
    try:
        await eventually(lambda: len(hub.hub.printers) == 2, what="both printers")
        ids = {p["name"]: p["id"] for p in hub.hub.printers.values()}
        async with dashboard(hub.url, admin_token, size=(120, 30)) as (app, pilot):
            await wait_until(pilot, lambda: len(screen_numbers(app)["queue"]) == 2)
            await wait_until(pilot, lambda: len(screen_numbers(app)["spool"]) == 2)
            await select_row(pilot, "#printers", ids["Bar"])
            await numbers_agree(pilot, app, ops, "at start")

            # Bar out of paper, two tickets stuck on it.
            await bar.set_state("paper_out")
            await eventually(lambda: hub.hub.printers[ids["Bar"]]["status"] == "paper_out")
            stuck = []
            for n in range(2):
                ack = await ops.call(
                    "job:submit", {"printer_id": ids["Bar"], "document": receipt_doc(f"S{n}")}
                )
                stuck.append(ack["job"]["id"])
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 2)
            await numbers_agree(pilot, app, ops, "paper out, 2 stuck")
            assert screen_numbers(app)["queue"]["Bar"] == 2

            # Paper back: both print, the queue empties.
            await bar.set_state("online")
            await bar.wait_for_receipts(2)
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 0)
            await numbers_agree(pilot, app, ops, "paper back")

            # A cancel.
            await bar.set_state("paper_out")
            await eventually(lambda: hub.hub.printers[ids["Bar"]]["status"] == "paper_out")
            ack = await ops.call(
                "job:submit", {"printer_id": ids["Bar"], "document": receipt_doc("C1")}
            )
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 1)
            await numbers_agree(pilot, app, ops, "one more stuck")
            cancelled = await ops.call("job:cancel", {"job_id": ack["job"]["id"]})
            assert cancelled["ok"], cancelled
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 0)
            await numbers_agree(pilot, app, ops, "cancel")

            # An expiry: a ticket that waits longer than it may.
            ack = await ops.call(
                "job:submit",
                {"printer_id": ids["Bar"], "document": receipt_doc("E1"), "expires_in": 1},
            )
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 1)
            await eventually(lambda: hub.hub.jobs.depth(ids["Bar"]) == 0, timeout=20)
            await numbers_agree(pilot, app, ops, "expiry")
            await bar.set_state("online")

            # A failover: Kitchen-1 is out of paper but its agent has not looked yet;
            # the station's tickets go there, the agent finds it out, Bar takes them.
            await eventually(lambda: hub.hub.printers[ids["Bar"]]["status"] == "online")
            await kitchen.set_state("paper_out")
            for n in range(2):
                await ops.call(
                    "job:submit", {"station": "kitchen", "document": receipt_doc(f"F{n}")}
                )
            await bar.wait_for_receipts(4, timeout=20)
            await eventually(lambda: hub.hub.jobs.depth(ids["Kitchen-1"]) == 0)
            await numbers_agree(pilot, app, ops, "failover")
            await pilot.press("q")
    finally:
        await ops.close()


async def test_plain_operators_hear_a_queue_change_without_a_status_change(
    hub: RunningHub, make_agent: AgentFactory, fleet: SimulatorFleet, ops: OpsClient
) -> None:
    """An operator that did not ask for batches gets ``printer:update`` with the new
    ``queue`` when a job comes and when it is cancelled (the status stays paper out)."""
    bar = next(p for p in fleet.printers if p.name == "Bar")
    await make_agent([f"Bar=tcp://127.0.0.1:{bar.port}"])
    await eventually(lambda: len(hub.hub.printers) == 1)
    bar_id = next(iter(hub.hub.printers))
    await bar.set_state("paper_out")
    await eventually(lambda: hub.hub.printers[bar_id]["status"] == "paper_out")

    async def queue_heard(count: int, start: int) -> dict[str, Any]:
        def heard() -> Any:
            return next(
                (d for e, d in ops.events[start:] if e == "printer:update" and d["queue"] == count),
                None,
            )

        return await eventually(heard, timeout=2, what=f"printer:update with queue {count}")

    start = len(ops.events)
    ack = await ops.call("job:submit", {"printer_id": bar_id, "document": receipt_doc("Q")})
    assert (await queue_heard(1, start))["status"] == "paper_out"
    start = len(ops.events)
    await ops.call("job:cancel", {"job_id": ack["job"]["id"]})
    assert (await queue_heard(0, start))["status"] == "paper_out"
