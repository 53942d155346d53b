"""A printer's uptime and activity, as ``printer:get`` reports them: availability over
24 h and 7 days with a heartbeat bar (one cell per half hour, the worst state in it),
and a chart of tickets a minute and their print time over the last hour."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from pm_tui.widgets.quiet import show

#: Heartbeat cells: a glyph that reads in monochrome and a colour that helps.
BEAT_STYLE = {
    "up": ("█", "green"),
    "degraded": ("▄", "yellow"),
    "down": ("▁", "bold red"),
    "none": ("·", "dim"),
}
PRINTING_STATES = ("online", "paper_low")


def beat_state(status: str | None) -> str:
    """The heartbeat state of a printer status (as the hub computes it)."""
    if status is None:
        return "none"
    if status in ("offline", "paper_out", "cover_open", "error"):
        return "down"
    return "up" if status == "online" else "degraded"


def share_text(value: Any) -> Text:
    if not isinstance(value, int | float):
        return Text("-", style="dim")
    percent = value * 100
    style = "green" if percent >= 99 else "yellow" if percent >= 95 else "bold red"
    shown = f"{percent:.1f}%" if percent < 100 else "100%"
    return Text(shown, style=style)


def heartbeat_text(cells: list[str], width: int | None = None) -> Text:
    shown = cells[-width:] if width else cells
    text = Text()
    for cell in shown:
        glyph, style = BEAT_STYLE.get(cell, BEAT_STYLE["none"])
        text.append(glyph, style=style)
    return text


class UptimeLine(Static):
    """``available 24h 99.2% · 7d 97.0%  ████▄▄██▁▁█…`` (24 h, half an hour a cell)."""

    DEFAULT_CSS = """
    UptimeLine {
        height: 1;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uptime: dict[str, Any] | None = None
        self.unsupported = False

    def show_uptime(self, uptime: Any) -> None:
        self.uptime = uptime if isinstance(uptime, dict) else None
        self.unsupported = not isinstance(uptime, dict)
        self._draw()

    def status_now(self, status: str | None) -> None:
        """The printer changed status: the newest cell shows the worst of the two."""
        beats = (self.uptime or {}).get("heartbeat") or {}
        cells = beats.get("cells")
        if not isinstance(cells, list) or not cells:
            return
        rank = {"none": 0, "up": 1, "degraded": 2, "down": 3}
        new = beat_state(status)
        if rank[new] > rank.get(cells[-1], 0):
            cells[-1] = new
            self._draw()

    def _draw(self) -> None:
        if self.unsupported or self.uptime is None:
            show(self, Text("availability: not reported by this hub", style="dim"))
            return
        shares = self.uptime.get("availability") or {}
        cells = [str(c) for c in (self.uptime.get("heartbeat") or {}).get("cells") or ()]
        line = Text.assemble(
            ("available ", "bold"),
            "24h ",
            share_text(shares.get("24h")),
            " · 7d ",
            share_text(shares.get("7d")),
            "  ",
        )
        room = max(0, (self.size.width or 80) - line.cell_len - 2)
        line.append_text(heartbeat_text(cells, min(room, len(cells))))
        show(self, line)

    def on_resize(self) -> None:
        if self.uptime is not None:
            self._draw()


class ActivityPlot(PlotextPlot):
    """Tickets printed per minute (bars) and their average print time (line, right axis)."""

    DEFAULT_CSS = """
    ActivityPlot {
        height: 1fr;
    }
    """

    def show_activity(self, activity: Any, *, title: str) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        if not isinstance(activity, dict) or not isinstance(activity.get("tickets"), list):
            plt.title(f"{title}: not reported by this hub")
            self.refresh()
            return
        tickets = [int(t) if isinstance(t, int) else 0 for t in activity["tickets"]]
        minutes = len(tickets)
        xs = [index - minutes + 1 for index in range(minutes)]
        plt.bar(xs, tickets, label="tickets/min", marker="sd")
        spent = [
            (x, float(ms) / 1000)
            for x, ms in zip(xs, activity.get("print_ms") or (), strict=False)
            if isinstance(ms, int | float)
        ]
        if spent:
            px, py = zip(*spent, strict=True)
            plt.plot(list(px), list(py), yside="right", label="print s", marker="braille")
        plt.xlabel("minutes ago")
        plt.xlim(-minutes, 1)
        plt.ylim(0, max(max(tickets) * 1.2, 1.0))
        self.refresh()
