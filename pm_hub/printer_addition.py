"""Adding a printer at run time (``printer:add``, ``POST /api/v1/printers``,
``pm printer add``; manager or admin): the hub checks the address (only the schemes
the agent drives, nothing contacted here), asks the connected agent to drive it
(``printer:add`` on ``/agent``), and the agent registers it like any other printer and
keeps it across its restarts. A profile or language chosen with it is then set as
``printer:configure`` would.
"""

from __future__ import annotations

import logging
from typing import Any

from pm_core.protocol import ErrorCode, HubEvent, ProtocolError, ok_ack
from pm_core.protocol.errors import error_of
from pm_core.protocol.languages import check_language_field
from pm_core.protocol.printer_addresses import check_printer_uri
from pm_core.protocol.profiles import check_profile_field
from pm_core.protocol.validation import get_int, get_name, require_object
from pm_hub.auth import Principal
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import LiveState
from pm_hub.operator_actions import OperatorActions, require_role

log = logging.getLogger(__name__)

#: How long the agent may take to reach the printer and register it.
ADD_TIMEOUT_S = 20.0
#: What an operator may send with ``printer:add``.
ADD_KEYS = ("agent_id", "uri", "name", "station", "profile", "language")


class PrinterAddition:
    def __init__(
        self,
        *,
        state: LiveState,
        dispatcher: JobDispatcher,
        operations: OperatorActions,
        company_mode: bool = False,
    ) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.operations = operations
        self.company_mode = company_mode

    async def add_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """``printer:add {agent_id, uri, name?, station?, profile?, language?}``."""
        data = require_object(payload, allowed=ADD_KEYS)
        require_role(principal, "add_printer")
        if self.company_mode:
            raise ProtocolError(
                ErrorCode.CONFLICT, "a company hub cannot add a printer: add it on the branch's hub"
            )
        agent_id = get_int(data, "agent_id", required=True, minimum=1)
        uri = check_printer_uri(data.get("uri"))
        name = get_name(data, "name", max_length=100)
        station = get_name(data, "station", max_length=64)
        settings = {k: data[k] for k in ("profile", "language") if data.get(k) is not None}
        # Checked before the agent is asked, as printer:configure checks them.
        if "profile" in settings:
            check_profile_field(settings["profile"])
        if "language" in settings:
            check_language_field(settings["language"])
        link = self.state.agents.get(agent_id) if agent_id is not None else None
        if link is not None and not principal.sees(
            {"company_id": link.company_id, "branch_id": link.branch_id}
        ):
            link = None
        if link is None:
            raise ProtocolError(
                ErrorCode.OFFLINE,
                f"agent {agent_id} is not connected: a printer is added through its "
                "connected agent (agents:list shows them)",
            )
        request: dict[str, Any] = {"uri": uri}
        if name:
            request["name"] = name.strip()
        if station and station.strip():
            request["station"] = station.strip().lower()
        adding = self.state.adding_through
        adding[link.agent_id] = adding.get(link.agent_id, 0) + 1
        try:
            ack = await self.dispatcher.ask_agent(
                link, HubEvent.PRINTER_ADD, request, timeout=ADD_TIMEOUT_S
            )
        finally:
            adding[link.agent_id] -= 1
            if not adding[link.agent_id]:
                del adding[link.agent_id]
        if not ack.get("ok"):
            error = error_of(ack)
            code = str(error.get("code"))
            known = ErrorCode(code) if code in set(ErrorCode) else ErrorCode.OFFLINE
            raise ProtocolError(known, f"agent {agent_id}: {error.get('message')}")
        printer_id = ack.get("printer_id")
        if not isinstance(printer_id, int) or printer_id not in self.state.printers:
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                f"agent {agent_id} drives {uri} now but has not registered it yet; "
                "it shows in printers:list once it has",
            )
        log.info("printer %s (%s) added on agent %s by %s", printer_id, uri, agent_id,
                 principal.sub)  # fmt: skip
        row = self.state.printers[printer_id]
        # A printer known before (removed, then added again) keeps its old name and
        # station at registration: the ones given now win.
        for key in ("name", "station"):
            if key in request and row.get(key) != request[key]:
                settings[key] = request[key]
        if settings:
            return await self.operations.configure_printer(
                principal, {"printer_id": printer_id, **settings}
            )
        answer = await self.operations.get_printer(principal, {"printer_id": printer_id})
        return ok_ack(printer=answer["printer"])
