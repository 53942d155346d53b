"""A dashboard process started before anyone opens the page, so the browser shows the
dashboard at once instead of a splash screen for the seconds a new ``pm tui`` takes
to start (Python, Textual, the hub link).

textual-serve starts one dashboard process per browser tab when the tab's WebSocket
opens. The web server keeps one such process ready (a :class:`SpareDashboard`): its
output waits in a bounded buffer until a tab takes it over; then the buffer goes to
the tab, the terminal takes the tab's size (the dashboard redraws for it), and the
next spare starts. The spare counts against the cap on dashboards open at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

log = logging.getLogger(__name__)

#: Output a spare may hold before a tab takes it (its start-up frames are ~50 KB).
BUFFER_LIMIT = 1024 * 1024
#: What is kept of the start (terminal set-up: modes, mouse, the first frame) when a
#: spare that waited long overflows; the rest is redrawn when a tab takes it.
HEAD_LIMIT = 256 * 1024


class Target:
    """Where a spare's output goes once a tab took it (the tab's WebSocket)."""

    def __init__(
        self,
        send_bytes: Callable[[bytes], Awaitable[None]],
        send_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[Any]],
    ) -> None:
        self.send_bytes = send_bytes
        self.send_str = send_str
        self.close = close


class SpareDashboard:
    """A started dashboard process nobody watches yet, and its buffered output."""

    def __init__(
        self,
        command: str,
        *,
        width: int,
        height: int,
        download_manager: DownloadManager,
        debug: bool = False,
    ) -> None:
        self.width = width
        self.height = height
        self._held: list[tuple[bool, bytes | str]] = []  # (is bytes, data)
        self._held_size = 0
        self._head_done = False
        #: Output was dropped while waiting: the tab that takes it needs a full redraw.
        self.overflowed = False
        self.target: Target | None = None
        #: The process ended (or asked to close) before any tab took it.
        self.dead = False
        self.service = AppService(
            command,
            write_bytes=self._write_bytes,
            write_str=self._write_str,
            close=self._close,
            download_manager=download_manager,
            debug=debug,
        )

    async def start(self) -> None:
        await self.service.start(self.width, self.height)

    @property
    def alive(self) -> bool:
        task = self.service._task
        return not self.dead and task is not None and not task.done()

    def _hold(self, is_bytes: bool, data: bytes | str) -> None:
        size = len(data)
        if self._held_size + size > BUFFER_LIMIT:
            # Keep the start, drop what came after it: the tab gets a full redraw.
            kept, total = [], 0
            for item in self._held:
                if total + len(item[1]) > HEAD_LIMIT:
                    break
                kept.append(item)
                total += len(item[1])
            self._held, self._held_size = kept, total
            self.overflowed = True
            return
        self._held.append((is_bytes, data))
        self._held_size += size

    async def _write_bytes(self, data: bytes) -> None:
        if self.target is not None:
            await self.target.send_bytes(data)
        else:
            self._hold(True, data)

    async def _write_str(self, data: str) -> None:
        if self.target is not None:
            await self.target.send_str(data)
        else:
            self._hold(False, data)

    async def _close(self) -> None:
        if self.target is not None:
            await self.target.close()
        else:
            self.dead = True

    async def hand_over(self, target: Target, width: int, height: int) -> None:
        """A tab takes this dashboard: what it wrote so far, then the tab's size."""
        held, self._held, self._held_size = self._held, [], 0
        for is_bytes, data in held:
            if is_bytes:
                assert isinstance(data, bytes)
                await target.send_bytes(data)
            else:
                assert isinstance(data, str)
                await target.send_str(data)
        self.target = target
        if self.overflowed:
            # Output was dropped: step through another size so the whole screen redraws.
            await self.service.set_terminal_size(width, height + 1)
        await self.service.set_terminal_size(width, height)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.service.stop(), 5)
        except Exception:
            log.debug("the spare dashboard did not stop cleanly", exc_info=True)
