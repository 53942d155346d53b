"""Latency charts: a one-line sparkline with figures, and a full plot for the agents screen."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from pm_tui.formatting import ms, percent
from pm_tui.widgets.quiet import show

#: A ``health:summary`` entry for one agent (``latency_ms``, ``series``, ...).
Health = dict[str, Any]


def latency_summary(health: Health | None) -> str:
    latency = (health or {}).get("latency_ms") or {}
    if not health or not isinstance(latency.get("avg"), int | float):
        values = latency_values(health)
        # Pings have come in, the agent's first report (avg, p95) not yet.
        return f"{ms(values[-1])} ms last ping" if values else "no figures yet"
    return (
        f"{ms(latency.get('avg'))} ms avg · p95 {ms(latency.get('p95'))} ms"
        f" · loss {percent(health.get('packet_loss'))}"
    )


def latency_values(health: Health | None) -> list[float]:
    series = (health or {}).get("series") or []
    return [
        float(p["latency_ms"])
        for p in series
        if isinstance(p, dict) and isinstance(p.get("latency_ms"), int | float)
    ]


class LatencyLine(Horizontal):
    """``latency ▁▁▂▁▃▁  3 ms avg · p95 5 ms · loss 0%`` for one agent."""

    def compose(self) -> ComposeResult:
        yield Static("latency", classes="latency-label")
        yield Sparkline([], classes="latency-spark")
        yield Static("", classes="latency-figures")

    def show(self, health: Health | None, *, unsupported: bool = False) -> None:
        spark = self.query_one(Sparkline)
        figures = self.query_one(".latency-figures", Static)
        values = latency_values(health)
        spark.data = values or [0.0]
        spark.display = len(values) > 1  # one value would fill the whole line
        if unsupported:
            show(figures, Text("no figures: this hub has no health:summary", style="dim"))
        else:
            show(figures, latency_summary(health))


class LatencyPlot(PlotextPlot):
    """Latency over the last hour, one point per minute."""

    def show(self, health: Health | None, *, title: str, now: float) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        series = (health or {}).get("series") or []
        points = [
            (round((float(p["at"]) - now) / 60, 1), float(p["latency_ms"]))
            for p in series
            if isinstance(p, dict)
            and isinstance(p.get("at"), int | float)
            and isinstance(p.get("latency_ms"), int | float)
        ]
        plt.title(title)
        plt.xlabel("minutes ago")
        plt.ylabel("ms")
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(list(xs), list(ys), marker="braille")
            plt.xlim(-60, 0)
            plt.ylim(0, max(max(ys) * 1.2, 1.0))
        self.refresh()
