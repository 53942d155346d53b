"""The footer: ``? help`` and ``q quit`` first, so they stay when the terminal is too
narrow for every key (Textual's footer cuts from the right, where the app's own keys
are, and docks the palette key over the last ones: ``palettei``; the palette, ctrl+p,
is in the help)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

#: The app's actions always shown, in this order, before the screen's keys.
FIRST = ("help", "quit")


def _rank(widget: object) -> int:
    action = getattr(widget, "action", None)
    return FIRST.index(action) if action in FIRST else len(FIRST)


class DashboardFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def compose(self) -> ComposeResult:
        # sorted() is stable: the screen's keys keep their order after help and quit.
        yield from sorted(super().compose(), key=_rank)
