"""The running hub's credentials: the token issuer (its secret loaded from the data dir
at start, the lifetimes from the settings), what has been revoked, new license keys
for this hub's tenant, and refreshed tokens for a long shift."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pm_core.database import Database
from pm_hub import auth
from pm_hub.config import HubSettings
from pm_hub.live_state import LiveState
from pm_hub.store import credentials as credential_store
from pm_hub.store import tenants

log = logging.getLogger(__name__)


class Credentials:
    def __init__(self, settings: HubSettings, *, db: Database, state: LiveState) -> None:
        self.settings = settings
        self.db = db
        self.state = state
        #: Signs and checks operator and branch tokens (None until :meth:`start`).
        self.tokens: auth.TokenIssuer | None = None
        #: Ids of revoked tokens (and sessions) not yet expired; kept current by
        #: :class:`pm_hub.credential_watch.CredentialWatch`.
        self.revoked_tokens: set[str] = set()
        #: Ids of revoked licenses.
        self.revoked_licenses: set[int] = set()

    async def start(self) -> None:
        secret = await asyncio.to_thread(auth.load_or_create_secret, self.settings.data_dir)
        self.tokens = auth.TokenIssuer(
            secret,
            max_ttl_s=self.settings.token_max_ttl_s,
            branch_max_ttl_s=self.settings.branch_token_max_ttl_s,
        )
        await self.reload_revocations()

    async def reload_revocations(self) -> tuple[set[str], set[int]]:
        """Read what ``pm token revoke`` / ``pm license revoke`` wrote; returns what is
        newly revoked (tokens, licenses) since the last read."""
        tokens = await self.db.read(credential_store.revoked_token_ids)
        licenses = await self.db.read(credential_store.revoked_license_ids)
        new = (tokens - self.revoked_tokens, licenses - self.revoked_licenses)
        self.revoked_tokens, self.revoked_licenses = tokens, licenses
        return new

    def is_revoked(self, principal: auth.Principal) -> bool:
        revoked = self.revoked_tokens
        return bool(revoked) and (principal.token_id in revoked or principal.session_id in revoked)

    def verify(self, token: Any) -> auth.Principal:
        """The principal a token names; :class:`~pm_hub.auth.AuthError` if it names none,
        is expired or was revoked."""
        assert self.tokens is not None
        principal = self.tokens.verify(token)
        if self.is_revoked(principal):
            raise auth.AuthError("token revoked")
        return principal

    async def refresh(self, principal: auth.Principal) -> auth.IssuedToken:
        """A new token for the same person and session, as long as the first one lived
        (at most the role's maximum): a dashboard open through a long shift keeps
        working. Revoking the session's first token ends every refreshed one too."""
        assert self.tokens is not None
        claims = principal.claims
        lifetime = int(claims["exp"]) - int(claims["iat"])
        issued = self.tokens.issue(
            role=principal.role,
            company_id=principal.company_id,
            branch_ids=list(principal.branch_ids) if principal.branch_ids is not None else None,
            ttl_seconds=min(lifetime, int(self.tokens.max_ttl(principal.role))),
            sub=principal.sub,
            session=principal.session_id,
        )
        await self.db.write(lambda d: credential_store.record_token(d, issued.claims))
        return issued

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


def expired(principal: auth.Principal, now: float | None = None) -> bool:
    ends = principal.expires_at
    return ends is not None and ends <= (time.time() if now is None else now)
