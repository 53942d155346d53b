"""The colour legend shown in the help (``?``): every coloured word and glyph the
dashboard draws, in the colour it draws it, with what it means. Built from the same
tables the screens use, so it cannot drift from them."""

from __future__ import annotations

from rich.text import Text

from pm_tui.formatting import JOB_STYLE, LEVEL_STYLE, SEVERITY_STYLE, STATUS_STYLE
from pm_tui.widgets.uptime import BEAT_STYLE

MEANINGS = {
    "green": "fine",
    "yellow": "needs someone soon",
    "red": "cannot print / failed",
}
BEAT_WORDS = {
    "up": "up",
    "degraded": "prints, needs someone",
    "down": "cannot print",
    "none": "not known",
}


def _row(title: str, items: list[tuple[str, str]]) -> Text:
    line = Text.assemble((f"  {title:<10} ", "bold"))
    for index, (word, style) in enumerate(items):
        if index:
            line.append(" ")
        line.append(word, style=style or None)
    return line


def legend_text() -> Text:
    printers = [STATUS_STYLE[s] for s in STATUS_STYLE] + [("PAUSED", "bold magenta")]
    jobs = [JOB_STYLE[s] for s in JOB_STYLE]
    alerts = [SEVERITY_STYLE[s] for s in SEVERITY_STYLE]
    logs = [LEVEL_STYLE[s] for s in LEVEL_STYLE]
    beats = [
        (f"{glyph} {BEAT_WORDS[state]}", style) for state, (glyph, style) in BEAT_STYLE.items()
    ]
    lines = [
        Text("Colours (the words say it too; colours only help)", style="bold"),
        Text.assemble(
            "  ",
            ("green", "green"),
            f" {MEANINGS['green']} · ",
            ("yellow", "yellow"),
            f" {MEANINGS['yellow']} · ",
            ("red", "bold red"),
            f" {MEANINGS['red']} · ",
            ("magenta", "magenta"),
            " held (paused, expired) · ",
            ("cyan", "cyan"),
            " on its way · ",
            ("dim", "dim"),
            " not known / done with",
        ),
        _row("Printers", printers[:4]),
        _row("", printers[4:]),
        _row("Jobs", jobs[:4]),
        _row("", jobs[4:]),
        _row("Alerts", alerts),
        _row("Logs", logs),
        _row("Heartbeat", beats),
        _row("Rows", [("▸ cursor", "reverse"), ("* marked (space)", "bold")]),
    ]
    return Text("\n").join(lines)
