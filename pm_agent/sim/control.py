"""The HTTP control API of a simulator fleet, what ``pm simctl`` talks to:
``GET /printers``, ``GET /printers/{port}``, ``GET/DELETE /printers/{port}/receipts``,
``POST /printers/{port}/state {"state": ...}``. JSON in and out; errors as
``{"ok": false, "error": {"code", "message"}}`` like the hub's."""

from __future__ import annotations

import json

from aiohttp import web

from pm_agent.sim.printer import PRINTER_STATES, SimulatedPrinter

#: The fleet's printers (the fleet's own list: printers added later are seen too).
PRINTERS = web.AppKey("printers", list[SimulatedPrinter])


def control_app(printers: list[SimulatedPrinter]) -> web.Application:
    """The aiohttp application that controls ``printers``."""
    app = web.Application()
    app[PRINTERS] = printers
    app.router.add_get("/", index)
    app.router.add_get("/printers", list_printers)
    app.router.add_get("/printers/{port}", show_printer)
    app.router.add_get("/printers/{port}/receipts", list_receipts)
    app.router.add_delete("/printers/{port}/receipts", clear_receipts)
    app.router.add_post("/printers/{port}/state", set_state)
    return app


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"code": code, "message": message}}, status=status
    )


def _lookup(request: web.Request) -> SimulatedPrinter | web.Response:
    """The printer on the port in the path, or the 404 to answer."""
    text = request.match_info["port"]
    if text.isdigit():
        for printer in request.app[PRINTERS]:
            if printer.port == int(text):
                return printer
    return _error(404, "not_found", f"no simulated printer on port {text}")


async def index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "printers": "/printers",
            "receipts": "/printers/{port}/receipts",
            "state": 'POST /printers/{port}/state {"state": ...}',
            "states": list(PRINTER_STATES),
        }
    )


async def list_printers(request: web.Request) -> web.Response:
    return web.json_response([p.to_json() for p in request.app[PRINTERS]])


async def show_printer(request: web.Request) -> web.Response:
    printer = _lookup(request)
    if isinstance(printer, web.Response):
        return printer
    return web.json_response(printer.to_json())


async def list_receipts(request: web.Request) -> web.Response:
    printer = _lookup(request)
    if isinstance(printer, web.Response):
        return printer
    return web.json_response([r.to_json(i) for i, r in enumerate(printer.receipts)])


async def clear_receipts(request: web.Request) -> web.Response:
    printer = _lookup(request)
    if isinstance(printer, web.Response):
        return printer
    cleared = len(printer.receipts)
    printer.clear()
    return web.json_response({"cleared": cleared})


async def set_state(request: web.Request) -> web.Response:
    printer = _lookup(request)
    if isinstance(printer, web.Response):
        return printer
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "invalid_payload", 'body must be JSON like {"state": "paper_out"}')
    state = body.get("state") if isinstance(body, dict) else None
    if state not in PRINTER_STATES:
        return _error(
            400,
            "invalid_payload",
            f"state must be one of {', '.join(PRINTER_STATES)}, not {state!r}",
        )
    try:
        await printer.set_state(state)
    except OSError as exc:
        return _error(409, "conflict", f"cannot listen on port {printer.port} again: {exc}")
    return web.json_response(printer.to_json())
