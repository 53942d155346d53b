"""How values look on screen: status words with colour (readable in monochrome too)."""

from __future__ import annotations

import time

from rich.text import Text

STATUS_STYLE = {
    "online": ("ONLINE", "bold green"),
    "paper_low": ("PAPER LOW", "bold yellow"),
    "paper_out": ("PAPER OUT", "bold red"),
    "cover_open": ("COVER OPEN", "bold red"),
    "error": ("ERROR", "bold red"),
    "offline": ("OFFLINE", "bold red"),
    "unknown": ("UNKNOWN", "dim"),
}
#: Lower sorts first: problems at the top.
STATUS_ORDER = {
    "error": 0,
    "paper_out": 1,
    "cover_open": 2,
    "offline": 3,
    "paper_low": 4,
    "unknown": 5,
    "online": 6,
}


def status_text(status: str) -> Text:
    word, style = STATUS_STYLE.get(status, (status.upper(), ""))
    return Text(word, style=style)


def paper_text(status: str, flags: dict[str, bool]) -> str:
    if status == "paper_out" or flags.get("paper_end"):
        return "out"
    if status == "paper_low" or flags.get("paper_near_end"):
        return "low"
    if status in ("offline", "unknown"):
        return "?"
    return "ok"


def ago(timestamp: float | None, now: float | None = None) -> str:
    if not timestamp:
        return "never"
    seconds = max(0, int((now or time.time()) - timestamp))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
