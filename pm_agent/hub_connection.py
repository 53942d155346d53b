"""The agent's Socket.IO client on ``/agent``: connecting with backoff until the hub
answers, telling a refused license (:class:`AgentAuthError`, not retried) from a hub
that is not there yet, and connecting again after the hub closed the link on purpose.

python-socketio reconnects by itself when the transport drops, but not after a clean
close from the server (hub shutdown or restart); :meth:`HubConnection.reconnect_later`
covers that case. The events the hub sends are handled by
:class:`~pm_agent.agent_namespace.AgentNamespace`, registered with :meth:`register`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import ssl
from typing import Any

import socketio

from pm_core import __version__
from pm_core.protocol import AgentEvent, ErrorCode, Namespace
from pm_core.tls import socketio_options

log = logging.getLogger(__name__)

NS = Namespace.AGENT


class AgentAuthError(Exception):
    """The hub refused this agent's license key or device id."""


class HubConnection:
    """One agent's link to its hub: the client, its auth, and what emitting needs."""

    def __init__(
        self,
        *,
        hub_url: str,
        license_key: str,
        device_id: str,
        name: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.auth = {
            "license_key": license_key,
            "device_id": device_id,
            "name": name,
            "version": __version__,
            "hostname": platform.node(),
        }
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=0.5,
            reconnection_delay_max=10,
            randomization_factor=0.3,
            logger=False,
            engineio_logger=False,
            # The process stops on SIGINT/SIGTERM itself (pm_core.event_loop); the
            # client's own SIGINT handler would stop the event loop under it.
            handle_sigint=False,
            **socketio_options(self.hub_url, tls),
        )
        #: Set when the agent stops: no more connecting, disconnects are expected.
        self.stopping = False
        #: Set when the hub said it is stopping on purpose (``hub:stopping``): the
        #: disconnect that follows is planned (an info line, then reconnecting).
        self.hub_stopping = False
        #: What the hub said when it last refused the connection (its connect error).
        self.last_connect_error: Any = None

    def register(self, namespace: socketio.AsyncClientNamespace) -> None:
        self.sio.register_namespace(namespace)

    @property
    def connected(self) -> bool:
        return NS in self.sio.namespaces

    def closed_by_hub(self, reason: Any) -> bool:
        """A disconnect ``reason`` that says the hub closed the link on purpose."""
        return bool(reason == self.sio.reason.SERVER_DISCONNECT)

    async def emit(self, event: str, data: Any, *, callback: Any = None) -> None:
        await self.sio.emit(event, data, namespace=NS, callback=callback)

    async def call(self, event: str, data: Any, *, timeout: float) -> Any:
        return await self.sio.call(event, data, namespace=NS, timeout=timeout)

    async def say_stopping(self, reason: str = "shutdown", timeout: float = 2.0) -> None:
        """Tell the hub this agent stops on purpose (``agent:stopping``), so that its
        disconnect raises no alerts; a hub that does not answer in time is not waited for."""
        if not self.connected:
            return
        try:
            await self.call(AgentEvent.STOPPING, {"reason": reason}, timeout=timeout)
        except Exception as exc:
            log.debug("agent:stopping not acknowledged: %s", exc)

    async def disconnect(self) -> None:
        """Disconnect, and stop python-socketio's own reconnection attempts if the link
        dropped meanwhile (they would otherwise outlive the agent)."""
        try:
            await self.sio.shutdown()
        except Exception:
            pass
        # An aborted reconnect attempt can leave python-engineio's HTTP session open.
        http = getattr(self.sio.eio, "http", None)
        if http is not None and not getattr(self.sio.eio, "external_http", False):
            with contextlib.suppress(Exception):
                if not http.closed:
                    await http.close()

    async def connect(self) -> None:
        """Connect, retrying with backoff until it works (or the agent stops); raises
        :class:`AgentAuthError` when the hub refuses the license."""
        delay = 0.5
        while True:
            if self.stopping:
                return
            try:
                await self.sio.connect(
                    self.hub_url,
                    namespaces=[NS],
                    auth=self.auth,
                    transports=["websocket"],
                    wait_timeout=10,
                )
                return
            except ValueError as exc:
                # "not in a disconnected state": the old transport is still closing,
                # or python-socketio's own reconnection is under way.
                if getattr(self.sio, "_reconnect_task", None) or self.connected:
                    return
                log.debug("connect deferred: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
            except socketio.exceptions.ConnectionError as exc:
                error = self.last_connect_error
                if isinstance(error, dict) and (
                    error.get("message") == ErrorCode.AUTH_FAILED
                    or (error.get("data") or {}).get("code") == ErrorCode.AUTH_FAILED
                ):
                    detail = (error.get("data") or {}).get("message", "refused")
                    raise AgentAuthError(f"hub refused this agent: {detail}") from exc
                log.warning(
                    "cannot reach hub at %s (%s); retrying in %.1fs", self.hub_url, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    async def reconnect_later(self) -> None:
        """After the hub closed the link on purpose: connect again (python-socketio
        does not retry those)."""
        await asyncio.sleep(0.5)
        # python-socketio retries by itself when the transport dropped; only step
        # in when it gave up (a clean close from the hub).
        if self.connected or self.stopping or getattr(self.sio, "_reconnect_task", None):
            return
        try:
            await self.connect()
        except AgentAuthError as exc:
            log.error("%s; not retrying", exc)
