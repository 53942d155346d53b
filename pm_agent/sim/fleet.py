"""Several simulated printers run together (:class:`SimulatorFleet`), with the HTTP
control server of :mod:`pm_agent.sim.control` that ``pm simctl`` talks to.

``fleet = await SimulatorFleet.start(count=3)`` or
``async with SimulatorFleet.start(count=3) as fleet: ...``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from pm_agent.sim.control import control_app
from pm_agent.sim.printer import HOST, SimulatedPrinter

logger = logging.getLogger(__name__)

DEFAULT_CONTROL_PORT = 9180
DEFAULT_NAMES = ("Kitchen", "Bar", "Counter")


def default_names(count: int) -> list[str]:
    """Kitchen-1, Bar-1, Counter-1, Kitchen-2, ..."""
    return [
        f"{DEFAULT_NAMES[i % len(DEFAULT_NAMES)]}-{i // len(DEFAULT_NAMES) + 1}"
        for i in range(count)
    ]


class SimulatorFleet:
    """Several simulated printers and their HTTP control server.

    ``fleet = await SimulatorFleet.start(count=3)`` or
    ``async with SimulatorFleet.start(count=3) as fleet: ...``.
    """

    def __init__(self, printers: Sequence[SimulatedPrinter], *, control_port: int | None = 0):
        self.printers = list(printers)
        self.control_port = control_port
        self._runner: web.AppRunner | None = None
        self._started = False

    @classmethod
    def start(
        cls,
        count: int = 3,
        base_port: int = 0,
        names: Sequence[str] | None = None,
        *,
        control_port: int | None = 0,
        print_delay: float = 0.0,
        status_supported: bool = True,
        language: str = "escpos",
    ) -> _FleetStart:
        """Create and start a fleet. ``base_port`` 0 gives every printer a free
        port, otherwise printer i listens on ``base_port + i``. ``control_port``
        None runs no control server, 0 picks a free port."""
        names = list(names) if names else default_names(count)
        if len(names) < count:
            names += default_names(count)[len(names) :]
        printers = [
            SimulatedPrinter(
                names[i],
                base_port + i if base_port else 0,
                print_delay=print_delay,
                status_supported=status_supported,
                language=language,
            )
            for i in range(count)
        ]
        return _FleetStart(cls(printers, control_port=control_port))

    async def start_all(self) -> SimulatorFleet:
        """Start every printer and the control server."""
        if self._started:
            return self
        try:
            for printer in self.printers:
                await printer.start()
            if self.control_port is not None:
                await self._start_control()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        return self

    async def stop(self) -> None:
        """Stop the control server and every printer."""
        self._started = False
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        for printer in self.printers:
            await printer.stop()

    async def __aenter__(self) -> SimulatorFleet:
        return await self.start_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def control_url(self) -> str | None:
        if self._runner is None or self.control_port is None:
            return None
        return f"http://{HOST}:{self.control_port}"

    def printer(self, port: int) -> SimulatedPrinter | None:
        """The printer listening on ``port``."""
        for printer in self.printers:
            if printer.port == port:
                return printer
        return None

    # ------------------------------------------------------------------ HTTP control

    async def _start_control(self) -> None:
        runner = web.AppRunner(control_app(self.printers), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self.control_port or 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.control_port = int(runner.addresses[0][1])
        logger.info("simulator control server on %s", self.control_url)


class _FleetStart:
    """What :meth:`SimulatorFleet.start` returns: await it, or use it in
    ``async with`` (the fleet stops at the end of the block)."""

    def __init__(self, fleet: SimulatorFleet) -> None:
        self._fleet = fleet

    def __await__(self) -> Generator[Any, None, SimulatorFleet]:
        return self._fleet.start_all().__await__()

    async def __aenter__(self) -> SimulatorFleet:
        return await self._fleet.start_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._fleet.stop()
