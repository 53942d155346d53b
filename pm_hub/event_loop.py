"""Which asyncio event loop the hub, agent and simulator run on.

uvloop (libuv) when it is installed and ``PM_EVENT_LOOP`` does not say ``asyncio``:
the hub's work is mostly small socket writes (one per websocket message), which uvloop
does at a fraction of the default selector loop's cost (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


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
