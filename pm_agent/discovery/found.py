"""A printer some discovery source found, and the merge of every source's list."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

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
    maker: str | None = None
    status: str | None = None
    #: It answered DLE EOT, or the user configured it: worth a worker.
    confirmed: bool = True
    sources: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """``serial:<SERIAL>`` when the printer told it, else its address."""
        return f"serial:{self.serial}" if self.serial else self.uri

    def spec(self) -> PrinterSpec:
        """The printer spec a worker for this printer is made from."""
        name = self.name or (f"{self.model} {self.serial}" if self.model and self.serial else None)
        if name:
            name = name.replace("=", "-").replace("#", "-")[:60]
            return parse_printer_spec(f"{name}={self.uri}")
        return parse_printer_spec(self.uri)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "identity": self.identity,
            "kind": self.kind,
            "sources": list(self.sources or (self.source,)),
            "name": self.name,
            "model": self.model,
            "serial": self.serial,
            "maker": self.maker,
            "status": self.status,
            "confirmed": self.confirmed,
            "details": self.details,
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
        maker=first.maker or other.maker,
        status=first.status or other.status,
        confirmed=first.confirmed or other.confirmed,
        sources=sources,
        details=details,
    )


def merge_found(*lists: Iterable[FoundPrinter]) -> list[FoundPrinter]:
    """One list: the same address, or the same serial at two addresses, is one
    printer (its address from the highest-priority source)."""
    everything = sorted((f for found in lists for f in found), key=_priority)
    merged: list[FoundPrinter] = []
    for found in everything:
        index = next(
            (
                i
                for i, m in enumerate(merged)
                if m.uri == found.uri
                or found.uri in m.details.get("also_at", ())
                or (found.serial and m.serial == found.serial)
            ),
            None,
        )
        if index is None:
            merged.append(replace(found, sources=found.sources or (found.source,)))
        else:
            merged[index] = _combine(merged[index], found)
    return merged
