"""An agent as an attacker (or a confused second box) would write it: a bare Socket.IO
client on ``/agent`` that says what the test makes it say and records what the hub
sends it. The real agent is ``pm_agent.agent.Agent``."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from pm_core.protocol import AgentEvent, HubEvent, Namespace

NS = Namespace.AGENT


class RawAgent:
    def __init__(self, url: str, license_key: str, device_id: str) -> None:
        self.url = url
        self.auth = {"license_key": license_key, "device_id": device_id, "name": device_id}
        self.sio = socketio.AsyncClient(reconnection=False)
        self.jobs: list[dict[str, Any]] = []
        self.connect_error: Any = None
        self.disconnected = asyncio.Event()
        self._tasks: set[asyncio.Future[Any]] = set()

        @self.sio.on(HubEvent.PRINT_JOB, namespace=NS)
        async def print_job(data: Any = None) -> dict[str, Any]:
            self.jobs.append(data)
            return {"ok": True, "status": "dispatched"}  # spooled, says the agent

        @self.sio.on(HubEvent.PRINTER_TEST, namespace=NS)
        async def printer_test(data: Any = None) -> dict[str, Any]:
            cid = data.get("correlation_id") if isinstance(data, dict) else None

            async def printed() -> None:
                await self.sio.emit(
                    AgentEvent.PRINTER_TEST_RESULT,
                    {"correlation_id": cid, "ok": True, "duration_ms": 1.0},
                    namespace=NS,
                )

            self._tasks.add(asyncio.ensure_future(printed()))
            return {"ok": True}

        @self.sio.on("connect_error", namespace=NS)
        async def connect_error(data: Any = None) -> None:
            self.connect_error = data

        @self.sio.on("disconnect", namespace=NS)
        async def disconnect(reason: Any = None) -> None:
            self.disconnected.set()

    async def connect(self) -> RawAgent:
        await self.sio.connect(
            self.url, namespaces=[NS], auth=self.auth, transports=["websocket"], wait_timeout=5
        )
        return self

    async def call(self, event: str, payload: Any) -> Any:
        return await self.sio.call(event, payload, namespace=NS, timeout=10)

    async def register(self, identity: str, name: str = "Pass") -> Any:
        return await self.call(
            AgentEvent.PRINTER_DISCOVERED,
            {
                "address": "tcp://127.0.0.1:9",
                "identity": identity,
                "name": name,
                "status": "online",
                "station": "kitchen",
            },
        )

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception:
            pass
