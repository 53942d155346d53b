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


#: The least role each operation takes (viewer < operator < manager < admin). Every
#: operation of :class:`OperatorActions` is here; ``/ops``, HTTP and forwarded requests
#: all go through the same checks. Submitting raw ESC/POS takes ``manager`` (see
#: :data:`RAW_DOCUMENT_ROLE`).
REQUIRED_ROLE: dict[str, str] = {
    "list_printers": "viewer",
    "get_printer": "viewer",
    "list_jobs": "viewer",
    "get_job": "viewer",
    "list_stations": "viewer",
    "list_alerts": "viewer",
    "list_agents": "viewer",
    "health_summary": "viewer",
    "whoami": "viewer",
    "list_branches": "viewer",
    "test_printer": "operator",
    "submit_job": "operator",
    "reprint_job": "operator",
    "cancel_job": "operator",
    "ack_alert": "operator",
    "configure_printer": "manager",
    "configure_station": "manager",
    "remove_printer": "manager",
    "add_printer": "manager",
    "retire_agent": "admin",
}
#: A document of raw bytes can drive the printer in any way (drawer, settings, cutter).
RAW_DOCUMENT_ROLE = "manager"

_DOING = {
    "test_printer": "print a test page",
    "submit_job": "print",
    "reprint_job": "reprint",
    "cancel_job": "cancel jobs",
    "ack_alert": "acknowledge alerts",
    "configure_printer": "configure printers",
    "configure_station": "configure stations",
    "remove_printer": "remove printers",
    "add_printer": "add printers",
    "retire_agent": "retire agents",
}


def require_role(principal: Principal, operation: str) -> None:
    """Refuse (``forbidden``) a principal whose role is below what ``operation`` takes."""
    needed = REQUIRED_ROLE[operation]
    if not principal.at_least(needed):
        doing = _DOING.get(operation, operation.replace("_", " "))
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"role {principal.role} may not {doing}; it takes {needed} or above",
        )


def require_raw_role(principal: Principal, document: Any) -> None:
    """Raw ESC/POS only from a manager or admin: it can open the drawer or change the
    printer's settings, which text blocks cannot."""
    raw = isinstance(document, dict) and "raw_base64" in document
    if raw and not principal.at_least(RAW_DOCUMENT_ROLE):
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"role {principal.role} may not send raw_base64 documents; it takes "
            f"{RAW_DOCUMENT_ROLE} or above (text blocks print for every operator)",
        )


def hub_version() -> str:
    return __version__
