"""Stopping background tasks for good.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives in the
same loop iteration as the awaited event (fixed in 3.12), so a loop like
``while True: await asyncio.wait_for(event.wait(), 5)`` may carry on after one
``cancel()``. :func:`cancel_tasks` cancels until every task has really ended.
:class:`BackgroundTasks` keeps fire-and-forget tasks alive until they end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_tasks(tasks: Iterable[asyncio.Task[Any]], *, attempts: int = 50) -> None:
    pending = [t for t in tasks if not t.done()]
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)
        pending = [t for t in pending if not t.done()]
    for task in pending:
        log.warning("task %s did not stop", task.get_name())


class BackgroundTasks:
    """Tasks started from a socket handler or a callback and not awaited there (a
    registration after a connect, a test print): each is kept referenced until it
    ends, because the event loop itself holds only a weak reference to a task."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
