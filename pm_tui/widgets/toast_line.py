"""Toasts on the header's own line: while one shows, it takes the top bar but for the
alert and problem counts (the link, the clock and, on a narrow screen, the branch come
back when it goes), so a toast never covers a table row, a detail pane or the tab bar.

The newest leads; the one before it follows when there is room. Each is one line, led
by a bar in its severity's colour and cut with an ellipsis where its room ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.errors import MarkupError
from rich.text import Text
from textual.notifications import Notification

#: Colour of each severity's bar (and of the words of a warning or an error).
SEVERITY_COLOURS = {"information": "green", "warning": "yellow", "error": "red"}
#: Toasts on the line at most (``MAX_TOASTS`` in the app keeps no more anyway).
SHOWN = 2
#: An older toast is left out rather than cut to fewer cells than this.
OLDER_AT_LEAST = 12
#: Between two toasts.
GAP = "  "
#: The branch's name leads the line only when the toasts keep this much room.
TOASTS_AT_LEAST = 40


def _words(notification: Notification) -> Text:
    message = " · ".join(line.strip() for line in notification.message.splitlines() if line)
    if notification.markup:
        try:
            return Text.from_markup(message)
        except MarkupError:
            pass
    return Text(message)


def one_toast(notification: Notification) -> Text:
    """``▌ message``: the bar in the severity's colour; a warning's or an error's words too."""
    colour = SEVERITY_COLOURS.get(notification.severity, "green")
    words = _words(notification)
    words.stylize(f"bold {colour}" if notification.severity != "information" else "bold")
    return Text.assemble(("▌ ", colour), words)


def toast_text(newest_first: Sequence[Notification], width: int) -> Text:
    """The toasts for ``width`` cells, newest first (an empty Text: none)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    for notification in newest_first[:SHOWN]:
        room = width - line.cell_len - (len(GAP) if line else 0)
        if line and room < OLDER_AT_LEAST:
            break
        piece = one_toast(notification)
        if piece.cell_len > room:
            piece.truncate(room, overflow="ellipsis")
        if line:
            line.append(GAP)
        line.append_text(piece)
    return line


def toast_line(newest_first: Sequence[Notification], title: str, counts: Text, width: int) -> Text:
    """The header's line while toasts show: ``title`` (where there is room), the
    toasts, then ``counts`` at the right end, in ``width`` cells."""
    room = width - counts.cell_len - 2
    lead = Text()
    if len(title) + 2 + TOASTS_AT_LEAST <= room:
        lead = Text(title + "  ", style="bold")
        room -= lead.cell_len
    toasts = toast_text(newest_first, room)
    line = Text.assemble(lead, toasts, no_wrap=True, overflow="ellipsis")
    line.append(" " * max(2, width - line.cell_len - counts.cell_len))
    line.append_text(counts)
    return line
