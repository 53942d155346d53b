"""Stations (kitchen, bar, receipt ...): named groups of printers in priority order."""

from __future__ import annotations

import time
from typing import Any

from pm_core.sql import Session


def ensure_station(db: Session, *, company_id: int, branch_id: int, name: str) -> dict[str, Any]:
    db.execute(
        "INSERT INTO stations (company_id, branch_id, name, created_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (branch_id, name) DO NOTHING",
        (company_id, branch_id, name, time.time()),
    )
    row = db.execute(
        "SELECT * FROM stations WHERE branch_id = ? AND name = ?", (branch_id, name)
    ).fetchone()
    return dict(row)


def all_stations(db: Session) -> list[dict[str, Any]]:
    return [dict(r) for r in db.execute("SELECT * FROM stations ORDER BY branch_id, name")]


def configure_station(
    db: Session,
    *,
    company_id: int,
    branch_id: int,
    name: str,
    printer_ids: list[int] | None,
    default_expiry_s: float | None,
    set_expiry: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Set a station's printers (in priority order) and/or its default job expiry.

    Printers listed join the station in that order; printers that were in it and
    are not listed leave it. Returns (station, printers changed)."""
    station = ensure_station(db, company_id=company_id, branch_id=branch_id, name=name)
    if set_expiry:
        db.execute(
            "UPDATE stations SET default_expiry_s = ? WHERE id = ?",
            (default_expiry_s, station["id"]),
        )
    changed: list[int] = []
    if printer_ids is not None:
        now = time.time()
        current = [
            r[0]
            for r in db.execute(
                "SELECT id FROM printers WHERE branch_id = ? AND station = ?", (branch_id, name)
            )
        ]
        for position, printer_id in enumerate(printer_ids):
            db.execute(
                "UPDATE printers SET station = ?, station_priority = ?, updated_at = ? "
                "WHERE id = ?",
                (name, (position + 1) * 10, now, printer_id),
            )
            changed.append(printer_id)
        for printer_id in current:
            if printer_id not in printer_ids:
                db.execute(
                    "UPDATE printers SET station = NULL, updated_at = ? WHERE id = ?",
                    (now, printer_id),
                )
                changed.append(printer_id)
    station = dict(db.execute("SELECT * FROM stations WHERE id = ?", (station["id"],)).fetchone())
    rows = [
        dict(db.execute("SELECT * FROM printers WHERE id = ?", (p,)).fetchone()) for p in changed
    ]
    return station, rows
