"""Requests in flight between an operator and an agent, matched by correlation id.

``register`` hands out an id and a future. The agent's answer resolves it; if
none comes within ``timeout`` seconds the future resolves to a ``timeout`` error
(the caller is told, never left waiting). Entries stay ``stale_after`` seconds
after they were created so a late answer is recognised and logged, then a
cleanup pass removes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pm_core.protocol import ErrorCode, error_ack, new_correlation_id

log = logging.getLogger(__name__)


@dataclass
class PendingRequest:
    correlation_id: str
    kind: str
    created: float
    future: asyncio.Future[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    resolved_at: float | None = None
    on_done: Callable[[PendingRequest, dict[str, Any]], Any] | None = None


class CorrelationRegistry:
    def __init__(self, *, timeout: float = 15.0, stale_after: float = 60.0) -> None:
        if timeout <= 0 or stale_after <= 0:
            raise ValueError("timeout and stale_after must be positive")
        self.timeout = timeout
        self.stale_after = stale_after
        self._pending: dict[str, PendingRequest] = {}
        self._cleanup_task: asyncio.Task[None] | None = None
        self.timeouts = 0
        self.late_answers = 0
        self.on_resolved: Callable[[PendingRequest, float], None] | None = None

    def __len__(self) -> int:
        return sum(1 for p in self._pending.values() if p.resolved_at is None)

    def pending_by_kind(self) -> dict[str, int]:
        """How many requests of each kind still wait for their answer."""
        counts: dict[str, int] = {}
        for pending in self._pending.values():
            if pending.resolved_at is None:
                counts[pending.kind] = counts.get(pending.kind, 0) + 1
        return counts

    def register(
        self,
        kind: str,
        *,
        timeout: float | None = None,
        on_done: Callable[[PendingRequest, dict[str, Any]], Any] | None = None,
        **meta: Any,
    ) -> PendingRequest:
        loop = asyncio.get_running_loop()
        cid = new_correlation_id(kind)
        pending = PendingRequest(
            correlation_id=cid,
            kind=kind,
            created=time.monotonic(),
            future=loop.create_future(),
            meta=meta,
            on_done=on_done,
        )
        pending.timer = loop.call_later(timeout or self.timeout, self._expire, cid)
        self._pending[cid] = pending
        return pending

    def get(self, correlation_id: str) -> PendingRequest | None:
        return self._pending.get(correlation_id)

    def resolve(self, correlation_id: str, result: dict[str, Any]) -> bool:
        """Deliver the answer; False if the id is unknown, already answered or timed out."""
        pending = self._pending.get(correlation_id)
        if pending is None:
            log.warning("answer for unknown correlation id %s", correlation_id)
            return False
        if pending.resolved_at is not None:
            self.late_answers += 1
            log.warning(
                "late answer for %s (already %s)",
                correlation_id,
                "timed out" if pending.meta.get("timed_out") else "answered",
            )
            return False
        self._finish(pending, result)
        if self.on_resolved is not None:
            self.on_resolved(pending, time.monotonic() - pending.created)
        return True

    def fail(self, correlation_id: str, code: ErrorCode, message: str) -> bool:
        pending = self._pending.get(correlation_id)
        if pending is None or pending.resolved_at is not None:
            return False
        self._finish(pending, error_ack(code, message))
        return True

    def fail_where(self, code: ErrorCode, message: str, **meta: Any) -> int:
        """Fail every unanswered request whose meta has these values (say the agent it
        waits on went away); returns how many."""
        failed = 0
        for pending in list(self._pending.values()):
            if pending.resolved_at is None and all(
                pending.meta.get(key) == value for key, value in meta.items()
            ):
                failed += self.fail(pending.correlation_id, code, message)
        return failed

    def _expire(self, correlation_id: str) -> None:
        pending = self._pending.get(correlation_id)
        if pending is None or pending.resolved_at is not None:
            return
        self.timeouts += 1
        pending.meta["timed_out"] = True
        log.info("request %s timed out after %.1fs", correlation_id, self.timeout)
        self._finish(
            pending,
            error_ack(
                ErrorCode.TIMEOUT, "no answer from the agent in time", correlation_id=correlation_id
            ),
        )

    def _finish(self, pending: PendingRequest, result: dict[str, Any]) -> None:
        pending.resolved_at = time.monotonic()
        if pending.timer is not None:
            pending.timer.cancel()
        if not pending.future.done():
            pending.future.set_result(result)
        if pending.on_done is not None:
            try:
                outcome = pending.on_done(pending, result)
                if asyncio.iscoroutine(outcome):
                    task = asyncio.ensure_future(outcome)
                    _background.add(task)
                    task.add_done_callback(_background.discard)
            except Exception:
                log.exception("callback for %s failed", pending.correlation_id)

    def cleanup(self, now: float | None = None) -> int:
        """Drop entries older than ``stale_after``; returns how many went."""
        now = time.monotonic() if now is None else now
        stale = [cid for cid, p in self._pending.items() if now - p.created >= self.stale_after]
        for cid in stale:
            pending = self._pending.pop(cid)
            if pending.resolved_at is None:
                self._expire_now(pending)
        return len(stale)

    def _expire_now(self, pending: PendingRequest) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        if not pending.future.done():
            pending.future.set_result(error_ack(ErrorCode.TIMEOUT, "request went stale"))

    async def run_cleanup(self, interval: float | None = None) -> None:
        interval = interval or min(self.stale_after / 2, 30.0)
        while True:
            await asyncio.sleep(interval)
            removed = self.cleanup()
            if removed:
                log.debug("removed %d stale correlation entries", removed)

    def start(self) -> None:
        if self._cleanup_task is None:
            self._cleanup_task = asyncio.create_task(self.run_cleanup())

    async def stop(self) -> None:
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
            try:
                await self._cleanup_task
            except asyncio.CancelledError:
                pass
            self._cleanup_task = None
        for pending in list(self._pending.values()):
            if pending.resolved_at is None:
                self._expire_now(pending)
        self._pending.clear()


_background: set[asyncio.Future[Any]] = set()


def printer_test_done(
    printer_id: int, on_result: Callable[[dict[str, Any]], Any] | None
) -> Callable[[PendingRequest, dict[str, Any]], Any]:
    """The ``on_done`` of a ``printer:test`` request registered now: hands
    ``on_result`` the ``printer:test:completed`` payload (the round trip counted from
    this call; a failure without an error says ``test print failed``)."""
    started = time.monotonic()

    def done(pending: PendingRequest, result: dict[str, Any]) -> Any:
        completed = {
            "correlation_id": pending.correlation_id,
            "printer_id": printer_id,
            "ok": bool(result.get("ok")),
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
        }
        if not result.get("ok"):
            completed["error"] = result.get("error") or {
                "code": ErrorCode.INTERNAL,
                "message": "test print failed",
            }
        return on_result(completed) if on_result is not None else None

    return done
