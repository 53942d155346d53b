"""Printers an operator added at run time through the hub (``printer:add``): the agent
drives each at once and keeps it in ``agent-added-printers.json`` in its data dir, so
it is driven again after a restart, beside the ones on its command line or in its
config file. ``printer:forget`` (an operator removed the printer) drops it again.

The address is checked as the hub checks it (``pm_core.protocol.printer_addresses``)
and then parsed as a configured one (``pm_agent.printer_uri``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from pm_agent.printer_registry import PrinterRegistry
from pm_agent.printer_uri import PrinterSpec, parse_printer_uri
from pm_agent.printer_worker import PrinterWorker
from pm_core.private_files import write_private
from pm_core.protocol import ErrorCode, ProtocolError, error_ack, ok_ack
from pm_core.protocol.printer_addresses import check_printer_uri
from pm_core.protocol.validation import get_int, get_name, require_object

log = logging.getLogger(__name__)

FILE_NAME = "agent-added-printers.json"
#: Most printers one agent takes at run time.
MAX_ADDED = 200


class AddedPrinters:
    def __init__(self, path: Path, registry: PrinterRegistry) -> None:
        self.path = path
        self.registry = registry
        registry.on_removed_at_hub = self.removed_at_hub
        #: ``{"uri", "name", "station"}`` per printer, in the order they were added.
        self.entries: list[dict[str, Any]] = []

    # -- the file (blocking: call off the event loop) ------------------------------------

    def load(self) -> list[PrinterSpec]:
        """The printers added before the agent stopped (unreadable entries skipped)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return []
        specs: list[PrinterSpec] = []
        for entry in data if isinstance(data, list) else []:
            try:
                specs.append(_spec(entry))
            except (ProtocolError, ValueError, TypeError) as exc:
                log.warning("skipping added printer %r: %s", entry, exc)
                continue
            self.entries.append(entry)
        return specs

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        write_private(tmp, json.dumps(self.entries, indent=1) + "\n")
        os.replace(tmp, self.path)

    # -- requests from the hub --------------------------------------------------------------

    async def add(self, payload: Any) -> dict[str, Any]:
        """``printer:add {uri, name?, station?}``: drive it, keep it, register it; the
        answer carries its hub ``printer_id``."""
        try:
            data = require_object(payload, allowed=("uri", "name", "station", "correlation_id"))
            entry = {
                "uri": check_printer_uri(data.get("uri")),
                "name": get_name(data, "name", max_length=100),
                "station": get_name(data, "station", max_length=64),
            }
            spec = _spec(entry)
        except ProtocolError as exc:
            return exc.to_ack()
        except ValueError as exc:
            return error_ack(ErrorCode.INVALID_PAYLOAD, str(exc))
        driving = next((w for w in self.registry.workers if w.spec.uri == spec.uri), None)
        if driving is not None:
            return error_ack(
                ErrorCode.CONFLICT,
                f"this agent drives {spec.uri} already (as {driving.spec.name})",
            )
        if len(self.entries) >= MAX_ADDED:
            return error_ack(ErrorCode.CONFLICT, f"at most {MAX_ADDED} printers added at run time")
        self.entries.append({**entry, "name": spec.name})
        try:
            await asyncio.to_thread(self.save)
        except OSError as exc:
            self.entries.pop()
            return error_ack(ErrorCode.UNAVAILABLE, f"could not keep the printer: {exc}")
        worker = await self.registry.add_printer(spec, operator_added=True)
        return ok_ack(printer_id=worker.printer_id, name=spec.name, uri=spec.uri)

    async def removed_at_hub(self, worker: PrinterWorker) -> None:
        """An operator removed this added printer while the agent was away (the hub
        refuses its registration): forget it, as ``printer:forget`` would have."""
        if worker.printer_id is not None:
            await self.forget({"printer_id": worker.printer_id})
        else:
            await self._drop(worker)

    async def forget(self, payload: Any) -> dict[str, Any]:
        """``printer:forget {printer_id}``: an operator removed the printer. One added at
        run time is dropped (no longer driven, not after a restart either); one from the
        agent's own configuration stays there (``forgotten: false``)."""
        try:
            data = require_object(payload, allowed=("printer_id", "correlation_id"))
            printer_id = get_int(data, "printer_id", required=True, minimum=1)
        except ProtocolError as exc:
            return exc.to_ack()
        worker = self.registry.by_printer_id.get(printer_id or 0)
        if worker is None:
            return ok_ack(forgotten=False)
        if not await self._drop(worker):
            log.info("printer %s was removed at the hub; it stays in this box's configuration",
                     worker.spec.name)  # fmt: skip
            return ok_ack(forgotten=False)
        return ok_ack(forgotten=True)

    async def _drop(self, worker: PrinterWorker) -> bool:
        kept = [e for e in self.entries if _uri_of(e) != worker.spec.uri]
        if len(kept) == len(self.entries):
            return False
        self.entries = kept
        try:
            await asyncio.to_thread(self.save)
        except OSError as exc:
            log.warning("could not update %s: %s", self.path, exc)
        await self.registry.drop_worker(worker)
        log.info("printer %s (%s) removed at the hub: no longer driven", worker.spec.name,
                 worker.spec.uri)  # fmt: skip
        return True


def _spec(entry: Any) -> PrinterSpec:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    name, station = entry.get("name"), entry.get("station")
    return parse_printer_uri(
        check_printer_uri(entry.get("uri")),
        name=name.strip() or None if isinstance(name, str) else None,
        station=station.strip().lower() or None if isinstance(station, str) else None,
    )


def _uri_of(entry: dict[str, Any]) -> str | None:
    try:
        return _spec(entry).uri
    except (ProtocolError, ValueError, TypeError):
        return None
