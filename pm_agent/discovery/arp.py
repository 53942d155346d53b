"""The MAC address of a network printer, from the kernel's ARP table.

After the agent has talked to a printer on its own LAN segment, the printer's
IP is in ``/proc/net/arp``; its MAC identifies it when it does not tell its
serial (``mac:<MAC>``, see :func:`mac_identity`), so a new DHCP address does not
make a new printer.
Printers behind a router have no entry (the router's MAC would be wrong, so
only complete entries on the same segment are used). Linux only; elsewhere
nothing is found. Tests point ``table`` at a file of their own (the ARP table
is the hardware edge here). :func:`pm_agent.discovery.found.with_macs` adds the
MACs to what a discovery source found.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
ATF_COM = 0x2  #: entry complete
RAW_PORT = 9100


def arp_entries(table: Path = ARP_TABLE) -> dict[str, str]:
    """Every complete entry of the ARP table: ``{ip: mac}`` (empty when unreadable).
    Blocking (a file read): call it off the event loop."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return {}
    entries: dict[str, str] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            flags = int(parts[2], 16)
        except ValueError:
            continue
        mac = parts[3].lower()
        if flags & ATF_COM and mac != "00:00:00:00:00:00":
            entries[parts[0]] = mac
    return entries


def mac_for_ip(ip: str, *, table: Path = ARP_TABLE) -> str | None:
    """The MAC of ``ip`` if the ARP table has a complete entry, else None."""
    return arp_entries(table).get(ip)


def mac_identity(mac: str, port: int | None) -> str:
    """What a printer known by its MAC is called: ``mac:<MAC>``, with ``/<PORT>`` unless
    it listens on the raw port 9100 (a print server with several ports has one MAC for
    several printers; a printer that moves keeps its port)."""
    return f"mac:{mac}" if port in (None, RAW_PORT) else f"mac:{mac}/{port}"
