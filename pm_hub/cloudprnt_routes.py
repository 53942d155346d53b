"""The HTTP side of the CloudPRNT server (:mod:`pm_hub.cloudprnt`): ``POST``,
``GET`` and ``DELETE`` on ``/cloudprnt``, with Star's protocol's answers and
plain HTTP errors (no traceback reaches a printer)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from pm_core.logs import correlation
from pm_core.protocol import new_request_id
from pm_hub.cloudprnt import MAX_BODY_BYTES, CloudPrntError, CloudPrntServer

log = logging.getLogger(__name__)

CLOUDPRNT_SERVER = web.AppKey("pm_hub.cloudprnt", CloudPrntServer)
PATH = "/cloudprnt"
REALM = 'Basic realm="PrinterMaster CloudPRNT"'

Handler = Callable[[web.Request, CloudPrntServer], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def route(request: web.Request) -> web.StreamResponse:
        with correlation(new_request_id("cloudprnt")):
            try:
                return await handler(request, request.app[CLOUDPRNT_SERVER])
            except CloudPrntError as exc:
                headers = {"WWW-Authenticate": REALM} if exc.status == 401 else None
                log.debug("CloudPRNT %s from %s: %s %s", request.method, request.remote,
                          exc.status, exc.message)  # fmt: skip
                return web.json_response({"error": exc.message}, status=exc.status, headers=headers)
            except Exception:
                log.exception("CloudPRNT %s %s failed", request.method, request.path)
                return web.json_response({"error": "internal error; the hub logged it"}, status=500)

    return route


async def _read_body(request: web.Request) -> object:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise CloudPrntError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise CloudPrntError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CloudPrntError(400, "the body must be JSON") from None


def _auth(request: web.Request) -> str:
    return request.headers.get("Authorization", "")


def _param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value[:200] if value is not None else None


async def poll(request: web.Request, server: CloudPrntServer) -> web.StreamResponse:
    body = await _read_body(request)
    mac = body.get("printerMAC") if isinstance(body, dict) else None
    poller = await server.authenticate(mac or _param(request, "mac"), _auth(request),
                                       request.remote or "unknown")  # fmt: skip
    return web.json_response(await server.poll(poller, body))


async def fetch(request: web.Request, server: CloudPrntServer) -> web.StreamResponse:
    poller = await server.authenticate(
        _param(request, "mac"), _auth(request), request.remote or "unknown"
    )
    media_type = _param(request, "type") or ""
    png = await server.fetch(poller, media_type, _param(request, "token"))
    return web.Response(body=png, content_type=media_type)


async def confirm(request: web.Request, server: CloudPrntServer) -> web.StreamResponse:
    poller = await server.authenticate(
        _param(request, "mac"), _auth(request), request.remote or "unknown"
    )
    await server.confirm(poller, _param(request, "code") or "", _param(request, "token"))
    return web.json_response({})


def setup_cloudprnt(app: web.Application, server: CloudPrntServer) -> None:
    app[CLOUDPRNT_SERVER] = server
    app.router.add_post(PATH, _guarded(poll))
    app.router.add_get(PATH, _guarded(fetch))
    app.router.add_delete(PATH, _guarded(confirm))
