"""A printer some discovery source found, the MACs of the network ones (from the ARP
table), and the merge of every source's list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pm_agent.discovery.arp import ARP_TABLE, arp_entries, mac_identity
from pm_agent.printer_uri import PrinterSpec, parse_printer_spec

log = logging.getLogger(__name__)

#: When one printer is found by several sources, the address of the first wins.
SOURCE_PRIORITY = ("configured", "usb", "serial", "scan", "mdns")


@dataclass(frozen=True)
class FoundPrinter:
    """One printer found by one or more sources."""

    uri: str
    kind: str  #: network, usb, serial or file
    source: str  #: configured, scan, mdns, usb or serial
    name: str | None = None
    model: str | None = None
    serial: str | None = None  #: what the printer says (GS I), not the USB serial
    #: A network printer's MAC (ARP table), when it is on this machine's LAN segment.
    mac: str | None = None
    maker: str | None = None
    status: str | None = None
    #: It answered DLE EOT, or the user configured it: worth a worker.
    confirmed: bool = True
    sources: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    #: The command language its identity says (USB ``CMD:``, model or mDNS name);
    #: None: nothing says (ESC/POS, or whatever the model tells later).
    language: str | None = None

    @property
    def port(self) -> int | None:
        """The TCP port of a network printer."""
        if not self.uri.startswith("tcp://"):
            return None
        try:
            return urlsplit(self.uri).port
        except ValueError:
            return None

    @property
    def identity(self) -> str:
        """``serial:<SERIAL>`` when the printer told it, else ``mac:<MAC>`` (see
        :func:`~pm_agent.discovery.arp.mac_identity`) when known, else its address."""
        if self.serial:
            return f"serial:{self.serial}"
        if self.mac:
            return mac_identity(self.mac, self.port)
        return self.uri

    @property
    def known_by_itself(self) -> bool:
        """Identified by something the printer carries (serial or MAC), not its address."""
        return bool(self.serial or self.mac)

    def same_printer(self, other: FoundPrinter) -> bool:
        """The same address, or the same serial, or the same MAC and port."""
        return (
            self.uri == other.uri
            or other.uri in self.details.get("also_at", ())
            or bool(self.serial and self.serial == other.serial)
            or bool(self.mac and self.mac == other.mac and self.port == other.port)
        )

    def spec(self) -> PrinterSpec:
        """The printer spec a worker for this printer is made from."""
        name = self.name or (f"{self.model} {self.serial}" if self.model and self.serial else None)
        if name:
            name = name.replace("=", "-").replace("#", "-")[:60]
            spec = parse_printer_spec(f"{name}={self.uri}")
        else:
            spec = parse_printer_spec(self.uri)
        if self.language and "language" not in spec.options:
            spec = replace(spec, options={**spec.options, "language": self.language})
        return spec

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "identity": self.identity,
            "kind": self.kind,
            "sources": list(self.sources or (self.source,)),
            "name": self.name,
            "model": self.model,
            "serial": self.serial,
            "mac": self.mac,
            "maker": self.maker,
            "status": self.status,
            "confirmed": self.confirmed,
            "details": self.details,
            "language": self.language,
        }


def _priority(found: FoundPrinter) -> int:
    try:
        return SOURCE_PRIORITY.index(found.source)
    except ValueError:
        return len(SOURCE_PRIORITY)


def _combine(first: FoundPrinter, other: FoundPrinter) -> FoundPrinter:
    sources = tuple(dict.fromkeys((*(first.sources or (first.source,)), other.source)))
    details = {**other.details, **first.details}
    if other.uri != first.uri:
        also = list(details.get("also_at", []))
        if other.uri not in also:
            also.append(other.uri)
        details["also_at"] = also
    return replace(
        first,
        name=first.name or other.name,
        model=first.model or other.model,
        serial=first.serial or other.serial,
        mac=first.mac or other.mac,
        maker=first.maker or other.maker,
        language=first.language or other.language,
        status=first.status or other.status,
        confirmed=first.confirmed or other.confirmed,
        sources=sources,
        details=details,
    )


def merge_found(*lists: Iterable[FoundPrinter]) -> list[FoundPrinter]:
    """One list: the same address, or the same serial or MAC at two addresses, is
    one printer (its address from the highest-priority source)."""
    everything = sorted((f for found in lists for f in found), key=_priority)
    merged: list[FoundPrinter] = []
    for found in everything:
        index = next((i for i, m in enumerate(merged) if m.same_printer(found)), None)
        if index is None:
            merged.append(replace(found, sources=found.sources or (found.source,)))
        else:
            merged[index] = _combine(merged[index], found)
    return merged


async def with_macs(found: list[FoundPrinter], *, table: Path = ARP_TABLE) -> list[FoundPrinter]:
    """``found`` with the MAC of each network printer the ARP table knows (the probe
    that found it has just talked to it, so a printer on this segment has an entry)."""
    if not any(f.kind == "network" for f in found):
        return found
    entries = await asyncio.to_thread(arp_entries, table)
    out = []
    for printer in found:
        host = urlsplit(printer.uri).hostname if printer.kind == "network" else None
        mac = entries.get(host) if host else None
        out.append(replace(printer, mac=mac) if mac and not printer.mac else printer)
    return out
