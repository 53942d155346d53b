"""Printers and agents that are gone on purpose, not offline: the hub stops serving
them, clears their alerts and raises no new ones, across restarts.

- An operator removes a printer (``printer:remove``, ``DELETE /api/v1/printers/{id}``,
  ``pm printer remove``; manager or admin). If its agent registers it again (it is
  still in that box's ``--printer`` list), the registration is refused. One added at
  run time (``printer:add``) its connected agent forgets (``printer:forget``).
- An agent drops a printer from its configuration: after registering, the agent says
  which printers it drives now (``printers:registered``); the hub retires the others it
  had for that agent. One the agent registers again later comes back.
- An admin retires an agent (``agent:retire``, ``POST /api/v1/agents/{id}/retire``,
  ``pm agent retire``): its license is revoked, it is disconnected, its printers are
  retired, and no ``agent_disconnected`` alert follows, now or after a restart.

The rows stay (jobs keep their printer); ``retired_at`` and ``retired_by`` say why.
A branch hub does this; on a company hub the events are refused (do it at the branch).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.protocol import ErrorCode, HubEvent, Namespace, ProtocolError, ok_ack
from pm_core.protocol.validation import get_int, invalid, require_object
from pm_hub.active_jobs import ActiveJobs
from pm_hub.alerts import AlertBook
from pm_hub.auth import Principal
from pm_hub.broadcast import Broadcaster
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.live_state import AgentLink, LiveState
from pm_hub.operator_actions import require_role
from pm_hub.store import printers as printer_store
from pm_hub.store import tenants

log = logging.getLogger(__name__)

#: Most printer ids one ``printers:registered`` may carry.
MAX_REGISTERED = 10000


class PrinterRetirement:
    def __init__(
        self,
        *,
        db: Database,
        state: LiveState,
        jobs: ActiveJobs,
        dispatcher: JobDispatcher,
        alerts: AlertBook,
        health: HealthMonitor,
        broadcaster: Broadcaster,
        company_mode: bool = False,
    ) -> None:
        self.db = db
        self.state = state
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.alerts = alerts
        self.health = health
        self.broadcaster = broadcaster
        self.company_mode = company_mode

    def _branch_hub_only(self, doing: str) -> None:
        if self.company_mode:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"a company hub cannot {doing}: do it on the branch's own hub",
            )

    # -- operators ----------------------------------------------------------------------

    async def remove_printer(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """``printer:remove {printer_id}``: refused while jobs wait for the printer."""
        data = require_object(payload, allowed=("printer_id",))
        require_role(principal, "remove_printer")
        self._branch_hub_only("remove a branch's printer")
        row = self.state.printer_for(principal, data.get("printer_id"))
        waiting = self.jobs.depth(row["id"])
        if waiting:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"{row['name']} has {waiting} unfinished job(s): cancel them or let them "
                "finish, then remove it",
                waiting=waiting,
            )
        by = f"{printer_store.REMOVED_BY_OPERATOR}:{principal.sub}"
        link = self.state.agent_for_printer(row)
        removed = await self._retire([row["id"]], by=by)
        if link is not None:  # one it added at run time (printer:add) it forgets
            ack = await self.dispatcher.ask_agent(
                link, HubEvent.PRINTER_FORGET, {"printer_id": row["id"]}
            )
            if not ack.get("ok"):
                log.warning("agent %s did not forget printer %s: %s", link.agent_id, row["id"],
                            ack.get("error"))  # fmt: skip
        log.info("printer %s (%s) removed by %s", row["id"], row["name"], principal.sub)
        return ok_ack(printer=removed[0] if removed else {"id": row["id"]})

    async def retire_agent(self, principal: Principal, payload: Any) -> dict[str, Any]:
        """``agent:retire {agent_id}``."""
        data = require_object(payload, allowed=("agent_id",))
        require_role(principal, "retire_agent")
        self._branch_hub_only("retire a branch's agent")
        agent_id = get_int(data, "agent_id", required=True)
        assert agent_id is not None
        agent = await self.db.read(lambda d: _agent(d, agent_id))
        if agent is None or not principal.sees(agent) or agent["retired_at"] is not None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"agent {agent_id} not found")
        retired = await self.db.write(lambda d: tenants.retire_agent(d, agent_id))
        assert retired is not None
        self.health.forget(agent_id)
        await self.alerts.clear_subject(f"agent:{agent_id}", by=principal.sub)
        printers = [p["id"] for p in self.state.printers.values() if p["agent_id"] == agent_id]
        await self._retire(printers, by="agent-retired", actor=principal.sub)
        link = self.state.agents.get(agent_id)
        if link is not None:
            await self._disconnect(link)
        log.info("agent %s retired by %s (%d printers)", agent_id, principal.sub, len(printers))
        await self.broadcaster.agent_changed(retired)
        agent_ack = {"id": agent_id, "retired_at": retired["retired_at"]}
        return ok_ack(agent=agent_ack, printers=printers)

    # -- agents -------------------------------------------------------------------------------

    async def registered(self, link: AgentLink, payload: Any) -> dict[str, Any]:
        """``printers:registered {printer_ids}``: the printers the agent drives now; the
        others the hub had for it were dropped from its configuration."""
        data = require_object(payload, allowed=("printer_ids",))
        ids = data.get("printer_ids")
        if not isinstance(ids, list) or len(ids) > MAX_REGISTERED:
            raise invalid(f"printer_ids must be a list of at most {MAX_REGISTERED} ids")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise invalid("printer_ids must be integers")
        driven = set(ids)
        dropped = [
            p["id"]
            for p in self.state.printers.values()
            if p["agent_id"] == link.agent_id
            and p["branch_id"] == link.branch_id
            and p["id"] not in driven
        ]
        if dropped:
            log.info("agent %s no longer drives printers %s: retired", link.agent_id, dropped)
            await self._retire(dropped, by="agent", actor=f"agent:{link.agent_id}")
        return ok_ack(retired=dropped)

    # -- the work -------------------------------------------------------------------------------

    async def _retire(
        self, printer_ids: list[int], *, by: str, actor: str | None = None
    ) -> list[dict[str, Any]]:
        if not printer_ids:
            return []
        rows = await self.db.write(lambda d: printer_store.retire_printers(d, printer_ids, by=by))
        for row in rows:
            printer_id = row["id"]
            self.state.printers.pop(printer_id, None)
            for link in self.state.agents.values():
                link.printer_ids.discard(printer_id)
            for job in self.jobs.waiting_on(printer_id):
                try:
                    await self.dispatcher.cancel(
                        job.id, actor=actor or by, reason=f"printer {row['name']} was retired"
                    )
                except ProtocolError as exc:
                    log.warning("job %s of retired printer %s: %s", job.id, printer_id, exc)
            await self.alerts.clear_subject(f"printer:{printer_id}", by=actor or by)
            await self.broadcaster.broadcast(
                HubEvent.PRINTER_REMOVED,
                {
                    "id": printer_id,
                    "name": row["name"],
                    "company_id": row["company_id"],
                    "branch_id": row["branch_id"],
                    "retired_at": row["retired_at"],
                    "retired_by": row["retired_by"],
                },
            )
        return [
            {"id": r["id"], "name": r["name"], "retired_at": r["retired_at"],
             "retired_by": r["retired_by"]}
            for r in rows
        ]  # fmt: skip

    async def _disconnect(self, link: AgentLink) -> None:
        sio: socketio.AsyncServer = self.broadcaster.sio
        try:
            await sio.disconnect(link.sid, namespace=Namespace.AGENT)
        except Exception:
            log.debug("disconnecting retired agent %s", link.agent_id, exc_info=True)


def _agent(db: Any, agent_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM agents WHERE id = ?", (agent_id,)).fetchone()
    return dict(row) if row else None
