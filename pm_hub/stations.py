"""Stations and failover: which printer a station's job goes to, and moving waiting
jobs to the next printer when one fails.

A station (``kitchen``, ``bar``, ``receipt`` ...) is an ordered list of printers;
the first is its primary. A job sent to a station goes to its first healthy
printer (not offline, out of paper, open, in error or paused, and with its agent
connected). When a printer stops being healthy, the station jobs still waiting
for it move to the next healthy printer, marked ``BACKUP FROM <primary>``, and a
``failover`` alert says so. Jobs sent to one printer by id never move.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pm_core.database import Database
from pm_core.protocol import (
    CANCELLABLE_JOB_STATUSES,
    PROBLEM_PRINTER_STATUSES,
    ErrorCode,
    ProtocolError,
)
from pm_hub.active_jobs import ActiveJobs
from pm_hub.alerts import AlertBook
from pm_hub.auth import Principal
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import LiveState
from pm_hub.store import stations as station_store

log = logging.getLogger(__name__)


class StationRouter:
    def __init__(
        self,
        *,
        db: Database,
        state: LiveState,
        jobs: ActiveJobs,
        dispatcher: JobDispatcher,
        alerts: AlertBook,
    ) -> None:
        self.db = db
        self.state = state
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.alerts = alerts
        self.stations: dict[tuple[int, str], dict[str, Any]] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    async def load(self) -> None:
        for row in await self.db.read(station_store.all_stations):
            self.stations[(row["branch_id"], row["name"])] = row

    def remember(self, row: dict[str, Any]) -> None:
        self.stations[(row["branch_id"], row["name"])] = row

    def members(self, branch_id: int, station: str) -> list[dict[str, Any]]:
        """The station's printers, primary first."""
        return sorted(
            (
                p
                for p in self.state.printers.values()
                if p["branch_id"] == branch_id and p["station"] == station
            ),
            key=lambda p: (p["station_priority"], p["id"]),
        )

    @staticmethod
    def healthy(printer: dict[str, Any] | None) -> bool:
        """Can print, as far as its record says (an agent that went away marks its
        printers offline, so this covers reachability too)."""
        return (
            printer is not None
            and printer["status"] not in PROBLEM_PRINTER_STATUSES
            and not printer["paused"]
        )

    def usable(self, printer: dict[str, Any]) -> bool:
        # A CloudPRNT printer has no agent: polling (not offline) is what makes it usable.
        reached = self.state.agent_for_printer(printer) is not None or printer.get("kind") == (
            "cloudprnt"
        )
        return self.healthy(printer) and reached

    def route(
        self, principal: Principal, station: str, branch_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(printer to use, station primary) for a new station job."""
        branches = [branch_id] if branch_id is not None else None
        if branches is None:
            visible = {p["branch_id"] for p in self.state.printers.values() if principal.sees(p)}
            with_station = sorted(b for b in visible if any(True for _ in self.members(b, station)))
            if len(with_station) > 1:
                raise ProtocolError(
                    ErrorCode.INVALID_PAYLOAD,
                    f"station {station!r} exists in several branches; give branch_id",
                )
            branches = with_station
        if not branches or not principal.sees_branch(branches[0]):
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no printer in station {station!r}")
        members = [p for p in self.members(branches[0], station) if principal.sees(p)]
        if not members:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no printer in station {station!r}")
        primary = members[0]
        for printer in members:
            if self.usable(printer):
                return printer, primary
        return primary, primary  # nobody healthy: wait on the primary

    def default_expiry(self, printer: dict[str, Any]) -> float | None:
        """The printer's own default, else its station's."""
        if printer.get("default_expiry_s"):
            return float(printer["default_expiry_s"])
        station = self.stations.get((printer["branch_id"], printer["station"] or ""))
        if station and station.get("default_expiry_s"):
            return float(station["default_expiry_s"])
        return None

    def _lock(self, key: tuple[int, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def health_changed(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        was, now = self.healthy(old), self.healthy(new)
        if new["station"] is None or was == now:
            return
        if not now:
            await self.fail_over(new)
        elif self.members(new["branch_id"], new["station"])[:1] == [new]:
            await self.alerts.clear("failover", _subject(new))

    async def fail_over(self, printer: dict[str, Any]) -> int:
        """Move the station jobs waiting on ``printer`` to the next healthy printer."""
        station = printer["station"]
        key = (printer["branch_id"], station)
        async with self._lock(key):
            waiting = [
                j
                for j in self.jobs.waiting_on(printer["id"])
                if j.station == station and j.status in CANCELLABLE_JOB_STATUSES
            ]
            if not waiting:
                return 0
            members = self.members(printer["branch_id"], station)
            backup = next((p for p in members if p["id"] != printer["id"] and self.usable(p)), None)
            if backup is None:
                log.warning(
                    "station %s: no healthy printer to take over from %s", station, printer["name"]
                )
                return 0
            primary = members[0]
            moved = 0
            for job in waiting:
                row = await self.dispatcher.reassign(
                    job.id,
                    backup["id"],
                    failover_from=primary["id"] if backup["id"] != primary["id"] else None,
                    actor="hub:failover",
                    reason=f"failover: {printer['name']} is {_words(printer)}, "
                    f"moved to {backup['name']}",
                )
                moved += row is not None
            if moved:
                log.warning(
                    "station %s: %d job(s) moved from %s to %s",
                    station,
                    moved,
                    printer["name"],
                    backup["name"],
                )
                await self.alerts.raise_alert(
                    "failover",
                    _subject(printer),
                    f"{printer['name']} is {_words(printer)}: {moved} {station} job(s) moved "
                    f"to {backup['name']}",
                    company_id=printer["company_id"],
                    branch_id=printer["branch_id"],
                    details={
                        "station": station,
                        "from_printer_id": printer["id"],
                        "to_printer_id": backup["id"],
                        "jobs_moved": moved,
                    },
                )
            return moved

    async def routed_around(self, target: dict[str, Any], primary: dict[str, Any]) -> None:
        """A new station job skipped the primary: say so once (the alert stays open)."""
        await self.alerts.raise_alert(
            "failover",
            _subject(primary),
            f"{primary['name']} is {_words(primary)}: {primary['station']} jobs go to "
            f"{target['name']}",
            company_id=primary["company_id"],
            branch_id=primary["branch_id"],
            details={
                "station": primary["station"],
                "from_printer_id": primary["id"],
                "to_printer_id": target["id"],
            },
        )


def _subject(printer: dict[str, Any]) -> str:
    return f"station:{printer['branch_id']}:{printer['station']}"


def _words(printer: dict[str, Any]) -> str:
    if printer["paused"]:
        return "paused"
    if printer["status"] in PROBLEM_PRINTER_STATUSES:
        return str(printer["status"]).replace("_", " ")
    return "unreachable"
