"""The other processes serving the same company (several ``pm hub --company-mode``
on one PostgreSQL database and one Redis): what this one tells them and hears from
them, over the Redis channel of :class:`~pm_hub.redis_rooms.RedisRoomManager`.

- ``applied``: changes a process wrote to the mirror; every process follows them
  in memory and tells its own operators (so an operator on any process sees every
  branch).
- ``link``: a branch link came (``up``), went (``down``) or reported (``state``),
  with the session id and the process that holds it; a forwarded request goes to
  that session wherever it is (python-socketio's own cross-process calls).
- ``forget``, ``reload``, ``seen``, ``result``: a branch's mirror restarted, or is
  to be read again from the database (its link moved), printers were seen, a test
  print's result reached a process other than the one that asked.
- ``alive``: every second; a process not heard for ``LOST_AFTER_S`` is gone, and
  the links it held are offline until their branches connect again elsewhere.
- ``sync``: "say which links you hold" (a process that starts, or that was thought
  gone, or that was cut from Redis and reads the mirror again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from pm_hub.company.mirror import BranchMirror, applied_from_wire

if TYPE_CHECKING:
    from pm_hub.redis_rooms import RedisRoomManager

log = logging.getLogger(__name__)

ALIVE_EVERY_S = 1.0
LOST_AFTER_S = 6.0


class CompanyPeers:
    def __init__(
        self,
        manager: RedisRoomManager,
        mirror: BranchMirror,
        *,
        alive_every: float = ALIVE_EVERY_S,
        lost_after: float = LOST_AFTER_S,
    ) -> None:
        self.manager = manager
        self.mirror = mirror
        self.alive_every = alive_every
        self.lost_after = lost_after
        #: Other processes heard lately: host id -> when (monotonic).
        self.peers: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def host_id(self) -> str:
        return str(self.manager.host_id)

    def alive(self, host: str) -> bool:
        return host == self.host_id or host in self.peers

    def describe(self) -> dict[str, Any]:
        """For ``/healthz``: this process, the others heard lately, Redis."""
        return {
            "host": self.host_id[:8],
            "others": len(self.peers),
            "redis": "ok" if self.manager.reachable else "unreachable",
            "links_held": len(self.mirror.held_links()),
        }

    async def join(self) -> None:
        """Listen to the other processes (before the mirror is read, so that nothing
        applied meanwhile is missed)."""
        mirror, manager = self.mirror, self.manager
        mirror.announce = manager.tell
        mirror.host_id = self.host_id
        mirror.host_alive = self.alive
        manager.on("applied", self._applied)
        manager.on("link", mirror.link_heard)
        manager.on("forget", self._forget)
        manager.on("reload", self._reload)
        manager.on("seen", self._seen)
        manager.on("result", self._result)
        manager.on("alive", self._alive)
        manager.on("sync", self._sync)
        manager.on_resubscribed = self.catch_up
        await manager.start()

    async def start(self) -> None:
        """After the mirror is read: ask who holds which link, and keep saying alive."""
        await self.manager.tell("alive", {})
        await self.manager.tell("sync", {})
        self._task = asyncio.create_task(self._alive_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.manager.stop()

    async def catch_up(self) -> None:
        """Redis was away: what was told meanwhile is lost; read the mirror again and
        ask the others which links they hold."""
        await self.mirror.load()
        await self.manager.tell("sync", {})

    async def _alive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.alive_every)
            try:
                await self.manager.tell("alive", {})
                now = time.monotonic()
                lost = {h for h, at in self.peers.items() if now - at > self.lost_after}
                for host in lost:
                    del self.peers[host]
                if lost:
                    log.warning("%d other hub process(es) stopped answering", len(lost))
                    await self.mirror.hosts_lost(lost)
            except Exception:
                log.exception("keeping in touch with the other hub processes failed")

    # -- what the others say ------------------------------------------------------------------

    async def _applied(self, body: dict[str, Any]) -> None:
        await self.mirror.follow(applied_from_wire(body.get("changes")))

    async def _forget(self, body: dict[str, Any]) -> None:
        if isinstance(body.get("branch_id"), int):
            self.mirror.forget_branch(body["branch_id"])

    async def _reload(self, body: dict[str, Any]) -> None:
        if isinstance(body.get("branch_id"), int):
            await self.mirror.reload_branch(body["branch_id"])

    async def _seen(self, body: dict[str, Any]) -> None:
        link = self.mirror.links.get(body.get("branch_id"))  # type: ignore[arg-type]
        seen, at = body.get("seen"), body.get("at")
        if link is None or not isinstance(seen, dict) or not isinstance(at, int | float):
            return
        times = {
            int(k): float(v)
            for k, v in seen.items()
            if isinstance(k, str) and k.isdigit() and isinstance(v, int | float)
        }
        await self.mirror.printers_seen(link, times, float(at), here=False)

    async def _result(self, body: dict[str, Any]) -> None:
        branch_id, cid, result = body.get("branch_id"), body.get("cid"), body.get("result")
        if isinstance(branch_id, int) and isinstance(cid, str) and isinstance(result, dict):
            await self.mirror.result_came(branch_id, cid, result, here=False)

    async def _alive(self, body: dict[str, Any]) -> None:
        host = body.get("host_id")
        if not isinstance(host, str):
            return
        known = host in self.peers
        self.peers[host] = time.monotonic()
        if not known:
            log.info("hub process %s is serving the company too", host[:8])
            # It may have started (and not know our links) or been thought gone (and
            # have had its links marked offline here): both sides say what they hold.
            await self._say_links()
            await self.manager.tell("sync", {"host": host})

    async def _sync(self, body: dict[str, Any]) -> None:
        if body.get("host") in (None, self.host_id):
            await self._say_links()

    async def _say_links(self) -> None:
        for link in self.mirror.held_links():
            await self.manager.tell("link", {**link.shared(), "event": "up"})
