"""Simulated ESC/POS network printers, for the demo and for every test.

- :mod:`pm_agent.sim.printer`: :class:`SimulatedPrinter`, one printer on 127.0.0.1;
- :mod:`pm_agent.sim.receipt`: what it prints (:class:`Receipt`);
- :mod:`pm_agent.sim.fleet`: :class:`SimulatorFleet`, several printers, with the
  HTTP control API of :mod:`pm_agent.sim.control`;
- :mod:`pm_agent.sim.cli`: the glue for ``pm sim`` and ``pm simctl``.

The names below are the package's public face; code in this repository imports
them from the module that holds them.
"""

from pm_agent.sim.fleet import SimulatorFleet
from pm_agent.sim.printer import PRINTER_STATES, SimulatedPrinter
from pm_agent.sim.receipt import Receipt

__all__ = ["PRINTER_STATES", "Receipt", "SimulatedPrinter", "SimulatorFleet"]
