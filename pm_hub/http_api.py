"""HTTP API: the ``/ops`` operations under ``/api/v1`` with ``Authorization: Bearer JWT``,
plus ``GET /healthz`` and ``GET /metrics``.

Routes are module-level functions; :func:`authed` checks the caller and turns the
operation's ack (or error) into a response. What they use is an :class:`HttpSide` kept
on the application under :data:`HTTP_SIDE`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from pm_core.logs import correlation
from pm_core.protocol import ErrorCode, ProtocolError, error_ack, new_request_id
from pm_core.protocol.errors import HTTP_STATUS
from pm_core.protocol.validation import check_payload_shape, get_int
from pm_hub.admission import Admission
from pm_hub.auth import AuthError, Principal
from pm_hub.company.mirror import BranchMirror
from pm_hub.company.peers import CompanyPeers
from pm_hub.config import HubSettings
from pm_hub.credentials import Credentials
from pm_hub.live_state import LiveState
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import OperatorActions, hub_version
from pm_hub.printer_addition import PrinterAddition
from pm_hub.printer_retirement import PrinterRetirement
from pm_hub.upstream import UpstreamStatus

log = logging.getLogger(__name__)

Ack = dict[str, Any]
#: An API route: the request, what operators can do here, and who asks.
Route = Callable[[web.Request, OperatorActions, Principal], Awaitable[Ack]]


@dataclass(frozen=True)
class HttpSide:
    """What the HTTP routes use."""

    settings: HubSettings
    state: LiveState
    credentials: Credentials
    metrics: HubMetrics
    operations: OperatorActions
    mirror: BranchMirror | None
    upstream: UpstreamStatus | None
    admission: Admission
    #: The other company-hub processes, when several serve the company.
    peers: CompanyPeers | None = None
    #: Printer removal and agent retirement.
    retirement: PrinterRetirement | None = None
    #: Printers added at run time.
    addition: PrinterAddition | None = None


HTTP_SIDE = web.AppKey("pm_hub.http_api", HttpSide)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=lambda o: json.dumps(o, default=str))


def _error(code: ErrorCode, message: str) -> web.Response:
    return _json(error_ack(code, message), status=HTTP_STATUS[code])


def _int_param(request: web.Request, name: str) -> int:
    value = get_int(dict(request.match_info), name, required=True)
    assert value is not None
    return value


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "body must be JSON") from None
    check_payload_shape(body)  # surrogates, 2^64 ids, NaN, hostile nesting
    return body


def authed(route: Route, *, status: int = 200) -> Callable[[web.Request], Awaitable[Any]]:
    """An API route behind a bearer token, a rate limit and the error mapping."""

    async def handler(request: web.Request) -> web.StreamResponse:
        # Log lines about this request carry a request id (a job's id once it has one).
        with correlation(new_request_id("http")):
            response = await _answer(request, route, status)
            log.debug("HTTP %s %s answered %s", request.method, request.path, response.status)
            return response

    return handler


async def _answer(request: web.Request, route: Route, status: int) -> web.StreamResponse:
    side = request.app[HTTP_SIDE]
    address = f"operator:{request.remote or 'unknown'}"  # the same count as /ops
    waiting = side.admission.login_wait(address)
    if waiting is not None:
        return _error(ErrorCode.RATE_LIMITED, waiting)
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return _error(ErrorCode.AUTH_FAILED, "missing Authorization: Bearer <token>")
    try:
        principal = side.credentials.verify(header[7:].strip())
    except AuthError as exc:
        side.admission.logins.failed(address)
        return _error(ErrorCode.AUTH_FAILED, str(exc))
    side.admission.logins.succeeded(address)
    if principal.role == "branch":
        return _error(ErrorCode.AUTH_FAILED, "branch tokens are for /branch, not the API")
    if principal.company_id != side.state.company_id and not side.settings.company_mode:
        return _error(ErrorCode.AUTH_FAILED, "token is for another company")
    if not side.admission.request_allowed(principal.session_id or principal.sub):
        return _error(ErrorCode.RATE_LIMITED, "too many requests; slow down")
    try:
        result = await route(request, side.operations, principal)
    except ProtocolError as exc:
        return _json(exc.to_ack(), status=HTTP_STATUS.get(exc.code, 400))
    except web.HTTPRequestEntityTooLarge:
        limit = side.settings.max_payload_bytes
        return _json(
            error_ack(ErrorCode.INVALID_PAYLOAD, f"body larger than {limit} bytes"),
            status=413,
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        return _error(ErrorCode.INTERNAL, "internal error; the hub logged it")
    if not result.get("ok", True):
        code = ErrorCode(result["error"]["code"])
        return _json(result, status=HTTP_STATUS.get(code, 400))
    return _json(result, status=status)


def _query(request: web.Request) -> dict[str, Any]:
    values = {k: v for k, v in request.query.items()}
    check_payload_shape(values)
    return values


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "body must be a JSON object")
    return body


async def healthz(request: web.Request) -> web.Response:
    """Alive, to anyone (load balancers, ``pm tui``'s first check); the branch, counts
    and the upstream's address only to a caller with a valid token."""
    side = request.app[HTTP_SIDE]
    state, mirror, upstream = side.state, side.mirror, side.upstream
    header = request.headers.get("Authorization", "")
    try:
        side.credentials.verify(header[7:].strip() if header.startswith("Bearer ") else None)
    except AuthError:
        return _json({"ok": True, "version": hub_version()})
    return _json(
        {
            "ok": True,
            "version": hub_version(),
            "uptime_s": round(time.time() - state.started_at, 1),
            "agents_connected": len(state.agents),
            "printers": len(mirror.printers if mirror is not None else state.printers),
            "branch": {"id": state.branch_id, "name": state.branch_name},
            "company_mode": side.settings.company_mode,
            "upstream": upstream.describe() if upstream is not None else None,
            "processes": side.peers.describe() if side.peers is not None else None,
        }
    )


async def scrape(request: web.Request) -> web.Response:
    # Rendered on the loop: the collectors read live hub state that only the loop may
    # touch (a thread could see a dict change size mid-iteration). It takes about 1 ms.
    body = request.app[HTTP_SIDE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def list_printers(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    data: dict[str, Any] = _query(request)
    return await ops.list_printers(p, data)


async def get_printer(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.get_printer(p, {"printer_id": _int_param(request, "printer_id")})


async def patch_printer(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    body = await _object_body(request)
    return await ops.configure_printer(p, {**body, "printer_id": _int_param(request, "printer_id")})


def _retirement(request: web.Request) -> PrinterRetirement:
    retirement = request.app[HTTP_SIDE].retirement
    if retirement is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "not served by this hub")
    return retirement


async def add_printer(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    addition = request.app[HTTP_SIDE].addition
    if addition is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "not served by this hub")
    return await addition.add_printer(p, await _object_body(request))


async def delete_printer(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    printer_id = _int_param(request, "printer_id")
    return await _retirement(request).remove_printer(p, {"printer_id": printer_id})


async def retire_agent(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    agent_id = _int_param(request, "agent_id")
    return await _retirement(request).retire_agent(p, {"agent_id": agent_id})


async def test_printer(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    """Waits for the test page's outcome (the Socket.IO event answers at once instead)."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[dict[str, Any]] = loop.create_future()

    def on_result(result: dict[str, Any]) -> None:
        if not outcome.done():
            outcome.set_result(result)

    await ops.test_printer(
        p, {"printer_id": _int_param(request, "printer_id")}, on_result=on_result
    )
    result = await outcome
    if result["ok"]:
        return {"ok": True, "result": result}
    error = result.get("error") or {}
    code = error.get("code")
    return {
        "ok": False,
        "error": {
            "code": code if code in set(ErrorCode) else ErrorCode.INTERNAL.value,
            "message": error.get("message", "test print failed"),
        },
        "result": result,
    }


async def submit_job(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.submit_job(p, await _body(request))


async def list_jobs(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.list_jobs(p, _query(request))


async def get_job(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    with_doc = request.query.get("document") in ("1", "true", "yes")
    return await ops.get_job(p, {"job_id": _int_param(request, "job_id"), "document": with_doc})


async def list_agents(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.list_agents(p, {})


async def cancel_job(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    body = await _body(request)
    reason = body.get("reason") if isinstance(body, dict) else None
    payload: dict[str, Any] = {"job_id": _int_param(request, "job_id")}
    if reason is not None:
        payload["reason"] = reason
    return await ops.cancel_job(p, payload)


async def reprint_job(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    body = await _object_body(request)
    return await ops.reprint_job(p, {**body, "job_id": _int_param(request, "job_id")})


async def list_stations(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.list_stations(p, {})


async def put_station(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    body = await _object_body(request)
    return await ops.configure_station(p, {**body, "station": request.match_info["name"]})


async def list_alerts(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.list_alerts(p, _query(request))


async def ack_alert(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.ack_alert(p, {"alert_id": _int_param(request, "alert_id")})


async def health_summary(request: web.Request, ops: OperatorActions, p: Principal) -> Ack:
    return await ops.health_summary(p, {})


@web.middleware
async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Browsers may call ``/api/v1`` only from the allowed origins (``allowed_origins``;
    none by default): they get the CORS headers, others get none (their browser then
    refuses the answer to the page). A preflight from another origin is 403."""
    origin = request.headers.get("Origin")
    api = request.path.startswith("/api/")
    allowed = (
        api and origin is not None and origin.rstrip("/") in request.app[HTTP_SIDE].settings.origins
    )
    if api and request.method == "OPTIONS":
        if not allowed:
            return web.Response(status=403, text="origin not allowed")
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if allowed and origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
    return response


def setup_http_api(app: web.Application, side: HttpSide) -> None:
    app[HTTP_SIDE] = side
    app.middlewares.append(cors)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/api/v1/health", authed(health_summary))
    app.router.add_get("/api/v1/printers", authed(list_printers))
    app.router.add_post("/api/v1/printers", authed(add_printer, status=201))
    app.router.add_get("/api/v1/printers/{printer_id}", authed(get_printer))
    app.router.add_patch("/api/v1/printers/{printer_id}", authed(patch_printer))
    app.router.add_delete("/api/v1/printers/{printer_id}", authed(delete_printer))
    app.router.add_post("/api/v1/agents/{agent_id}/retire", authed(retire_agent))
    app.router.add_post("/api/v1/printers/{printer_id}/test", authed(test_printer))
    app.router.add_post("/api/v1/jobs", authed(submit_job, status=201))
    app.router.add_get("/api/v1/jobs", authed(list_jobs))
    app.router.add_get("/api/v1/jobs/{job_id}", authed(get_job))
    app.router.add_post("/api/v1/jobs/{job_id}/cancel", authed(cancel_job))
    app.router.add_post("/api/v1/jobs/{job_id}/reprint", authed(reprint_job, status=201))
    app.router.add_get("/api/v1/agents", authed(list_agents))
    app.router.add_get("/api/v1/stations", authed(list_stations))
    app.router.add_put("/api/v1/stations/{name}", authed(put_station))
    app.router.add_get("/api/v1/alerts", authed(list_alerts))
    app.router.add_post("/api/v1/alerts/{alert_id}/ack", authed(ack_alert))
