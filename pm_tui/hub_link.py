"""The dashboard's connection to the hub's ``/ops`` namespace.

Plain asyncio, no Textual: it reconnects with backoff (reporting a countdown),
stops retrying when the token is refused, and hands every hub event to a
callback. The app turns those into Textual messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio

from pm_core.protocol import ErrorCode, HubEvent, Namespace, OpsEvent
from pm_core.tls import socketio_options
from pm_tui.scrub import scrub, scrub_text

log = logging.getLogger(__name__)

NS = Namespace.OPS
FORWARDED_EVENTS = (
    HubEvent.PRINTER_UPDATE,
    HubEvent.PRINTER_REMOVED,
    HubEvent.PRINTERS_SEEN,
    HubEvent.PRINTERS_UPDATE,
    HubEvent.JOBS_UPDATE,
    HubEvent.JOB_UPDATE,
    HubEvent.AGENT_UPDATE,
    HubEvent.HEALTH_ALERT,
    HubEvent.ALERT_UPDATE,
    HubEvent.PRINTER_TEST_COMPLETED,
    HubEvent.BRANCH_UPDATE,
    HubEvent.BRANCHES_UPDATE,
    HubEvent.LOGS_UPDATE,
)
#: A lost hub shows ``offline`` (instead of ``reconnecting``) after this many failed
#: attempts in a row, or this many seconds; the dashboard keeps trying either way.
OFFLINE_AFTER_ATTEMPTS = 3
OFFLINE_AFTER_S = 30.0


@dataclass(frozen=True)
class LinkState:
    """Where the link stands: connecting, connected, reconnecting, offline (still
    retrying, but for a while now), refused."""

    state: str
    message: str = ""
    retry_at: float | None = None
    latency_ms: float | None = None
    #: Wall-clock time the hub was lost (reconnecting and offline).
    since: float | None = None
    attempts: int = 0

    @property
    def retry_in(self) -> int | None:
        if self.retry_at is None:
            return None
        return max(0, round(self.retry_at - time.monotonic()))


class HubLinkError(Exception):
    pass


class HubLink:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        on_event: Callable[[str, Any], None] | None = None,
        on_state: Callable[[LinkState], None] | None = None,
        max_delay: float = 10.0,
        offline_after: int = OFFLINE_AFTER_ATTEMPTS,
        offline_after_s: float = OFFLINE_AFTER_S,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.tls = tls
        self.token = token
        self.on_event: Callable[[str, Any], None] = on_event or (lambda _e, _d: None)
        self.on_state: Callable[[LinkState], None] = on_state or (lambda _s: None)
        self.max_delay = max_delay
        self.offline_after = offline_after
        self.offline_after_s = offline_after_s
        self.state = LinkState("connecting")
        self._sio: socketio.AsyncClient | None = None
        self._lost = asyncio.Event()
        self._refused: dict[str, Any] | None = None
        #: The hub said it is stopping on purpose (``hub:stopping``).
        self._hub_stopping = False

    def bind(
        self,
        *,
        on_event: Callable[[str, Any], None],
        on_state: Callable[[LinkState], None],
    ) -> None:
        """Say where hub events and link state changes go."""
        self.on_event = on_event
        self.on_state = on_state

    def _set(self, state: LinkState) -> None:
        self.state = state
        self.on_state(state)

    def _new_client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(
            reconnection=False,
            logger=False,
            engineio_logger=False,
            # The process stops on SIGINT/SIGTERM itself (pm_core.event_loop); the
            # client's own SIGINT handler would stop the event loop under it.
            handle_sigint=False,
            **socketio_options(self.url, self.tls),
        )

        @sio.on("connect_error", namespace=NS)
        async def connect_error(data: Any = None) -> None:
            if isinstance(data, dict):
                inner: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
                if (
                    data.get("message") == ErrorCode.AUTH_FAILED
                    or inner.get("code") == ErrorCode.AUTH_FAILED
                ):
                    self._refused = {
                        "message": scrub_text(str(inner.get("message") or "token refused"))
                    }

        @sio.on("disconnect", namespace=NS)
        async def disconnect(reason: Any = None) -> None:
            self._lost.set()

        @sio.on(HubEvent.HUB_STOPPING, namespace=NS)
        async def hub_stopping(data: Any = None) -> None:
            # A planned stop (a restart, an upgrade): the loss that follows is expected.
            self._hub_stopping = True

        for event in FORWARDED_EVENTS:
            sio.on(event, self._forwarder(event), namespace=NS)
        return sio

    def _forwarder(self, event: str) -> Callable[[Any], Any]:
        async def forward(data: Any = None) -> None:
            self.on_event(event, scrub(data))  # no terminal commands from the hub's data

        return forward

    @property
    def connected(self) -> bool:
        return self._sio is not None and NS in self._sio.namespaces

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until cancelled or refused."""
        delay = 0.5
        failures = 0
        lost_at: float | None = None  # monotonic, for offline_after_s
        since: float | None = None  # wall clock, to show
        planned = False  # the hub said it was stopping before the link went
        while True:
            self._refused = None
            self._hub_stopping = False
            self._lost.clear()
            if failures == 0 and lost_at is None:
                self._set(LinkState("connecting", f"connecting to {self.url}"))
            sio = self._new_client()
            try:
                await sio.connect(
                    self.url,
                    namespaces=[NS],
                    auth={"token": self.token, "coalesce": True},
                    transports=["websocket"],
                    wait_timeout=5,
                )
            except (socketio.exceptions.ConnectionError, ValueError, OSError) as exc:
                await _quietly_disconnect(sio)
                if self._refused is not None:
                    self._set(
                        LinkState(
                            "refused", f"the hub refused the token: {self._refused['message']}"
                        )
                    )
                    return
                failures += 1
                if lost_at is None:
                    lost_at, since = time.monotonic(), time.time()
                retry_at = time.monotonic() + delay
                log.info("cannot reach %s: %r", self.url, exc)
                gone_long = time.monotonic() - lost_at >= self.offline_after_s
                if failures >= self.offline_after or gone_long:
                    message = (
                        f"the hub at {self.url} stopped on purpose (a restart or an "
                        f"upgrade) and is not back after {failures} tries"
                        if planned
                        else f"the hub at {self.url} has not answered {failures} tries"
                    )
                    self._set(
                        LinkState("offline", message, retry_at, since=since, attempts=failures)
                    )
                else:
                    message = f"no answer from the hub at {self.url}"
                    self._set(
                        LinkState("reconnecting", message, retry_at, since=since, attempts=failures)
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            self._sio = sio
            delay, failures, lost_at, since, planned = 0.5, 0, None, None, False
            self._set(LinkState("connected", f"connected to {self.url}"))
            refresher = asyncio.create_task(self._keep_token_fresh())
            try:
                await self._lost.wait()
            finally:
                refresher.cancel()
                self._sio = None
                await _quietly_disconnect(sio)
            lost_at, since = time.monotonic(), time.time()
            retry_at = time.monotonic() + delay
            planned = self._hub_stopping
            why = "the hub is restarting (a planned stop)" if planned else "lost the hub connection"
            self._set(LinkState("reconnecting", why, retry_at, since=since))
            await asyncio.sleep(delay)

    async def _keep_token_fresh(self) -> None:
        """Ask for a new token of the same session when two thirds of this one's life
        have passed, so a dashboard open through a long shift is not logged out; the
        new token is the one used for the next connect. A hub that cannot refresh
        (older, or the token has no lifetime to read) is left alone."""
        while True:
            times = token_times(self.token)
            if times is None:
                return
            issued, expires = times
            due = issued + (expires - issued) * 2 / 3
            await asyncio.sleep(max(1.0, due - time.time()))
            ack = await self.call(OpsEvent.TOKEN_REFRESH, {})
            token = ack.get("token")
            if not ack.get("ok") or not isinstance(token, str):
                log.warning("the hub did not refresh the token: %s", ack.get("error"))
                return
            self.token = token
            log.info("token refreshed (expires %s)", ack.get("expires_at"))

    async def call(
        self, event: str, payload: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        """Send a request and return its ack (an error ack if the hub is not reachable)."""
        sio = self._sio
        if sio is None or not self.connected:
            return {
                "ok": False,
                "error": {"code": "offline", "message": "not connected to the hub"},
            }
        try:
            ack = await sio.call(event, payload or {}, namespace=NS, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            return {"ok": False, "error": {"code": "timeout", "message": f"no answer to {event}"}}
        except Exception as exc:
            return {"ok": False, "error": {"code": "offline", "message": str(exc)}}
        if not isinstance(ack, dict):
            return {"ok": False, "error": {"code": "internal", "message": "malformed answer"}}
        result: dict[str, Any] = scrub(ack)
        return result

    async def ping(self) -> float | None:
        started = time.perf_counter()
        ack = await self.call("whoami", {}, timeout=5)
        if not ack.get("ok"):
            return None
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        sio = self._sio
        self._sio = None
        if sio is not None:
            await _quietly_disconnect(sio)


def token_times(token: str) -> tuple[float, float] | None:
    """``(iat, exp)`` of a JWT, read without checking it (the hub checks it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


async def _quietly_disconnect(sio: socketio.AsyncClient) -> None:
    try:
        await sio.disconnect()
    except Exception:
        pass
