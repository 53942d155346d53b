"""Make-believe kitchen traffic for ``pm demo``: tickets every few seconds and, now
and then, a simulated printer that runs low on paper, so the dashboard has
something to show. Only ever used with simulated printers."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from pm_hub.auth import Principal
from pm_hub.hub import Hub

log = logging.getLogger(__name__)

DISHES = ("Burger", "Fries", "Caesar salad", "Margherita", "Lemonade", "Espresso", "Tiramisu")


def ticket(number: int) -> dict[str, Any]:
    items = random.sample(DISHES, k=random.randint(1, 3))
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": f"TABLE {random.randint(1, 30)}", "bold": True, "align": "center"},
        {"type": "text", "text": f"order #{number}", "align": "center"},
        {"type": "line"},
    ]
    blocks += [{"type": "text", "text": f"{random.randint(1, 3)}x {item}"} for item in items]
    blocks.append({"type": "cut"})
    return {"blocks": blocks}


async def run_demo_traffic(hub: Hub, fleet: Any, *, interval: float = 4.0) -> None:
    principal = Principal(
        sub="demo-traffic", role="operator", company_id=hub.company_id, branch_ids=(hub.branch_id,)
    )
    operations = hub.operations
    number = 100
    tick = 0
    while True:
        await asyncio.sleep(interval)
        tick += 1
        printers = [p for p in hub.printers.values() if p["station"]]
        if printers:
            number += 1
            target = random.choice(printers)
            try:
                await operations.submit_job(
                    principal, {"station": target["station"], "document": ticket(number)}
                )
            except Exception:
                log.exception("demo ticket failed")
        if fleet is not None and fleet.printers and tick % 20 == 0:
            printer = random.choice(fleet.printers)
            await printer.set_state("paper_low")
            await asyncio.sleep(interval * 4)
            await printer.set_state("online")
