"""The hub's events on ``/agent``, as a python-socketio class-based namespace: each
handler hands the event to the part of the agent that deals with it and answers
through the ack. A connect flushes the outbox and registers the printers; a
disconnect the hub asked for (shutdown, restart) is followed by a reconnect."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from pm_agent.added_printers import AddedPrinters
from pm_agent.hub_connection import NS, HubConnection
from pm_agent.job_intake import JobIntake
from pm_agent.link_health import LinkHealth
from pm_agent.outbox_sender import OutboxSender
from pm_agent.printer_registry import PrinterRegistry
from pm_agent.task_control import BackgroundTasks
from pm_core.logs import correlation, wire_correlation_id
from pm_core.protocol import ErrorCode, error_ack, ok_ack

log = logging.getLogger(__name__)


class AgentNamespace(socketio.AsyncClientNamespace):
    def __init__(
        self,
        *,
        connection: HubConnection,
        health: LinkHealth,
        outbox: OutboxSender,
        printers: PrinterRegistry,
        intake: JobIntake,
        tasks: BackgroundTasks,
        added: AddedPrinters | None = None,
    ) -> None:
        super().__init__(NS)
        self.connection = connection
        self.health = health
        self.outbox = outbox
        self.printers = printers
        self.intake = intake
        self.tasks = tasks
        self.added = added

    async def trigger_event(self, event: str, *args: Any) -> Any:
        # The hub's event names have colons ("print:job"); their handlers are
        # on_print_job and so on.
        return await super().trigger_event(event.replace(":", "_"), *args)

    # -- the link --------------------------------------------------------------------------

    async def on_connect(self) -> None:
        self.connection.hub_stopping = False
        self.health.link_up()
        log.info("connected to hub %s", self.connection.hub_url)
        self.tasks.spawn(self._after_connect())

    async def _after_connect(self) -> None:
        await self.outbox.flush()
        await self.printers.register_all()

    async def on_disconnect(self, reason: Any = None) -> None:
        self.health.link_down()
        if self.connection.stopping:
            return
        if self.connection.hub_stopping:
            log.info("the hub stopped on purpose (a restart?); reconnecting when it is back")
        else:
            log.warning("disconnected from hub (%s); reconnecting", reason)
        if self.connection.closed_by_hub(reason):
            # The hub closed us on purpose (shutdown, restart): python-socketio
            # does not retry those, so the agent does.
            self.tasks.spawn(self.connection.reconnect_later())

    async def on_hub_stopping(self, data: Any = None) -> None:
        """``hub:stopping``: the disconnect that follows is planned."""
        self.connection.hub_stopping = True

    async def on_connect_error(self, data: Any = None) -> None:
        self.connection.last_connect_error = data

    # -- requests from the hub ----------------------------------------------------------------

    async def on_print_job(self, data: Any = None) -> dict[str, Any]:
        with correlation(wire_correlation_id(data)):
            return await self.intake.accept_job(data)

    async def on_printer_test(self, data: Any = None) -> dict[str, Any]:
        return self.intake.test_printer(data)

    async def on_job_cancel(self, data: Any = None) -> dict[str, Any]:
        with correlation(wire_correlation_id(data)):
            return await self.intake.cancel_job(data)

    async def on_job_release(self, data: Any = None) -> dict[str, Any]:
        with correlation(wire_correlation_id(data)):
            return await self.intake.release_job(data)

    async def on_printer_configure(self, data: Any = None) -> dict[str, Any]:
        return await self.intake.configure_printer(data)

    async def on_printer_add(self, data: Any = None) -> dict[str, Any]:
        if self.added is None:
            return error_ack(ErrorCode.UNAVAILABLE, "this agent does not take printers at run time")
        return await self.added.add(data)

    async def on_printer_forget(self, data: Any = None) -> dict[str, Any]:
        if self.added is None:
            return ok_ack(forgotten=False)
        return await self.added.forget(data)
