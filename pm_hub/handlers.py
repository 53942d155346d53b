"""The guard every Socket.IO handler runs inside: bad input becomes an error ack,
an unexpected exception is logged with its correlation id and becomes ``internal``
(a database that cannot be reached: ``unavailable``); and :func:`refuse`, the answer
to a connection whose credentials do not let it in.

Every request gets a correlation id for its log lines: the one the payload carries
(an agent's answer about a job or a test print), else a new request id
(``ops_...`` on ``/ops``, ``agent_...`` on ``/agent``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from pm_core.database import DatabaseClosed
from pm_core.logs import correlation_id, wire_correlation_id
from pm_core.protocol import ErrorCode, ProtocolError, error_ack, new_request_id
from pm_core.protocol.validation import check_payload_shape
from pm_core.sql import DatabaseUnavailable

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[dict[str, Any]]]


def refuse(
    message: str, code: ErrorCode = ErrorCode.AUTH_FAILED
) -> socketio.exceptions.ConnectionRefusedError:
    """Raise this from a ``connect`` handler: the client sees ``code`` (``auth_failed``,
    or ``rate_limited`` for a connection over a limit) and why."""
    return socketio.exceptions.ConnectionRefusedError(
        code.value, {"code": code.value, "message": message}
    )


def connect_handler(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A namespace's ``connect`` handler whose database reads and writes may find the
    database unreachable: the client is refused with ``unavailable`` (and retries, as
    after any refused connection that is not ``auth_failed``)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any) -> None:
        try:
            await fn(*args)
        except DatabaseUnavailable as exc:
            log.warning("refused a connection: %s", exc.message)
            raise refuse(exc.message, ErrorCode.UNAVAILABLE) from None

    return wrapper


def guarded(
    event: str,
    fn: Handler,
    *,
    on_answer: Callable[[str, dict[str, Any]], None] | None = None,
    request_kind: str = "req",
) -> Callable[..., Awaitable[Any]]:
    """Wrap ``fn(sid, payload)`` so it always answers with an ack dict; ``on_answer``
    sees every (event, ack) for metrics. ``request_kind`` starts the request ids."""

    @functools.wraps(fn)
    async def wrapper(sid: str, *args: Any) -> dict[str, Any]:
        payload = args[0] if args else None
        token = correlation_id.set(wire_correlation_id(payload) or new_request_id(request_kind))
        try:
            ack = await answer(sid, *args)
            if log.isEnabledFor(logging.DEBUG):
                outcome = "ok" if ack.get("ok") else ack.get("error", {}).get("code")
                log.debug("%s from %s answered %s", event, sid, outcome)
        finally:
            correlation_id.reset(token)
        if on_answer is not None:
            on_answer(event, ack)
        return ack

    async def answer(sid: str, *args: Any) -> dict[str, Any]:
        if len(args) > 1:
            return error_ack(ErrorCode.INVALID_PAYLOAD, f"{event} takes one payload object")
        payload = args[0] if args else None
        # Size: the transport already refuses a message over ``max_payload_bytes``
        # (python-engineio's max_http_buffer_size drops that client), so no handler sees
        # one; not measured again here (re-serializing every payload cost ~10% of ingest).
        try:
            # No handler can store or show a lone surrogate, a 2^64 id or NaN, nor should
            # it walk a payload nested a thousand deep: refused here, for every event.
            check_payload_shape(payload)
            return await fn(sid, payload)
        except ProtocolError as exc:
            return exc.to_ack()
        except DatabaseClosed:
            # The hub is stopping: a request that came in as it closed its store.
            log.debug("%s answered unavailable: the hub is stopping", event)
            return error_ack(ErrorCode.UNAVAILABLE, "the hub is stopping; try again shortly")
        except Exception:
            log.exception("handler for %s failed", event)
            return error_ack(ErrorCode.INTERNAL, "internal error; the hub logged it")

    return wrapper


async def unknown_event(event: str, sid: str, *args: Any) -> dict[str, Any]:
    """The catch-all of every namespace: an event nobody handles is answered, not dropped."""
    return error_ack(ErrorCode.INVALID_PAYLOAD, f"unknown event {event!r}")
