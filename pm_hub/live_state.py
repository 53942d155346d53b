"""What the hub holds in memory while it runs: who it is (company, branch), the
printer rows, the agents and operators connected right now.

The printer rows here are the live truth (a status report changes them before the
file, see ``pm_hub.agent_printers``); every service reads them from here instead of
asking the database, which is what keeps a status change cheap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pm_core.database import Database
from pm_core.protocol import ErrorCode, ProtocolError
from pm_hub.auth import Principal
from pm_hub.store import printers as printer_store
from pm_hub.store import tenants

log = logging.getLogger(__name__)

#: A printer as the hub keeps it: its database row (flags as JSON text).
PrinterRow = dict[str, Any]


@dataclass
class AgentLink:
    """An agent connected right now."""

    agent_id: int
    sid: str
    device_id: str
    company_id: int
    branch_id: int
    #: The license it connected with (revoking it disconnects the agent).
    license_id: int | None = None
    connected_at: float = field(default_factory=time.time)
    printer_ids: set[int] = field(default_factory=set)
    #: Why the agent said it is stopping (``agent:stopping``), None until it does: its
    #: disconnect is then planned and raises no alerts.
    stopping: str | None = None


class LiveState:
    def __init__(self) -> None:
        #: The hub's own tenant (a branch hub calls itself company 1, branch 1 at first).
        self.company_id = 1
        self.branch_id = 1
        self.branch_name = "Main branch"
        self.started_at = time.time()
        #: Set when the hub begins a planned stop: the agents it disconnects raise no alerts.
        self.stopping = False
        self.printers: dict[int, PrinterRow] = {}
        self.agents: dict[int, AgentLink] = {}
        self.agent_by_sid: dict[str, AgentLink] = {}
        #: Operators connected on ``/ops``, by socket id.
        self.operators: dict[str, Principal] = {}
        #: Agents an operator is adding a printer through right now (``printer:add``):
        #: agent id -> adds under way. A printer an operator removed earlier that such
        #: an agent registers as ``operator_added`` is taken back instead of refused.
        self.adding_through: dict[int, int] = {}
        #: On a company hub: branch hubs connected on ``/branch``, by sid.
        self.branch_hubs: dict[str, Principal] = {}
        #: The hub is shutting down: the connections it closes are not agents or
        #: printers going away (no offline marks, no alerts).
        self.stopping = False

    async def load(self, db: Database, *, branch_name: str | None) -> None:
        """At start: the tenant (renamed if told), and the printers, all unreachable
        until their agents connect again."""
        self.company_id, self.branch_id = await db.write(tenants.ensure_default_tenant)
        if branch_name:
            branch_id = self.branch_id
            await db.write(lambda d: tenants.rename_branch(d, branch_id, branch_name))
        branch = await db.read(lambda d: tenants.get_branch(d, self.branch_id))
        self.branch_name = branch["name"] if branch else self.branch_name
        await db.write(tenants.mark_all_agents_disconnected)
        # Nobody is connected yet: what the file says about reachability is stale.
        await db.write(printer_store.mark_all_agent_printers_offline)
        for row in await db.read(printer_store.all_printers):
            self.printers[row["id"]] = row

    def printer_for(self, principal: Principal, printer_id: Any) -> PrinterRow:
        """The printer an operator asks about; ``not_found`` when it may not see it."""
        if isinstance(printer_id, bool) or not isinstance(printer_id, int):
            raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "printer_id must be an integer")
        row = self.printers.get(printer_id)
        if row is None or not principal.sees(row):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"printer {printer_id} not found")
        return row

    def agent_for_printer(self, row: PrinterRow) -> AgentLink | None:
        """The connected agent that drives this printer now, if any."""
        agent_id = row.get("agent_id")
        link = self.agents.get(agent_id) if agent_id is not None else None
        if link is None or row["id"] not in link.printer_ids:
            return None
        return link
