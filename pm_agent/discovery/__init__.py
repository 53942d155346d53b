"""Finding printers: configured URIs, a TCP 9100 scan, mDNS, USB and serial ports.

Each source finds printers on its own (:class:`TcpScanSource`, :class:`MdnsSource`,
:class:`UsbSource`, :class:`SerialSource`, :class:`ConfiguredSource`);
:class:`Discovery` runs them together, merges their lists into one (one printer
per address or serial) and hands it to the agent, at start and every N minutes.
Heavy sources import their libraries only when they run.
"""

from pm_agent.discovery.found import FoundPrinter, merge_found
from pm_agent.discovery.options import (
    DiscoveryConfig,
    add_discovery_arguments,
    discovery_config,
)
from pm_agent.discovery.runner import ConfiguredSource, Discovery, DiscoverySource

__all__ = [
    "ConfiguredSource",
    "Discovery",
    "DiscoveryConfig",
    "DiscoverySource",
    "FoundPrinter",
    "add_discovery_arguments",
    "discovery_config",
    "merge_found",
]
