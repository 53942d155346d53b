"""Figures, their targets and ratios to the bare relay; the table and the JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Target:
    """A goal from issue 7: ``value OP threshold`` (and optionally ``<= ratio_max`` x bare)."""

    op: str  # "<", "<=", ">=" or ">"
    threshold: float
    ratio_max: float | None = None

    def text(self, unit: str) -> str:
        base = f"{self.op} {_num(self.threshold)} {unit}".strip()
        return base + (f", <= {_num(self.ratio_max)}x bare" if self.ratio_max else "")

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        if value is None:
            return None
        ok = {
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            ">=": value >= self.threshold,
            ">": value > self.threshold,
        }[self.op]
        if self.ratio_max is not None and ratio is not None:
            ok = ok and ratio <= self.ratio_max
        return ok


@dataclass
class Figure:
    key: str
    label: str
    value: float | None
    unit: str
    target: Target | None = None
    bare_key: str | None = None
    """Key of the same figure measured against the bare relay (for the ratio)."""
    note: str = ""
    bare: float | None = None
    ratio: float | None = None
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.text(self.unit) if self.target else None
        return data


@dataclass
class ScenarioResult:
    name: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure


def resolve(results: list[ScenarioResult]) -> list[Figure]:
    """Every figure, with its bare-relay value, ratio and whether its target is met."""
    figures = [f for r in results for f in r.figures]
    by_key = {f.key: f for f in figures}
    for figure in figures:
        bare = by_key.get(figure.bare_key) if figure.bare_key else None
        if bare is not None and bare.value not in (None, 0) and figure.value is not None:
            assert bare.value is not None
            figure.bare = bare.value
            figure.ratio = round(figure.value / bare.value, 2)
        if figure.target is not None:
            figure.met = figure.target.met(figure.value, figure.ratio)
    return figures


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _value(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{_num(value)} {unit}".strip()


def render_table(results: list[ScenarioResult]) -> str:
    """The table ``pm bench`` prints: one row per figure, grouped by scenario."""
    figures = resolve(results)
    rows = [("figure", "value", "bare relay", "x bare", "target", "met")]
    groups: list[tuple[str, list[tuple[str, ...]]]] = []
    for result in results:
        lines: list[tuple[str, ...]] = []
        for f in result.figures:
            lines.append(
                (
                    f"  {f.label}",
                    _value(f.value, f.unit),
                    _value(f.bare, f.unit) if f.bare is not None else "",
                    f"{f.ratio:.2f}x" if f.ratio is not None else "",
                    f.target.text(f.unit) if f.target else "",
                    "" if f.met is None else ("yes" if f.met else "NO"),
                )
            )
        if result.error:
            lines.append((f"  FAILED: {result.error.splitlines()[0][:90]}", "", "", "", "", ""))
        groups.append((f"{result.name} ({result.seconds:.0f}s)", lines))
    flat = rows + [line for _name, lines in groups for line in lines]
    widths = [max(len(r[i]) for r in flat) for i in range(6)]
    widths[0] = max(widths[0], max((len(n) for n, _ in groups), default=0))

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        cells[-2] = row[-2].ljust(widths[-2])  # target reads better left-aligned
        return "  ".join(cells).rstrip()

    out = [fmt(rows[0]), "-" * len(fmt(rows[0]))]
    for name, lines in groups:
        out.append(name)
        out.extend(fmt(line) for line in lines)
    missed = [f for f in figures if f.met is False]
    out.append("")
    out.append(
        f"{sum(1 for f in figures if f.met)} of {sum(1 for f in figures if f.met is not None)} "
        f"targets met" + (f"; missed: {', '.join(f.key for f in missed)}" if missed else "")
    )
    return "\n".join(out)


def to_json(
    results: list[ScenarioResult], *, machine: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    figures = resolve(results)
    return {
        "run": run,
        "machine": machine,
        "figures": [f.to_json() for f in figures],
        "scenarios": {
            r.name: {
                "seconds": round(r.seconds, 1),
                "error": r.error,
                "figures": [f.key for f in r.figures],
                "details": r.details,
            }
            for r in results
        },
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
