"""Static text that repaints only when its content really changed.

Updating a Static always schedules a repaint (and, with ``height: auto``, a new
layout of the screen). Under a burst of hub events most updates carry the same
text; ``show`` skips those.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def _key(content: str | Text) -> tuple[str, tuple[object, ...], str]:
    if isinstance(content, Text):
        return (content.plain, tuple(content.spans), str(content.style))
    return (content, (), "")


def show(widget: Static, content: str | Text) -> bool:
    """``widget.update(content)`` unless it already shows exactly that. True if updated."""
    key = _key(content)
    if getattr(widget, "_pm_shown", None) == key:
        return False
    widget._pm_shown = key  # type: ignore[attr-defined]
    widget.update(content)
    return True
