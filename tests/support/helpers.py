"""Test helpers: a real Socket.IO operator client that records what the hub sends."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import socketio

from pm_agent.sim.printer import SimulatedPrinter
from pm_core.protocol import HubEvent, Namespace
from pm_core.tls import socketio_options

ARP_HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"


class AnonymousPrinter(SimulatedPrinter):
    """A printer that does not answer GS I (many cheap ones): no serial, no model."""

    def identity(self, n: int) -> bytes | None:
        return None


def write_arp_table(path: Any, entries: dict[str, str]) -> None:
    """A file in the format of ``/proc/net/arp`` with complete entries ``{ip: mac}``
    (the ARP table is the hardware edge: tests give the agent a file of their own)."""
    rows = "".join(
        f"{ip:<16} 0x1         0x2         {mac}     *        lo\n" for ip, mac in entries.items()
    )
    path.write_text(ARP_HEADER + rows)


class OpsClient:
    """An operator connected to ``/ops`` that keeps every broadcast it receives."""

    def __init__(self, url: str, token: str | None, *, tls: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False, **socketio_options(url, tls))
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self._changed = asyncio.Event()
        for event in (
            HubEvent.PRINTER_UPDATE,
            HubEvent.JOB_UPDATE,
            HubEvent.AGENT_UPDATE,
            HubEvent.PRINTER_TEST_COMPLETED,
            HubEvent.HEALTH_ALERT,
            HubEvent.ALERT_UPDATE,
            HubEvent.BRANCH_UPDATE,
            HubEvent.LOGS_UPDATE,
        ):
            self.sio.on(event, self._recorder(event), namespace=Namespace.OPS)

        @self.sio.on("connect_error", namespace=Namespace.OPS)
        async def on_error(data: Any = None) -> None:
            self.connect_error = data

    def _recorder(self, event: str) -> Callable[[Any], Any]:
        async def record(data: Any = None) -> None:
            self.events.append((event, data))
            self._changed.set()

        return record

    async def connect(self) -> OpsClient:
        auth = {"token": self.token} if self.token is not None else None
        await self.sio.connect(
            self.url,
            namespaces=[Namespace.OPS],
            auth=auth,
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    async def call(self, event: str, payload: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, payload, namespace=Namespace.OPS, timeout=timeout)

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool] = lambda _d: True, timeout: float = 10
    ) -> Any:
        """The first recorded ``event`` whose payload matches (waiting for it if needed)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for name, data in self.events[seen:]:
                if name == event and predicate(data):
                    return data
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {event} matching within {timeout}s; got {self.events[-5:]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception:
            pass


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 10,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})")


def receipt_doc(marker: str) -> dict[str, Any]:
    """A small kitchen ticket whose text carries ``marker``."""
    return {
        "blocks": [
            {"type": "text", "text": "TABLE 12", "bold": True, "align": "center"},
            {"type": "text", "text": f"ticket {marker}"},
            {"type": "line"},
            {"type": "text", "text": "2x Burger"},
            {"type": "cut"},
        ]
    }


def free_port(run: int = 1) -> int:
    """A port that is free, with the ``run - 1`` ports after it free too."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = int(sock.getsockname()[1])
        if first + run > 65536:
            continue
        try:
            for port in range(first + 1, first + run):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no run of {run} free ports")
