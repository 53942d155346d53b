"""The bare framework: a minimal aiohttp + python-socketio server that only forwards.

``python -m pm_bench.relay [--port 0]`` speaks just enough of the hub's wire
contract for the same load processes to drive it: ``/agent`` registers printers and
forwards ``printer:test:result``, ``/ops`` forwards ``printer:test`` and answers
``printers:list``, status changes are broadcast to the ``branch_1`` room. No
authentication, validation, database, logging or bookkeeping beyond the two maps
it needs to route, so every figure measured against it is the floor that
python-socketio and aiohttp set on this machine; the hub's figures are printed as a
ratio to it. The Socket.IO settings (ping interval and timeout, buffer size) are
the hub's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from typing import Any

import socketio
from aiohttp import web

from pm_core.event_loop import event_loop_factory

OPS = "/ops"
AGENT = "/agent"
ROOM = "branch_1"


def create_relay() -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        ping_interval=20,
        ping_timeout=20,
        max_http_buffer_size=2 * 1024 * 1024,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app)
    owner: dict[int, str] = {}  # printer id -> agent sid
    waiting: dict[str, str] = {}  # correlation id -> operator sid
    ids = itertools.count(1)

    @sio.on("connect", namespace=OPS)
    async def ops_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, ROOM, namespace=OPS)

    @sio.on("printers:list", namespace=OPS)
    async def printers_list(sid: str, data: Any = None) -> dict[str, Any]:
        return {"ok": True, "printers": []}

    @sio.on("printer:test", namespace=OPS)
    async def printer_test(sid: str, data: Any = None) -> dict[str, Any]:
        printer_id = data.get("printer_id") if isinstance(data, dict) else None
        agent_sid = owner.get(printer_id)  # type: ignore[arg-type]
        if agent_sid is None:
            return {"ok": False, "error": {"code": "offline", "message": "no agent"}}
        cid = f"test_{next(ids)}"
        waiting[cid] = sid
        await sio.emit(
            "printer:test",
            {"correlation_id": cid, "printer_id": printer_id},
            to=agent_sid,
            namespace=AGENT,
        )
        return {"ok": True, "correlation_id": cid, "printer_id": printer_id}

    @sio.on("connect", namespace=AGENT)
    async def agent_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        return None

    @sio.on("printer:discovered", namespace=AGENT)
    async def discovered(sid: str, data: Any = None) -> dict[str, Any]:
        printer_id = next(ids)
        owner[printer_id] = sid
        return {"ok": True, "printer_id": printer_id}

    @sio.on("printer:test:result", namespace=AGENT)
    async def test_result(sid: str, data: Any = None) -> dict[str, Any]:
        cid = data.get("correlation_id") if isinstance(data, dict) else None
        ops_sid = waiting.pop(cid, None) if isinstance(cid, str) else None
        if ops_sid is not None:
            await sio.emit("printer:test:completed", data, to=ops_sid, namespace=OPS)
        return {"ok": True}

    @sio.on("printer:status", namespace=AGENT)
    async def status(sid: str, data: Any = None) -> dict[str, Any]:
        if isinstance(data, dict):
            update = {"id": data.get("printer_id"), "status": data.get("status")}
            update["flags"] = data.get("flags")
            await sio.emit("printer:update", update, to=ROOM, namespace=OPS)
        return {"ok": True}

    @sio.on("health:ping", namespace=AGENT)
    async def ping(sid: str, data: Any = None) -> dict[str, Any]:
        return {"ok": True, "t": data.get("t") if isinstance(data, dict) else None}

    @sio.on("disconnect", namespace=AGENT)
    async def agent_disconnect(sid: str, reason: Any = None) -> None:
        for printer_id in [p for p, s in owner.items() if s == sid]:
            del owner[printer_id]

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "relay": True})

    app.router.add_get("/healthz", healthz)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(create_relay(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    sockets = getattr(site._server, "sockets", None)
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"bare relay listening on http://{host}:{bound}", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pm_bench.relay")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        # The same event loop as the hub, so the ratio compares code, not loops.
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
