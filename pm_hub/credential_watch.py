"""Open connections stay honest: a token revoked with ``pm token revoke`` (or run out
while its socket is open) closes the connections that use it, and a license revoked
with ``pm license revoke`` disconnects its agent, within a second. The command line
writes to the hub's file; this reads it twice a second (two small indexed queries)."""

from __future__ import annotations

import asyncio
import logging
import time

import socketio

from pm_core.protocol import Namespace
from pm_core.sql import DatabaseUnavailable
from pm_hub.credentials import Credentials, expired
from pm_hub.live_state import LiveState

log = logging.getLogger(__name__)

#: Seconds between two looks at revocations and expiries.
INTERVAL_S = 0.5


class CredentialWatch:
    def __init__(
        self,
        *,
        credentials: Credentials,
        state: LiveState,
        sio: socketio.AsyncServer,
        interval: float = INTERVAL_S,
    ) -> None:
        self.credentials = credentials
        self.state = state
        self.sio = sio
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._unavailable = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except DatabaseUnavailable as exc:
                if not self._unavailable:  # said once per outage, not twice a second
                    log.warning("cannot read revocations: %s", exc.message)
                    self._unavailable = True
            except Exception:
                log.exception("checking revoked and expired credentials failed")
            else:
                if self._unavailable:
                    log.info("revocations are read again")
                    self._unavailable = False

    async def check(self) -> int:
        """Close what may no longer be open; returns how many connections were closed."""
        await self.credentials.reload_revocations()
        now = time.time()
        closed = 0
        for namespace, sessions in (
            (Namespace.OPS, self.state.operators),
            (Namespace.BRANCH, self.state.branch_hubs),
        ):
            for sid, principal in list(sessions.items()):
                if self.credentials.is_revoked(principal):
                    why = "was revoked"
                elif expired(principal, now):
                    why = "expired"
                else:
                    continue
                log.warning(
                    "closing %s connection of %s (%s): its token %s",
                    namespace,
                    principal.sub,
                    principal.role,
                    why,
                )
                sessions.pop(sid, None)
                await self.sio.disconnect(sid, namespace=namespace)
                closed += 1
        revoked = self.credentials.revoked_licenses
        for link in list(self.state.agents.values()):
            if link.license_id in revoked:
                log.warning("disconnecting agent %s: its license was revoked", link.agent_id)
                await self.sio.disconnect(link.sid, namespace=Namespace.AGENT)
                closed += 1
        return closed
