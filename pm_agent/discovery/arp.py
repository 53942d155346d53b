"""The MAC address of a network printer, from the kernel's ARP table.

After the agent has talked to a printer on its own LAN segment, the printer's
IP is in ``/proc/net/arp``; its MAC identifies it when it does not tell its
serial (``mac:<MAC>``), so a new DHCP address does not make a new printer.
Printers behind a router have no entry (the router's MAC would be wrong, so
only complete entries on the same segment are used). Linux only; elsewhere
nothing is found.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
ATF_COM = 0x2  #: entry complete


def mac_for_ip(ip: str, *, table: Path = ARP_TABLE) -> str | None:
    """The MAC of ``ip`` if the ARP table has a complete entry, else None."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[0] != ip:
            continue
        try:
            flags = int(parts[2], 16)
        except ValueError:
            continue
        mac = parts[3].lower()
        if flags & ATF_COM and mac != "00:00:00:00:00:00":
            return mac
    return None
