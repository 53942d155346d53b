"""Find network printers by scanning a subnet's raw printing port (9100).

Every address of the CIDR is tried on every port with a short connect timeout
and a bounded number of connections at a time; a printer counts as found when it
answers ``DLE EOT`` with real status bytes (it is then asked ``GS I`` for its
serial and model, and its MAC is looked up in the ARP table). One that is silent to
``DLE EOT`` is asked Star's ``ESC ACK SOH``: a Star printer in a Star mode answers its
ASB status and is found with the language ``star_raster`` (which every Star thermal
model prints). A port that accepts but stays silent to both is reported as
unconfirmed: it may be a printer without status support, or something else.
CIDRs larger than /22 (1024 addresses) are refused unless forced.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path

from pm_agent.discovery.arp import ARP_TABLE
from pm_agent.discovery.found import FoundPrinter, with_macs
from pm_agent.escpos_status import decode_status
from pm_agent.printer_identity import MODEL, SERIAL, STRING_HEADER, identity_request
from pm_agent.printer_port import ALL_STATUS_QUERIES
from pm_agent.star_status import STATUS_REQUEST as STAR_STATUS_REQUEST
from pm_agent.star_status import asb_length, decode_asb

log = logging.getLogger(__name__)

RAW_PORT = 9100
#: Largest scan without ``force``: a /22.
MAX_SCAN_ADDRESSES = 1024


def scan_targets(cidr: str, *, force: bool = False) -> list[str]:
    """The host addresses of ``cidr``; ValueError for a bad or too large CIDR."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"--scan {cidr!r}: not a CIDR like 192.168.1.0/24 ({exc})") from None
    if network.num_addresses > MAX_SCAN_ADDRESSES and not force:
        raise ValueError(
            f"--scan {cidr}: {network.num_addresses} addresses is more than a /22 "
            f"({MAX_SCAN_ADDRESSES}); scan the printers' subnet only, or add --scan-force"
        )
    return [str(address) for address in network.hosts()] or [str(network.network_address)]


async def _star_probe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    uri: str,
    timeout: float,
    source: str,
) -> FoundPrinter | None:
    """Ask ``ESC ACK SOH``; a Star printer in a Star mode answers its ASB status."""
    try:
        writer.write(STAR_STATUS_REQUEST)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(1), timeout)
        rest = await asyncio.wait_for(reader.readexactly(asb_length(header[0]) - 1), timeout)
        report = decode_asb(header + rest)
    except (TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
        return None
    log.info("%s is a Star printer in a Star mode (it answered ESC ACK SOH)", uri)
    return FoundPrinter(
        uri=uri, kind="network", source=source, status=report.status, language="star_raster"
    )


async def _read_string(reader: asyncio.StreamReader, timeout: float) -> str | None:
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\x00"), timeout)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        return None
    raw = raw[:-1]
    if raw[:1] == bytes([STRING_HEADER]):
        raw = raw[1:]
    text = "".join(c for c in raw.decode("ascii", "replace") if c.isprintable()).strip()
    return text[:64] or None


async def probe_printer(
    host: str, port: int, *, timeout: float = 0.6, identify: bool = True, source: str = "scan"
) -> FoundPrinter | None:
    """Connect, ask DLE EOT (and GS I); None when nothing listens or it is not a printer."""
    uri = f"tcp://{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(ALL_STATUS_QUERIES)
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.readexactly(4), timeout)
        except (TimeoutError, asyncio.IncompleteReadError):
            star = await _star_probe(reader, writer, uri, timeout, source)
            if star is not None:
                return star
            log.info(
                "%s accepts connections but does not answer DLE EOT; if it is a receipt "
                "printer, add it with --printer %s",
                uri,
                uri,
            )
            return FoundPrinter(uri=uri, kind="network", source=source, confirmed=False)
        try:
            report = decode_status(*answer)
        except ValueError:
            log.debug("%s answered %r: not an ESC/POS printer", uri, answer)
            return None
        serial = model = None
        if identify:
            writer.write(identity_request(SERIAL))
            await writer.drain()
            serial = await _read_string(reader, timeout)
            if serial is not None:
                writer.write(identity_request(MODEL))
                await writer.drain()
                model = await _read_string(reader, timeout)
        return FoundPrinter(
            uri=uri,
            kind="network",
            source=source,
            serial=serial,
            model=model,
            status=report.status,
        )
    except OSError as exc:
        log.debug("probe of %s failed: %s", uri, exc)
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


class TcpScanSource:
    """``--scan CIDR``: raw-port scan confirmed by DLE EOT."""

    name = "scan"

    def __init__(
        self,
        cidr: str,
        *,
        ports: Sequence[int] = (RAW_PORT,),
        timeout: float = 0.6,
        concurrency: int = 64,
        force: bool = False,
        arp_table: Path = ARP_TABLE,
    ) -> None:
        self.cidr = cidr
        self.hosts = scan_targets(cidr, force=force)
        self.ports = tuple(ports) or (RAW_PORT,)
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.arp_table = arp_table

    async def discover(self) -> list[FoundPrinter]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(host: str, port: int) -> FoundPrinter | None:
            async with limit:
                return await probe_printer(host, port, timeout=self.timeout)

        results = await asyncio.gather(*(one(h, p) for h in self.hosts for p in self.ports))
        found = await with_macs([r for r in results if r is not None], table=self.arp_table)
        log.info(
            "scan of %s on port(s) %s: %d printer(s), %d silent",
            self.cidr,
            ",".join(map(str, self.ports)),
            sum(1 for f in found if f.confirmed),
            sum(1 for f in found if not f.confirmed),
        )
        return found
