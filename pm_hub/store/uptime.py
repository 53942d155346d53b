"""A printer's availability, heartbeat and activity, from what the store keeps: its
status changes (``printer_events``) and its jobs (``jobs``, ``job_events``).

- **Availability** over a window: the share of the time whose status is known in
  which the printer could print (``online`` or ``paper_low``).
- **Heartbeat**: the last 24 hours in cells of ``HEARTBEAT_CELL_S``, each the worst
  state seen in it (``down`` > ``degraded`` > ``up``; ``none`` where nothing is known),
  as status pages draw them.
- **Activity**: per minute of the last hour, the tickets printed and their average
  print time (from ``printing`` to ``completed``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_core.sql import Session

DAY = 86400.0
WINDOWS = {"24h": DAY, "7d": 7 * DAY}
HEARTBEAT_CELL_S = 1800.0
HEARTBEAT_CELLS = 48
ACTIVITY_MINUTES = 60
#: Worst first.
STATE_RANK = {"down": 3, "degraded": 2, "up": 1, "none": 0}


def state_of(status: str | None) -> str:
    """``up``, ``degraded`` (prints, but needs someone: paper low, status unknown) or
    ``down`` (cannot print)."""
    if status is None:
        return "none"
    if status in PROBLEM_PRINTER_STATUSES:
        return "down"
    return "up" if status == "online" else "degraded"


Change = tuple[float, str]  # (at, status)


def segments(changes: Sequence[Change], start: float, end: float) -> list[tuple[float, float, str]]:
    """(from, to, status) pieces of ``[start, end)`` whose status is known; ``changes``
    in time order, the first one may be before ``start`` (the status it began with)."""
    pieces = []
    for index, (at, status) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            pieces.append((lo, hi, status))
    return pieces


def availability(changes: Sequence[Change], start: float, end: float) -> float | None:
    """The share of the known time in ``[start, end)`` the printer could print."""
    known = up = 0.0
    for lo, hi, status in segments(changes, start, end):
        known += hi - lo
        if state_of(status) != "down":
            up += hi - lo
    return round(up / known, 4) if known > 0 else None


def heartbeat(
    changes: Sequence[Change],
    end: float,
    *,
    cells: int = HEARTBEAT_CELLS,
    cell: float = HEARTBEAT_CELL_S,
) -> list[str]:
    """The state of each cell, oldest first (the last one ends at ``end``)."""
    start = end - cells * cell
    worst = ["none"] * cells
    for lo, hi, status in segments(changes, start, end):
        state = state_of(status)
        first = int((lo - start) // cell)
        last = min(cells - 1, int((hi - start - 1e-9) // cell))
        for index in range(max(0, first), last + 1):
            if STATE_RANK[state] > STATE_RANK[worst[index]]:
                worst[index] = state
    return worst


def printer_changes(db: Session, printer_id: int, since: float) -> list[Change]:
    """Status changes since ``since``, with the one in force at ``since`` first."""
    before = db.execute(
        "SELECT at, status FROM printer_events WHERE printer_id = ? AND at < ? "
        "ORDER BY at DESC, id DESC LIMIT 1",
        (printer_id, since),
    ).fetchone()
    rows = db.execute(
        "SELECT at, status FROM printer_events WHERE printer_id = ? AND at >= ? ORDER BY at, id",
        (printer_id, since),
    ).fetchall()
    found = [(float(before["at"]), str(before["status"]))] if before is not None else []
    return found + [(float(r["at"]), str(r["status"])) for r in rows]


def printer_uptime(db: Session, printer_id: int, now: float | None = None) -> dict[str, Any]:
    when = time.time() if now is None else now
    changes = printer_changes(db, printer_id, when - max(WINDOWS.values()))
    return {
        "availability": {
            name: availability(changes, when - span, when) for name, span in WINDOWS.items()
        },
        "heartbeat": {
            "cell_s": HEARTBEAT_CELL_S,
            "cells": heartbeat(changes, when),
        },
    }


def printer_activity(
    db: Session, printer_id: int, now: float | None = None, minutes: int = ACTIVITY_MINUTES
) -> dict[str, Any]:
    """Tickets printed and their average print time (ms), per minute, oldest first."""
    when = time.time() if now is None else now
    start = when - minutes * 60
    rows = db.execute(
        "SELECT j.finished_at AS done, MAX(e.at) AS began FROM jobs j "
        "LEFT JOIN job_events e ON e.job_id = j.id AND e.status = 'printing' "
        "WHERE j.printer_id = ? AND j.status = 'completed' AND j.finished_at >= ? "
        "GROUP BY j.id, j.finished_at",
        (printer_id, start),
    ).fetchall()
    tickets = [0] * minutes
    spent: list[list[float]] = [[] for _ in range(minutes)]
    for row in rows:
        done = float(row["done"])
        index = min(minutes - 1, int((done - start) // 60))
        tickets[index] += 1
        if row["began"] is not None and done >= float(row["began"]):
            spent[index].append((done - float(row["began"])) * 1000)
    return {
        "minutes": minutes,
        "tickets": tickets,
        "print_ms": [round(sum(s) / len(s), 1) if s else None for s in spent],
    }


def prune_printer_events(db: Session, before: float) -> int:
    """Drop status changes older than ``before``, keeping each printer's newest one (the
    status it is in may be older than that)."""
    return int(
        db.execute(
            "DELETE FROM printer_events WHERE at < ? AND id NOT IN "
            "(SELECT MAX(id) FROM printer_events GROUP BY printer_id)",
            (before,),
        ).rowcount
    )
