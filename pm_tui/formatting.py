"""How values look on screen: words first, colour second (readable in monochrome)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from pm_tui.data.filters import STATUS_ORDER

__all__ = ["STATUS_ORDER"]

STATUS_STYLE = {
    "online": ("ONLINE", "bold green"),
    "paper_low": ("PAPER LOW", "bold yellow"),
    "paper_out": ("PAPER OUT", "bold red"),
    "cover_open": ("COVER OPEN", "bold red"),
    "error": ("ERROR", "bold red"),
    "offline": ("OFFLINE", "bold red"),
    "unknown": ("UNKNOWN", "dim"),
}
JOB_STYLE = {
    "queued": ("QUEUED", "yellow"),
    "dispatched": ("DISPATCHED", "cyan"),
    "printing": ("PRINTING", "bold cyan"),
    "completed": ("COMPLETED", "green"),
    "failed": ("FAILED", "bold red"),
    "cancelled": ("CANCELLED", "dim"),
    "expired": ("EXPIRED", "bold magenta"),
}
SEVERITY_STYLE = {
    "critical": ("CRIT", "bold red"),
    "warning": ("WARN", "bold yellow"),
    "info": ("INFO", "cyan"),
}
ALERT_STATE_STYLE = {
    "open": ("OPEN", "bold"),
    "acknowledged": ("ACKED", ""),
    "cleared": ("CLEARED", "dim"),
}
#: Log levels (the Logs tab).
LEVEL_STYLE = {
    "debug": ("DEBUG", "dim"),
    "info": ("INFO", ""),
    "warning": ("WARN", "bold yellow"),
    "error": ("ERROR", "bold red"),
    "critical": ("CRIT", "bold red reverse"),
}
FLAG_WORDS = {
    "paper_end": "paper end",
    "paper_near_end": "paper low",
    "cover_open": "cover open",
    "offline": "offline",
    "cutter_error": "cutter error",
    "unrecoverable_error": "unrecoverable error",
    "auto_recoverable_error": "auto-recoverable error",
    "recoverable_error": "recoverable error",
    "drawer_open": "drawer open",
    "feed_button": "feed button",
    "unreachable": "unreachable",
    "status_unsupported": "no status support",
    "agent_disconnected": "agent disconnected",
}


def status_text(status: str, *, paused: bool = False) -> Text:
    """The status word (``PAUSED`` for a paused printer that is otherwise fine)."""
    if paused and status in ("online", "paper_low", "unknown"):
        return Text("PAUSED", style="bold magenta")
    word, style = STATUS_STYLE.get(status, (status.upper(), ""))
    return Text(word, style=style)


def job_status_text(status: str) -> Text:
    word, style = JOB_STYLE.get(status, (status.upper(), ""))
    return Text(word, style=style)


def severity_text(severity: str) -> Text:
    word, style = SEVERITY_STYLE.get(severity, (severity.upper()[:4], ""))
    return Text(word, style=style)


def alert_state_text(state: str) -> Text:
    word, style = ALERT_STATE_STYLE.get(state, (state.upper(), ""))
    return Text(word, style=style)


def level_text(level: str) -> Text:
    word, style = LEVEL_STYLE.get(level, (level.upper()[:5], ""))
    return Text(word, style=style)


def flags_text(flags: Any) -> str:
    if not isinstance(flags, dict):
        return ""
    return ", ".join(FLAG_WORDS.get(k, k.replace("_", " ")) for k, v in flags.items() if v)


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
    seconds = max(0, int((time.time() if now is None else now) - timestamp))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def duration(seconds: float | None) -> str:
    """``3d 2h``, ``1h 30m``, ``4m``, ``12s``."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


def ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def percent(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value * 100:.0f}%" if value >= 0.01 or value == 0 else f"{value * 100:.1f}%"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
