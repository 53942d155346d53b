"""Helpers for the dashboard tests: run the app against a hub, wait, read the screen."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from pm_tui.app import PrinterMasterApp
from pm_tui.widgets.tables import LiveTable

SIZE = (80, 24)


async def wait_until(
    pilot: Pilot[Any], check: Callable[[], Any], timeout: float = 10, what: str = "condition"
) -> Any:
    """Let the app run until ``check()`` is truthy (and return it)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the screen may be between states
            last = exc
        else:
            if last:
                return last
        await pilot.pause(0.05)
    raise AssertionError(f"dashboard: {what} not reached in {timeout}s (last: {last!r})")


def rows(app: PrinterMasterApp, selector: str) -> list[list[str]]:
    """The visible rows of a table, top to bottom, as plain text."""
    table = app.screen.query_one(selector, LiveTable)
    return [[table.cell_text(row_id, key) for key in table.column_keys] for row_id in table.row_ids]


def column(app: PrinterMasterApp, selector: str, key: str) -> list[str]:
    table = app.screen.query_one(selector, LiveTable)
    return [table.cell_text(row_id, key) for row_id in table.row_ids]


def text(app: PrinterMasterApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def toasts(app: PrinterMasterApp) -> list[str]:
    return [n.message for n in app._notifications]


async def select_row(pilot: Pilot[Any], selector: str, row_id: int) -> None:
    table = pilot.app.screen.query_one(selector, LiveTable)
    table.focus()
    assert table.select(row_id), f"no row {row_id} in {selector}"
    await pilot.pause()


@asynccontextmanager
async def dashboard(
    url: str, token: str, *, size: tuple[int, int] = SIZE, **kwargs: Any
) -> AsyncIterator[tuple[PrinterMasterApp, Pilot[Any]]]:
    """The dashboard connected to a real hub, printers loaded."""
    app = PrinterMasterApp(hub_url=url, token=token, **kwargs)
    async with app.run_test(size=size) as pilot:
        yield app, pilot


async def ready(pilot: Pilot[Any], printers: int = 2) -> None:
    """Wait until the dashboard shows ``printers`` printers, all ONLINE."""
    app = pilot.app
    assert isinstance(app, PrinterMasterApp)
    await wait_until(
        pilot,
        lambda: column(app, "#printers", "status").count("ONLINE") == printers,
        what=f"{printers} printers online",
    )


async def type_text(pilot: Pilot[Any], value: str, *, submit: bool = True) -> None:
    """Put ``value`` in the focused input (as if typed; key by key is slow) and submit it."""
    from textual.widgets import Input

    field = pilot.app.focused
    assert isinstance(field, Input), f"focus is on {field!r}, not an input"
    field.value = value
    await pilot.pause()
    if submit:
        await pilot.press("enter")


async def shows(pilot: Pilot[Any], selector: str, *words: str, timeout: float = 5) -> str:
    """Wait until the Static at ``selector`` shows every word (headers redraw a few
    times a second, not on every event)."""
    app = pilot.app
    assert isinstance(app, PrinterMasterApp)
    found: str = await wait_until(
        pilot,
        lambda: (t := text(app, selector)) and all(w in t for w in words) and t,
        timeout=timeout,
        what=f"{words} in {selector}",
    )
    return found
