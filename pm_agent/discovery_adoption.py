"""What discovery found, taken on by the running agent: a new printer gets a worker
(and is registered), a printer the agent already drives is recognised (same
address, same serial, or same MAC and port) and not added twice, and a network
printer known by serial or MAC that answers at a new address while its old one is
unreachable (DHCP gave it another) is driven at the new one, keeping its hub record,
name, station, queue and history."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pm_agent.discovery import FoundPrinter
from pm_agent.open_port import open_port
from pm_agent.printer_registry import PrinterRegistry
from pm_agent.printer_uri import PrinterSpec, parse_printer_spec
from pm_agent.printer_worker import PrinterWorker

log = logging.getLogger(__name__)


class DiscoveryAdoption:
    def __init__(self, printers: PrinterRegistry, *, stopping: Callable[[], bool]) -> None:
        self.printers = printers
        self.stopping = stopping

    def worker_for(self, found: FoundPrinter) -> PrinterWorker | None:
        """The worker already driving a found printer: same address, or the same
        identity (serial, or MAC and port), wherever it is now."""
        workers = self.printers.workers
        for worker in workers:
            if worker.spec.uri == found.uri or worker.spec.uri in found.details.get("also_at", ()):
                return worker
            if found.kind == "usb" and worker.spec.scheme == "usb":
                spec = parse_printer_spec(found.uri)
                ours, theirs = worker.spec.options.get("serial"), spec.options.get("serial")
                if spec.path == worker.spec.path and (not ours or not theirs or ours == theirs):
                    return worker  # the same VID:PID, told apart by serial only when both have one
        if found.known_by_itself:
            for worker in workers:
                if worker.identity == found.identity:
                    return worker
        if found.mac:
            for worker in workers:
                if worker.mac == found.mac and worker.spec.port == found.port:
                    return worker  # told its serial to us, but not to the probe
        return None

    async def adopt(self, found: list[FoundPrinter]) -> None:
        """What discovery found: new printers get a worker; a known printer (same
        serial, or same MAC and port) that answers at a new address while its old
        one is unreachable is driven at the new one and keeps its hub record."""
        for printer in found:
            if not printer.confirmed or self.stopping():
                continue
            worker = self.worker_for(printer)
            if worker is None:
                try:
                    spec = printer.spec()
                except ValueError as exc:
                    log.warning("cannot use found printer %s: %s", printer.uri, exc)
                    continue
                await self.printers.add_printer(
                    spec,
                    identity=printer.identity if printer.known_by_itself else None,
                    mac=printer.mac,
                    model=printer.model,
                )
            elif worker.spec.uri != printer.uri and worker.status == "offline":
                if worker.spec.scheme != "tcp" or not printer.uri.startswith("tcp://"):
                    continue
                new = printer.spec()
                moved = PrinterSpec(
                    uri=new.uri,
                    scheme=new.scheme,
                    name=worker.spec.name,
                    station=worker.spec.station,
                    host=new.host,
                    port=new.port,
                    options=worker.spec.options,
                )
                await worker.relocate(moved, open_port(moved))
