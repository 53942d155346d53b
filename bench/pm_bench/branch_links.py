"""Light branch links for ``pm bench company``: each speaks ``/branch`` as a branch hub
does (hello, a snapshot of its printers, then its outbox in acknowledged batches)
without a hub, agent or printer behind it.

Like a branch hub's outbox, a link sends what piled up since its last batch as soon
as that batch is acknowledged: at a low rate one change per batch, under load larger
batches. Every change is a printer's status report carrying its sequence number as a
``bench_seq_<n>`` flag, which the operators (``pm_bench.fanout.StatusListeners``)
note on arrival; ``sends`` says when each was handed to the socket and when the
company hub acknowledged it.

With ``statuses`` (the dashboard scenario) each change also moves the printer to
another status, stamped with ``status_changed_at`` (wall clock) as a branch hub
stamps it, and the printers change in a shuffled order, so the rows that move are
spread over a dashboard's table.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

from pm_bench.wire import SioClient, close_all, connect_all, new_session

ID_SPAN = 1_000_000_000  # pm_hub.global_ids: a branch's printer 7 is branch * ID_SPAN + 7
#: The statuses a printer goes through with ``statuses`` (each change picks the next).
STATUS_CYCLE = ("online", "paper_low", "online", "paper_out", "cover_open", "offline", "error")


def printer_record(
    local_id: int, seq: int, *, statuses: bool = False, changed_at: float | None = None
) -> dict[str, Any]:
    # ``id`` first and ``flags`` before any other object: the listeners find
    # (id, sequence) in a batch without decoding it (pm_bench.fanout.BATCH_ENTRY).
    record: dict[str, Any] = {
        "id": local_id,
        "name": f"Kitchen {local_id}",
        "status": STATUS_CYCLE[seq % len(STATUS_CYCLE)] if statuses else "online",
        "flags": {f"bench_seq_{seq}": True},
        "connection": "network",
        "address": f"10.0.0.{local_id}:9100",
        "station": "kitchen",
        "model": "TM-T88VI",
    }
    if changed_at is not None:
        record["status_changed_at"] = changed_at
    return record


class Link:
    def __init__(self, client: SioClient, branch_id: int, printers: int) -> None:
        self.client = client
        self.branch_id = branch_id
        self.printers = printers
        self.seq = 0  # the outbox's sequence numbers
        self.status_seq = dict.fromkeys(range(1, printers + 1), 0)
        #: Changes made but not sent yet: (gid, status seq, made at, wall clock then).
        self.waiting: list[tuple[int, int, float, float]] = []
        self.in_flight = False


class BranchLinks:
    def __init__(
        self,
        *,
        urls: list[str],
        tokens: dict[str, str],
        printers: int,
        tag: str = "bench",
        statuses: bool = False,
    ) -> None:
        self.session = new_session()
        self.links = [
            Link(
                SioClient(self.session, urls[n % len(urls)], "/branch", {"token": token}),
                int(branch),
                printers,
            )
            for n, (branch, token) in enumerate(sorted(tokens.items(), key=lambda kv: int(kv[0])))
        ]
        self.tag = tag
        self.statuses = statuses
        #: [gid, status seq, made at, acked at | None, ok]
        self.sends: list[list[Any]] = []
        self.errors: list[str] = []

    async def cmd_connect(self, concurrency: int = 32, timeout: float = 300.0) -> dict[str, Any]:
        """Connect, say hello and send each branch's snapshot."""
        t0 = time.monotonic()
        connected, errors = await connect_all(
            [link.client for link in self.links], concurrency=concurrency
        )
        if errors:
            raise RuntimeError(f"{len(errors)} branch links could not connect: {errors[:3]}")
        gate = asyncio.Semaphore(concurrency)

        async def hello(link: Link) -> None:
            async with gate:
                ack = await link.client.call(
                    "branch:hello",
                    {
                        "stream_id": f"{self.tag}-{link.branch_id}",
                        "name": f"Branch {link.branch_id}",
                    },
                    timeout=60,
                )
                if not isinstance(ack, dict) or not ack.get("ok"):
                    raise RuntimeError(f"branch {link.branch_id}: hello refused: {ack!r}")
                link.seq = int(ack.get("last_seq") or 0)
                records = [printer_record(i, 0) for i in range(1, link.printers + 1)]
                ack = await link.client.call(
                    "branch:snapshot",
                    {"seq": link.seq, "kind": "printer", "records": records, "last": True},
                    timeout=60,
                )
                if not isinstance(ack, dict) or not ack.get("ok"):
                    raise RuntimeError(f"branch {link.branch_id}: snapshot refused: {ack!r}")

        await asyncio.wait_for(asyncio.gather(*(hello(link) for link in self.links)), timeout)
        return {
            "links": connected,
            "printers": sum(link.printers for link in self.links),
            "seconds": round(time.monotonic() - t0, 2),
        }

    async def cmd_sync_phase(
        self, t_start: float, duration: float, rate: float, max_changes: int
    ) -> dict[str, Any]:
        """``rate`` status changes a second over every printer of every link, from
        ``t_start`` (monotonic) for ``duration`` seconds; returns each change's times."""
        self.sends = []
        stop = t_start + duration
        interval = 1.0 / rate
        order = (
            [(link, p) for p in range(1, self.links[0].printers + 1) for link in self.links]
            if self.links
            else []
        )
        if self.statuses:
            random.Random(7).shuffle(order)
        printers = itertools.cycle(order)
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        made = 0
        next_at = t_start
        while made < max_changes:
            now = time.monotonic()
            if now >= stop:
                break
            if now < next_at:
                await asyncio.sleep(min(next_at - now, 0.005))
                continue
            due = min(int((now - next_at) / interval) + 1, max_changes - made)
            touched: set[Link] = set()
            for _ in range(due):
                link, local = next(printers)
                link.status_seq[local] += 1
                link.waiting.append(
                    (
                        link.branch_id * ID_SPAN + local,
                        link.status_seq[local],
                        time.monotonic(),
                        time.time(),
                    )
                )
                touched.add(link)
            made += due
            next_at += due * interval
            for link in touched:
                if not link.in_flight:
                    await self._send(link)
        deadline = time.monotonic() + 60
        while any(link.waiting or link.in_flight for link in self.links):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        return {"sends": self.sends, "errors": self.errors[:5], "error_count": len(self.errors)}

    async def _send(self, link: Link) -> None:
        batch, link.waiting = link.waiting[:200], link.waiting[200:]
        if not batch:
            return
        entries = []
        rows = []
        for gid, status_seq, made_at, wall in batch:
            link.seq += 1
            local = gid - link.branch_id * ID_SPAN
            entries.append(
                {
                    "seq": link.seq,
                    "kind": "printer",
                    "id": local,
                    "record": printer_record(
                        local,
                        status_seq,
                        statuses=self.statuses,
                        changed_at=wall if self.statuses else None,
                    ),
                }
            )
            row = [gid, status_seq, made_at, None, False]
            rows.append(row)
            self.sends.append(row)
        link.in_flight = True

        def on_ack(ack: Any) -> None:
            link.in_flight = False
            ok = isinstance(ack, dict) and bool(ack.get("ok"))
            now = time.monotonic()
            for row in rows:
                row[3], row[4] = now, ok
            if not ok:
                self.errors.append(repr(ack)[:300])
            if link.waiting:
                asyncio.get_running_loop().create_task(self._send(link))

        try:
            await link.client.emit_with_ack(
                "branch:changes",
                {"entries": entries, "remaining": len(link.waiting), "oldest_age_s": 0},
                on_ack,
            )
        except Exception as exc:
            link.in_flight = False
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    async def cmd_disconnect(self) -> dict[str, Any]:
        await close_all([link.client for link in self.links])
        return {"connected": sum(link.client.connected for link in self.links)}

    async def close(self) -> None:
        await close_all([link.client for link in self.links])
        await self.session.close()
