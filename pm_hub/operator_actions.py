"""What an operator can do: the one protocol behind ``/ops``, the HTTP API and the
requests a company hub forwards to a branch, and the few helpers both kinds of hub use.

A branch hub does it itself (``pm_hub.operations.BranchOperations``); a company hub
reads lists from its mirror and forwards actions to the branch
(``pm_hub.company.operations.CompanyOperations``). Each operation takes the caller's
:class:`~pm_hub.auth.Principal` and the request payload, checks both, and returns the
ack dict or raises :class:`~pm_core.protocol.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pm_core import __version__
from pm_core.protocol import ErrorCode, ProtocolError
from pm_hub.auth import Principal
from pm_hub.correlation import PendingRequest

#: Receives the ``printer:test:completed`` payload when a test print ends.
TestResultSink = Callable[[dict[str, Any]], Any]
Ack = dict[str, Any]


class OperatorActions(Protocol):
    async def list_printers(self, principal: Principal, payload: Any) -> Ack: ...

    async def get_printer(self, principal: Principal, payload: Any) -> Ack: ...

    async def configure_printer(self, principal: Principal, payload: Any) -> Ack: ...

    async def test_printer(
        self, principal: Principal, payload: Any, *, on_result: TestResultSink | None = None
    ) -> tuple[Ack, PendingRequest]:
        """Send a test page; the ack carries the correlation id, ``on_result`` gets
        the outcome later."""
        ...

    async def submit_job(self, principal: Principal, payload: Any) -> Ack: ...

    async def get_job(self, principal: Principal, payload: Any) -> Ack: ...

    async def list_jobs(self, principal: Principal, payload: Any) -> Ack: ...

    async def cancel_job(self, principal: Principal, payload: Any) -> Ack: ...

    async def reprint_job(self, principal: Principal, payload: Any) -> Ack: ...

    async def list_stations(self, principal: Principal, payload: Any) -> Ack: ...

    async def configure_station(self, principal: Principal, payload: Any) -> Ack: ...

    async def list_alerts(self, principal: Principal, payload: Any) -> Ack: ...

    async def ack_alert(self, principal: Principal, payload: Any) -> Ack: ...

    async def list_agents(self, principal: Principal, payload: Any) -> Ack: ...

    async def health_summary(self, principal: Principal, payload: Any) -> Ack: ...

    async def whoami(self, principal: Principal, payload: Any) -> Ack: ...

    async def list_branches(self, principal: Principal, payload: Any) -> Ack: ...


def require_actor(principal: Principal) -> None:
    """Viewers read; changing anything takes an acting role."""
    if not principal.can_act:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"role {principal.role} may not do this")


def hub_version() -> str:
    return __version__
