"""The spool's housekeeping while the agent runs: jobs that waited past their expiry
end ``expired`` (every 2 s; their results go to the outbox), and finished jobs past
the retention are forgotten (at start, then every ``prune_interval``), so the spool
file does not grow without end but a redelivered job is still answered, not printed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pm_agent.spool import JobSpool

log = logging.getLogger(__name__)

#: Finished jobs are remembered this long (redeliveries are answered, not printed).
SPOOL_RETENTION_S = 7 * 86400.0
#: How often the spool forgets finished jobs older than the retention.
PRUNE_INTERVAL_S = 3600.0
#: How often waiting jobs are checked for expiry.
EXPIRY_INTERVAL_S = 2.0


class SpoolUpkeep:
    def __init__(
        self, spool: JobSpool, *, on_outbox: Callable[[], None], prune_interval: float
    ) -> None:
        self.spool = spool
        self.on_outbox = on_outbox
        self.prune_interval = prune_interval

    async def prune_loop(self) -> None:
        """Forget finished jobs past the retention: at start, then every ``prune_interval``."""
        while True:
            try:
                pruned = await self.spool.prune()
                if pruned:
                    log.info("spool: forgot %d finished jobs older than the retention", pruned)
            except Exception:
                log.exception("spool pruning failed")
            await asyncio.sleep(self.prune_interval)

    async def expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL_S)
            try:
                if await self.spool.expire_due():
                    self.on_outbox()
            except Exception:
                log.exception("spool expiry failed")
