"""The guard every Socket.IO handler runs inside: bad input becomes an error ack,
an unexpected exception is logged with its correlation id and becomes ``internal``."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pm_hub.logs import correlation_id
from pm_hub.protocol import ErrorCode, ProtocolError, error_ack

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[dict[str, Any]]]


def _size(payload: Any) -> int:
    try:
        return len(json.dumps(payload, separators=(",", ":"), default=str))
    except (TypeError, ValueError):
        return 0


def guarded(
    event: str,
    fn: Handler,
    *,
    max_bytes: int,
    on_answer: Callable[[str, dict[str, Any]], None] | None = None,
) -> Callable[..., Awaitable[Any]]:
    """Wrap ``fn(sid, payload)`` so it always answers with an ack dict; ``on_answer``
    sees every (event, ack) for metrics."""

    @functools.wraps(fn)
    async def wrapper(sid: str, *args: Any) -> dict[str, Any]:
        ack = await answer(sid, *args)
        if on_answer is not None:
            on_answer(event, ack)
        return ack

    async def answer(sid: str, *args: Any) -> dict[str, Any]:
        if len(args) > 1:
            return error_ack(ErrorCode.INVALID_PAYLOAD, f"{event} takes one payload object")
        payload = args[0] if args else None
        if payload is not None and _size(payload) > max_bytes:
            return error_ack(ErrorCode.INVALID_PAYLOAD, f"payload larger than {max_bytes} bytes")
        token = correlation_id.set(
            payload.get("correlation_id") if isinstance(payload, dict) else None
        )
        try:
            return await fn(sid, payload)
        except ProtocolError as exc:
            return exc.to_ack()
        except Exception:
            cid = payload.get("correlation_id") if isinstance(payload, dict) else None
            log.exception("[%s] handler for %s failed", cid or "-", event)
            return error_ack(ErrorCode.INTERNAL, "internal error; the hub logged it")
        finally:
            correlation_id.reset(token)

    return wrapper
