"""Which asyncio event loop the hub, agent and simulator run on, and running a service
on it until a signal stops it.

uvloop (libuv) when it is installed and ``PM_EVENT_LOOP`` does not say ``asyncio``:
the hub's work is mostly small socket writes (one per websocket message), which uvloop
does at a fraction of the default selector loop's cost (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A loop factory for :class:`asyncio.Runner` (None: the default loop)."""
    if os.environ.get("PM_EVENT_LOOP", "uvloop").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def event_loop_name() -> str:
    return "asyncio (default selector loop)" if event_loop_factory() is None else "uvloop"


def run_until_signalled(coro: Coroutine[Any, Any, int | None]) -> int:
    """Run a service until it returns or until SIGINT/SIGTERM, then let it shut down
    cleanly (its ``finally`` blocks run); the exit code it returned, else 0."""

    async def main() -> int | None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            return await task
        except asyncio.CancelledError:
            return 0

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main()) or 0
