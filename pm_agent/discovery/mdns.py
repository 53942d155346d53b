"""Find network printers announced on mDNS/DNS-SD.

Browses ``_pdl-datastream._tcp.local.`` (raw port printing, usually 9100) and
``_printer._tcp.local.`` (LPD; the raw port 9100 of the same host is probed),
resolves each service, and confirms it with the same DLE EOT probe as the
subnet scan. Only the interfaces given are used (tests pass ``["127.0.0.1"]``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pm_agent.discovery.arp import ARP_TABLE
from pm_agent.discovery.found import FoundPrinter, with_macs
from pm_agent.discovery.tcp_scan import RAW_PORT, probe_printer
from pm_agent.printer_language import language_for_model

log = logging.getLogger(__name__)

RAW_SERVICE = "_pdl-datastream._tcp.local."
LPD_SERVICE = "_printer._tcp.local."
SERVICE_TYPES = (RAW_SERVICE, LPD_SERVICE)
#: Office printer makers: they announce the same services but do not speak ESC/POS.
OFFICE_MAKERS = ("hp ", "brother", "canon", "lexmark", "xerox", "kyocera", "ricoh", "samsung")


def _properties(info: Any) -> dict[str, str]:
    props: dict[str, str] = {}
    for key, value in (info.properties or {}).items():
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        props[str(key).lower()] = "" if value is None else str(value)
    return props


def _model(props: dict[str, str]) -> str | None:
    for key in ("ty", "usb_mdl", "product"):
        value = props.get(key, "").strip().strip("()").strip()
        if value:
            return value[:64]
    return None


class MdnsSource:
    """Printers announced on mDNS, each confirmed with DLE EOT."""

    name = "mdns"

    def __init__(
        self,
        *,
        interfaces: Sequence[str] | None = None,
        timeout: float = 3.0,
        probe_timeout: float = 0.8,
        service_types: Sequence[str] = SERVICE_TYPES,
        arp_table: Path = ARP_TABLE,
    ) -> None:
        self.interfaces = list(interfaces) if interfaces else None
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.service_types = list(service_types)
        self.arp_table = arp_table

    async def discover(self) -> list[FoundPrinter]:
        from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

        azc = AsyncZeroconf(
            interfaces=self.interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only
        )
        seen: dict[str, str] = {}

        def on_change(
            zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                seen[name] = service_type

        browser = AsyncServiceBrowser(azc.zeroconf, self.service_types, handlers=[on_change])
        try:
            await asyncio.sleep(self.timeout)
            await browser.async_cancel()
            candidates: list[tuple[str, int, str, dict[str, str]]] = []
            for name, service_type in sorted(seen.items()):
                info = AsyncServiceInfo(service_type, name)
                if not await info.async_request(azc.zeroconf, 1500):
                    log.debug("mDNS service %s did not resolve", name)
                    continue
                props = _properties(info)
                label = name.removesuffix("." + service_type)
                model = _model(props)
                if model and model.lower().startswith(OFFICE_MAKERS):
                    log.debug("mDNS: skipping office printer %s (%s)", label, model)
                    continue
                port = info.port if service_type == RAW_SERVICE and info.port else RAW_PORT
                for address in info.parsed_addresses(IPVersion.V4Only):
                    candidates.append((address, port, label, {"model": model or "", **props}))
        finally:
            await azc.async_close()
        found: list[FoundPrinter] = []
        probes = await asyncio.gather(
            *(
                probe_printer(a, p, timeout=self.probe_timeout, source=self.name)
                for a, p, _, _ in candidates
            )
        )
        for (address, port, label, props), probe in zip(candidates, probes, strict=True):
            uri = f"tcp://{address}:{port}"
            if any(f.uri == uri for f in found):
                continue  # announced as raw and as LPD
            found.append(
                FoundPrinter(
                    uri=uri,
                    kind="network",
                    source=self.name,
                    name=label,
                    model=(probe.model if probe else None) or props.get("model") or None,
                    serial=probe.serial if probe else None,
                    status=probe.status if probe else None,
                    confirmed=bool(probe and probe.confirmed),
                    details={"mdns_name": label},
                    language=language_for_model(label)
                    or language_for_model(props.get("model"))
                    or (probe.language if probe else None),
                )
            )
        log.info("mDNS: %d printer(s) announced", len(found))
        return await with_macs(found, table=self.arp_table)
