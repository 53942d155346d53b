"""Find printers on serial ports: list them with pyserial, probe each with
``DLE EOT`` at the common baud rates until one answers with real status bytes.

Probing at a wrong baud rate sends the printer a few bytes of noise, which some
printers print as a stray character; that is why serial discovery is off unless
asked for (``--discover serial``). Ports the agent already drives are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from pm_agent.discovery.found import FoundPrinter
from pm_agent.printer_identity import read_identity
from pm_agent.printer_port import PrinterUnreachable
from pm_agent.serial_port import COMMON_BAUDRATES, SerialPrinterPort

log = logging.getLogger(__name__)


def system_serial_ports() -> list[str]:
    """Serial ports with hardware behind them (USB adapters, CDC ACM printers,
    on-board UARTs that the kernel found), as pyserial lists them."""
    from serial.tools import list_ports

    return [p.device for p in list_ports.comports() if p.hwid and p.hwid != "n/a"]


class SerialSource:
    """Serial ports that answer DLE EOT at one of the common baud rates."""

    name = "serial"

    def __init__(
        self,
        *,
        ports: Callable[[], Iterable[str]] = system_serial_ports,
        baudrates: Sequence[int] = COMMON_BAUDRATES,
        exclude: Callable[[], Iterable[str]] = lambda: (),
        timeout: float = 0.5,
    ) -> None:
        self.ports = ports
        self.baudrates = tuple(baudrates)
        self.exclude = exclude
        self.timeout = timeout

    async def discover(self) -> list[FoundPrinter]:
        return await asyncio.to_thread(self.scan)

    def scan(self) -> list[FoundPrinter]:
        """Blocking: probe every port not in use by this agent."""
        busy = set(self.exclude())
        found = []
        for path in self.ports():
            if path in busy:
                continue
            printer = self.probe(path)
            if printer is not None:
                found.append(printer)
        log.info("serial: %d printer(s)", len(found))
        return found

    def probe(self, path: str) -> FoundPrinter | None:
        for baudrate in self.baudrates:
            port = SerialPrinterPort(
                path, options={"baudrate": str(baudrate)}, status_timeout=self.timeout
            )
            try:
                report = port.query_status()
                identity = read_identity(port, timeout=self.timeout) if report else None
            except PrinterUnreachable as exc:
                if "garbage" in str(exc):
                    log.debug("%s at %d baud: garbage", path, baudrate)
                    continue
                log.warning("serial port %s: %s", path, exc)
                return None
            finally:
                port.close()
            if report is None:
                log.debug("%s at %d baud: no answer", path, baudrate)
                continue
            log.info("serial printer on %s at %d baud (%s)", path, baudrate, report.status)
            return FoundPrinter(
                uri=f"serial://{path}?baudrate={baudrate}",
                kind="serial",
                source=self.name,
                model=identity.model if identity else None,
                serial=identity.serial if identity else None,
                maker=identity.maker if identity else None,
                status=report.status,
                details={"baudrate": baudrate},
            )
        return None
