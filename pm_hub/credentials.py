"""The running hub's credentials: the token issuer (its secret loaded from the data dir
at start) and new license keys for this hub's tenant."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pm_core.database import Database
from pm_hub import auth
from pm_hub.live_state import LiveState
from pm_hub.store import tenants

log = logging.getLogger(__name__)


class Credentials:
    def __init__(self, data_dir: Path, *, db: Database, state: LiveState) -> None:
        self.data_dir = data_dir
        self.db = db
        self.state = state
        #: Signs and checks operator and branch tokens (None until :meth:`start`).
        self.tokens: auth.TokenIssuer | None = None

    async def start(self) -> None:
        secret = await asyncio.to_thread(auth.load_or_create_secret, self.data_dir)
        self.tokens = auth.TokenIssuer(secret)

    def verify(self, token: Any) -> auth.Principal:
        """The principal a token names; :class:`~pm_hub.auth.AuthError` if it names none."""
        assert self.tokens is not None
        return self.tokens.verify(token)

    async def create_license(
        self, *, branch_id: int | None = None, label: str | None = None
    ) -> str:
        """A new agent license key for a branch of this hub's company (shown once)."""
        key = auth.new_license_key()
        branch = branch_id or self.state.branch_id
        company_id = self.state.company_id
        await self.db.write(
            lambda d: tenants.insert_license(
                d,
                key_hash=auth.hash_license_key(key),
                key_prefix=auth.license_prefix(key),
                company_id=company_id,
                branch_id=branch,
                label=label,
            )
        )
        return key
