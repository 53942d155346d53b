"""Discovery settings: the command-line options of ``pm agent``, ``pm up`` and
``pm discover``, and the sources they turn into."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_agent.discovery.arp import ARP_TABLE
from pm_agent.discovery.runner import DiscoverySource

KINDS = ("mdns", "usb", "serial")


@dataclass
class DiscoveryConfig:
    """Which sources run and how. Nothing but the configured printers by default."""

    scan: list[str] = field(default_factory=list)
    """CIDRs whose raw printing port is scanned."""
    scan_ports: list[int] = field(default_factory=lambda: [9100])
    """Ports tried on each scanned address."""
    scan_force: bool = False
    """Allow CIDRs larger than /22."""
    scan_timeout: float = 0.6
    """Seconds to wait for a connection and for the DLE EOT answer."""
    scan_concurrency: int = 64
    """Connections open at once during a scan."""
    mdns: bool = False
    """Browse mDNS for _pdl-datastream and _printer services."""
    mdns_interfaces: list[str] | None = None
    """Interface addresses for mDNS (None: every interface)."""
    mdns_timeout: float = 3.0
    """Seconds to listen for announcements."""
    usb: bool = False
    """List USB printers."""
    usb_backend: Any = None
    """A pyusb backend (None: libusb, found by pyusb)."""
    serial: bool = False
    """Probe serial ports with DLE EOT at the common baud rates."""
    serial_ports: list[str] | None = None
    """Ports to probe (None: every port pyserial lists)."""
    interval: float | None = None
    """Seconds between discovery runs (None: once, at agent start)."""
    arp_table: Path = ARP_TABLE
    """Where network printers' MACs are looked up (the kernel's ARP table)."""

    @property
    def enabled(self) -> bool:
        return bool(self.scan or self.mdns or self.usb or self.serial)

    def sources(
        self,
        *,
        serial_in_use: Callable[[], Iterable[str]] = tuple,
        usb_in_use: Callable[[], Iterable[str]] = tuple,
    ) -> list[Any]:
        """The sources to run; ``serial_in_use`` and ``usb_in_use`` name the serial
        ports and USB ``vid:pid`` the agent already drives (left alone)."""
        sources: list[DiscoverySource] = []
        # Each source is imported only when asked for: they load zeroconf, pyusb and
        # pyserial, and ``pm --help`` imports this module.
        if self.scan:
            from pm_agent.discovery.tcp_scan import TcpScanSource

            for cidr in self.scan:
                sources.append(
                    TcpScanSource(
                        cidr,
                        ports=self.scan_ports,
                        timeout=self.scan_timeout,
                        concurrency=self.scan_concurrency,
                        force=self.scan_force,
                        arp_table=self.arp_table,
                    )
                )
        if self.mdns:
            from pm_agent.discovery.mdns import MdnsSource

            sources.append(
                MdnsSource(
                    interfaces=self.mdns_interfaces,
                    timeout=self.mdns_timeout,
                    arp_table=self.arp_table,
                )
            )
        if self.usb:
            from pm_agent.discovery.usb import UsbSource

            sources.append(UsbSource(backend=self.usb_backend, in_use=usb_in_use))
        if self.serial:
            from pm_agent.discovery.serial_ports import SerialSource, system_serial_ports

            listed = self.serial_ports
            sources.append(
                SerialSource(
                    ports=(lambda: list(listed)) if listed is not None else system_serial_ports,
                    exclude=serial_in_use,
                )
            )
        return sources


def add_discovery_arguments(parser: argparse.ArgumentParser, *, periodic: bool = True) -> None:
    """``--scan``, ``--scan-port``, ``--scan-force``, ``--discover``, ``--mdns-interface``
    and (for a running agent) ``--discover-every``."""
    group = parser.add_argument_group("printer discovery (off unless asked for)")
    group.add_argument(
        "--scan",
        action="append",
        metavar="CIDR",
        help="scan this subnet's raw printing port, e.g. 192.168.1.0/24 (repeatable)",
    )
    group.add_argument(
        "--scan-port",
        action="append",
        type=int,
        metavar="PORT",
        help="port to scan instead of 9100 (repeatable)",
    )
    group.add_argument("--scan-force", action="store_true", help="allow scanning more than a /22")
    group.add_argument(
        "--discover",
        action="append",
        choices=[*KINDS, "all"],
        help="also find printers on mDNS, USB or serial ports (repeatable; all = every one)",
    )
    group.add_argument(
        "--mdns-interface",
        action="append",
        metavar="IP",
        help="use only this interface address for mDNS (repeatable; default: all)",
    )
    if periodic:
        group.add_argument(
            "--discover-every",
            type=float,
            metavar="MINUTES",
            help="run discovery again every MINUTES (default: only at start)",
        )


def discovery_config(args: argparse.Namespace) -> DiscoveryConfig:
    """The settings the options ask for; ValueError for a bad CIDR."""
    kinds = set(getattr(args, "discover", None) or ())
    if "all" in kinds:
        kinds = set(KINDS)
    config = DiscoveryConfig(
        scan=list(getattr(args, "scan", None) or ()),
        scan_ports=list(getattr(args, "scan_port", None) or (9100,)),
        scan_force=bool(getattr(args, "scan_force", False)),
        mdns="mdns" in kinds,
        mdns_interfaces=getattr(args, "mdns_interface", None) or None,
        usb="usb" in kinds,
        serial="serial" in kinds,
    )
    every = float(getattr(args, "discover_every", 0.0) or 0.0)
    config.interval = every * 60 if every > 0 else None
    if config.scan:
        from pm_agent.discovery.tcp_scan import scan_targets  # only when scanning (see above)

        for cidr in config.scan:
            scan_targets(cidr, force=config.scan_force)  # refuse bad CIDRs before starting
    return config


def describe_sources(sources: Sequence[Any]) -> str:
    return ", ".join(getattr(s, "name", type(s).__name__) for s in sources) or "none"
