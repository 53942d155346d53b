"""Agents coming and going: a connected agent becomes an :class:`AgentLink` in the live
state; when it leaves, what waited on it is told (requests in flight fail ``offline``,
its jobs stop being sent, its printers go offline) and the absence watch starts."""

from __future__ import annotations

import logging
from typing import Any

from pm_core.database import Database
from pm_core.protocol import ErrorCode, Namespace
from pm_hub.broadcast import Broadcaster
from pm_hub.correlation import CorrelationRegistry
from pm_hub.dispatch import JobDispatcher
from pm_hub.health import HealthMonitor
from pm_hub.live_state import AgentLink, LiveState
from pm_hub.printer_changes import PrinterChanges
from pm_hub.store import printers as printer_store
from pm_hub.store import tenants

log = logging.getLogger(__name__)


class AgentSessions:
    def __init__(
        self,
        *,
        db: Database,
        state: LiveState,
        broadcaster: Broadcaster,
        changes: PrinterChanges,
        registry: CorrelationRegistry,
        dispatcher: JobDispatcher,
        health: HealthMonitor,
    ) -> None:
        self.db = db
        self.state = state
        self.broadcaster = broadcaster
        self.changes = changes
        self.registry = registry
        self.dispatcher = dispatcher
        self.health = health

    async def attach(self, link: AgentLink, agent: dict[str, Any]) -> None:
        """An agent authenticated: it is the one link of its agent id from now on."""
        state = self.state
        old = state.agents.get(link.agent_id)
        state.agents[link.agent_id] = link
        state.agent_by_sid[link.sid] = link
        if old is not None and old.sid != link.sid:
            # The same device connected again before its old socket timed out.
            state.agent_by_sid.pop(old.sid, None)
            log.info("agent %s reconnected; closing its previous connection", link.agent_id)
            await self.broadcaster.sio.disconnect(old.sid, namespace=Namespace.AGENT)
        await self.health.agent_connected(link, agent["name"])
        log.info("agent %s (%s) connected", agent["id"], link.device_id)
        await self.broadcaster.agent_changed(agent)

    async def detach(self, sid: str) -> None:
        """A socket on ``/agent`` closed (the link it carried may already be replaced)."""
        state = self.state
        if state.stopping:
            # The hub goes away, not the agent: its printers are not offline (operators
            # see the hub's absence once; the next start has them unreachable until
            # the agent connects again).
            link = state.agent_by_sid.pop(sid, None)
            if link is not None and state.agents.get(link.agent_id) is link:
                del state.agents[link.agent_id]
            return
        link = state.agent_by_sid.get(sid)
        # Planned: the agent said it is stopping (agent:stopping), or the hub itself is
        # stopping and closed the link. Its printers go offline without alerts.
        planned = link is not None and (link.stopping is not None or state.stopping)
        if link is not None and state.agents.get(link.agent_id) is link:
            self.dispatcher.agent_detached(link)
            self.health.agent_disconnected(link, planned=planned)
        link = state.agent_by_sid.pop(sid, None)
        if link is None or state.agents.get(link.agent_id) is not link:
            return
        del state.agents[link.agent_id]
        if planned:
            why = "the hub is stopping" if state.stopping else f"planned: {link.stopping}"
            log.info(
                "agent %s disconnected (%s); its printers show offline, no alerts",
                link.agent_id,
                why,
            )
        else:
            log.info("agent %s disconnected", link.agent_id)
        self.registry.fail_where(
            ErrorCode.OFFLINE, "the agent disconnected", agent_id=link.agent_id
        )
        agent_id = link.agent_id
        agent = await self.db.write(lambda d: tenants.set_agent_disconnected(d, agent_id))
        changed = await self.db.write(
            lambda d: printer_store.mark_agent_printers_offline(d, agent_id, planned=planned)
        )
        for row in changed:
            await self.changes.changed(row)
        if agent is not None:
            await self.broadcaster.agent_changed(agent)
