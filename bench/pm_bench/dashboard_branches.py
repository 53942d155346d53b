"""The company side of ``pm bench dashboard --branches B``: a company hub fed by B
light branch links (:class:`pm_bench.branch_links.BranchLinks`) in a process of
their own, as the stand-in agent is for a branch hub.

``python -m pm_bench.dashboard_probe --links ...`` runs :func:`branch_links`: the
links connect, say hello and send their printers, print one JSON line, wait for a
line on stdin, then make RATE status changes a second spread over every printer of
every branch for DURATION seconds, each stamped with the wall clock at the branch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

#: Links opened at once while connecting.
CONNECT_CONCURRENCY = 16


def branch_tokens(data_dir: Path, branches: int) -> dict[str, str]:
    """A ``branch`` token for each of branches 1..``branches``, signed with the
    company hub's secret (the hub must have started once in ``data_dir``)."""
    from pm_hub.auth import TokenIssuer, load_or_create_secret

    issuer = TokenIssuer(load_or_create_secret(data_dir))
    return {
        str(b): issuer.create(
            role="branch", branch_ids=[b], sub=f"bench-branch-{b}", ttl_seconds=7200
        )
        for b in range(1, branches + 1)
    }


def admin_token(data_dir: Path) -> str:
    from pm_hub.auth import TokenIssuer, load_or_create_secret

    issuer = TokenIssuer(load_or_create_secret(data_dir))
    return issuer.create(role="admin", sub="bench-dashboard", ttl_seconds=7200)


async def branch_links(
    url: str, tokens: dict[str, str], per_branch: int, rate: float, duration: float
) -> dict[str, Any]:
    """Link every branch of ``tokens`` (branch id -> its token), wait for a line on
    stdin, then change statuses; returns what was sent and acknowledged."""
    import asyncio

    from pm_bench.branch_links import BranchLinks

    links = BranchLinks(
        urls=[url], tokens=tokens, printers=per_branch, tag="dashboard", statuses=True
    )
    try:
        linked = await links.cmd_connect(concurrency=CONNECT_CONCURRENCY)
        print(json.dumps({"registered": linked["printers"]}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        started = time.monotonic()
        phase = await links.cmd_sync_phase(
            t_start=started, duration=duration, rate=rate, max_changes=10_000_000
        )
        sends = phase["sends"]
        return {
            "sent": len(sends),
            "acked": sum(1 for s in sends if s[4]),
            "errors": phase["errors"],
            "seconds": round(time.monotonic() - started, 2),
        }
    finally:
        await links.close()
