"""Who gets in, and how often: the limits that keep one address or one tenant from
taking the hub down for everyone else.

- **Connections per address**: Engine.IO connections (any namespace, logged in or
  not) open at once from one IP address, ``max_connections_per_address``.
- **Failed logins per address**: after ``login_failures_allowed`` refused tokens,
  license keys or branch tokens from one address within a minute, that address is
  refused outright (``rate_limited``) for a second, doubling with each further
  failure up to a minute; a success clears it. Operators, agents and branch hubs
  are counted apart, so a dashboard with a stale token on the branch box does not
  lock out the agent beside it.
- **Dashboards per company**: operators connected at once for one company,
  ``max_operators_per_company``.

The request rate limit (``pm_hub.rate_limit``) counts per token session, so more
sockets with one token do not get around it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from pm_hub.rate_limit import RateLimiter

log = logging.getLogger(__name__)

#: A window in which failed logins are counted.
FAILURE_WINDOW_S = 60.0
#: Longest an address waits after failed logins.
MAX_BACKOFF_S = 60.0
#: Most addresses remembered at once (the oldest are forgotten first).
MAX_ADDRESSES = 100_000


def remote_address(environ: dict[str, Any] | None) -> str:
    """The client's IP address of a Socket.IO connection (python-engineio's aiohttp
    driver leaves ``REMOTE_ADDR`` at 127.0.0.1; the aiohttp request knows)."""
    request = (environ or {}).get("aiohttp.request")
    address = getattr(request, "remote", None)
    return str(address) if address else "unknown"


class ConnectionCounter:
    """Open connections per address."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_address: Counter[str] = Counter()
        self._address_of: dict[str, str] = {}

    def opened(self, connection: str, address: str) -> bool:
        """Count a new connection; False (and nothing counted) when the address already
        has ``limit`` open (0: no limit)."""
        if self.limit and self._by_address[address] >= self.limit:
            return False
        self._by_address[address] += 1
        self._address_of[connection] = address
        return True

    def closed(self, connection: str) -> None:
        address = self._address_of.pop(connection, None)
        if address is None:
            return
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def open_from(self, address: str) -> int:
        return self._by_address.get(address, 0)


class LoginThrottle:
    """Failed logins per address, with a growing wait once there were too many."""

    def __init__(self, allowed: int, *, clock: Any = time.monotonic) -> None:
        self.allowed = allowed
        self._clock = clock
        #: address -> (failures in the window, window start, blocked until)
        self._state: dict[str, tuple[int, float, float]] = {}

    def wait_for(self, address: str) -> float:
        """Seconds this address must wait before trying again (0: it may try now)."""
        entry = self._state.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry[2] - self._clock())

    def failed(self, address: str) -> None:
        if self.allowed <= 0:
            return
        now = self._clock()
        failures, start, blocked = self._state.get(address, (0, now, 0.0))
        if now - start > FAILURE_WINDOW_S and now >= blocked:
            failures, start = 0, now
        failures += 1
        if failures > self.allowed:
            wait = min(MAX_BACKOFF_S, 2.0 ** (failures - self.allowed - 1))
            blocked = now + wait
            log.warning("%d failed logins from %s; refusing it for %.0f s", failures, address, wait)
        if len(self._state) >= MAX_ADDRESSES and address not in self._state:
            self._state.pop(next(iter(self._state)))
        self._state[address] = (failures, start, blocked)

    def succeeded(self, address: str) -> None:
        self._state.pop(address, None)


class Admission:
    """The limits of one hub, in one place (``pm_hub.wiring`` builds it from the
    settings; the namespaces, the HTTP API and the Socket.IO server ask it)."""

    def __init__(
        self,
        *,
        connections_per_address: int,
        login_failures_allowed: int,
        operators_per_company: int,
        requests: RateLimiter,
    ) -> None:
        self.connections = ConnectionCounter(connections_per_address)
        self.logins = LoginThrottle(login_failures_allowed)
        self.requests = requests
        self.operators_per_company = operators_per_company
        self._operators: Counter[int] = Counter()

    def login_wait(self, address: str) -> str | None:
        """Why this address (``kind:ip``) may not try to log in now (None: it may)."""
        wait = self.logins.wait_for(address)
        if wait <= 0:
            return None
        where = address.partition(":")[2] or address  # "operator:10.0.0.9" -> 10.0.0.9
        return f"too many failed logins from {where}; try again in {wait:.0f} s"

    def operator_joined(self, company_id: int) -> str | None:
        """Count an operator of ``company_id``; why it may not join (None: it may)."""
        limit = self.operators_per_company
        if limit and self._operators[company_id] >= limit:
            return f"{limit} dashboards of this company are connected already"
        self._operators[company_id] += 1
        return None

    def operator_left(self, company_id: int) -> None:
        self._operators[company_id] -= 1
        if self._operators[company_id] <= 0:
            del self._operators[company_id]

    def request_allowed(self, session: str) -> bool:
        """One more request of this token session (all its sockets and HTTP calls)."""
        return self.requests.allow(session)
