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
import sys
from collections.abc import Callable, Coroutine
from typing import Any

#: The signals that stop a service cleanly (systemd sends SIGTERM, a terminal SIGINT).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def run_until_signalled(coro: Coroutine[Any, Any, int | None], *, name: str | None = None) -> int:
    """Run a service until it returns or until SIGINT/SIGTERM, then let it shut down
    cleanly (its ``finally`` blocks run); the exit code it returned, else 0.

    A stop signal is a planned stop: exit code 0, and with ``name`` one goodbye line on
    stderr (``pm up: stopped (SIGTERM)``). A second signal while the service shuts down
    is ignored (the first one's shutdown finishes)."""
    received: list[signal.Signals] = []

    async def main() -> int | None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()

        def stop(sig: signal.Signals) -> None:
            if not received:
                received.append(sig)
                task.cancel()

        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, stop, sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            return await task
        except asyncio.CancelledError:
            if not received:
                raise
            return 0

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        code = runner.run(main()) or 0
        # Keep the signals quiet until the runner has closed the loop: a late Ctrl-C
        # must not turn a clean stop into a KeyboardInterrupt traceback.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    if received and name:
        print(f"{name}: stopped ({received[0].name})", file=sys.stderr, flush=True)
    return code
