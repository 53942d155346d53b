"""The hub on mDNS: it advertises ``_printermaster._tcp.local.`` with its branch,
port and version, and agents and dashboards started without ``--hub`` find it.

A hub announces itself only where it listens: on 127.0.0.1 it announces on the
loopback interface alone (same-machine agents and dashboards), on a LAN address
on that interface, on 0.0.0.0 on every interface. Browsing uses the interfaces
it is given (``--mdns-interface``), all of them by default.

TXT record: ``branch`` (name), ``branch_id``, ``version``, ``mode`` (branch or
company), ``path`` (``/``), ``tls`` (``1``: the hub serves https:// and wss://).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SERVICE_TYPE = "_printermaster._tcp.local."
LOOPBACK = "127.0.0.1"


def _ipv4_addresses() -> list[str]:
    """Every IPv4 address of this machine except loopback."""
    import ifaddr

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                found.append(ip.ip)
    return found


def announce_plan(host: str) -> tuple[list[str] | None, list[str]]:
    """``(interfaces, addresses)`` for a hub listening on ``host``; interfaces None
    means every interface."""
    if host in ("", "0.0.0.0", "::"):
        return None, _ipv4_addresses() or [LOOPBACK]
    if host == "localhost":
        return [LOOPBACK], [LOOPBACK]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        resolved = socket.gethostbyname(host)
        return [resolved], [resolved]
    if address.is_loopback:
        return [LOOPBACK], [LOOPBACK]
    return [str(address)], [str(address)]


def _label(text: str) -> str:
    """An instance name: printable, at most 63 bytes."""
    clean = re.sub(r"[^\w .\-]+", "", text).strip() or "PrinterMaster"
    return clean.encode()[:63].decode(errors="ignore")


class HubAdvertiser:
    """Announces one running hub until stopped."""

    def __init__(
        self,
        *,
        port: int,
        host: str = LOOPBACK,
        branch: str = "",
        branch_id: int | None = None,
        version: str = "",
        company_mode: bool = False,
        instance: str | None = None,
        tls: bool = False,
    ) -> None:
        self.port = port
        self.host = host
        self.properties = {
            "branch": branch[:100],
            "branch_id": "" if branch_id is None else str(branch_id),
            "version": version,
            "mode": "company" if company_mode else "branch",
            "path": "/",
            "tls": "1" if tls else "0",
        }
        hostname = socket.gethostname().split(".")[0] or "hub"
        self.instance = _label(instance or f"PrinterMaster {branch or 'hub'} on {hostname}")
        self.server = f"{_label(hostname).replace(' ', '-')}.local."
        self._zeroconf: Any = None
        self._registering: asyncio.Task[bool] | None = None

    async def start(self) -> None:
        """Begin announcing; the name is probed and announced in the background (it
        takes about a second and a half), see :meth:`announced`."""
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        interfaces, addresses = await asyncio.to_thread(announce_plan, self.host)
        zc = AsyncZeroconf(
            interfaces=interfaces if interfaces is not None else InterfaceChoice.All,
            ip_version=IPVersion.V4Only,
        )
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses],
            port=self.port,
            properties=self.properties,
            server=self.server,
        )
        self._zeroconf = zc
        self._registering = asyncio.create_task(
            self._register(zc, info, addresses), name="hub:mdns"
        )

    async def _register(self, zc: Any, info: Any, addresses: list[str]) -> bool:
        try:
            announced = await zc.async_register_service(info, allow_name_change=True)
            await announced
        except Exception as exc:
            log.warning("cannot advertise the hub on mDNS (%s); agents need --hub", exc)
            return False
        log.info(
            "advertising the hub on mDNS as %r (%s port %d)",
            info.name,
            ", ".join(addresses),
            self.port,
        )
        return True

    async def announced(self) -> bool:
        """Wait until the announcement went out; False when it failed."""
        return bool(self._registering is not None and await self._registering)

    async def stop(self) -> None:
        zc, self._zeroconf = self._zeroconf, None
        task, self._registering = self._registering, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if zc is None:
            return
        try:
            await zc.async_unregister_all_services()
        finally:
            await zc.async_close()


@dataclass(frozen=True)
class HubAnnouncement:
    """One hub seen on mDNS."""

    name: str
    url: str
    address: str
    port: int
    branch: str | None
    branch_id: int | None
    version: str | None
    company_mode: bool


def _announcement(info: Any) -> HubAnnouncement | None:
    from zeroconf import IPVersion

    addresses = info.parsed_addresses(IPVersion.V4Only)
    if not addresses or not info.port:
        return None
    props: dict[str, str] = {}
    for key, value in (info.properties or {}).items():
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        v = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        props[k] = v or ""
    branch_id = props.get("branch_id", "")
    address = addresses[0]
    return HubAnnouncement(
        name=info.name.removesuffix("." + SERVICE_TYPE),
        url=f"{'https' if props.get('tls') == '1' else 'http'}://{address}:{info.port}",
        address=address,
        port=int(info.port),
        branch=props.get("branch") or None,
        branch_id=int(branch_id) if branch_id.isdigit() else None,
        version=props.get("version") or None,
        company_mode=props.get("mode") == "company",
    )


def _wanted(hub: HubAnnouncement, branch: str | None) -> bool:
    """A branch hub (agents and dashboards want a branch, not a company hub), of the
    branch named ``branch`` when one is given (case does not matter)."""
    if hub.company_mode:
        return False
    return branch is None or (hub.branch or "").casefold() == branch.strip().casefold()


async def browse_hubs(
    *,
    timeout: float = 3.0,
    interfaces: Sequence[str] | None = None,
    first: bool = False,
    branch: str | None = None,
) -> list[HubAnnouncement]:
    """Hubs announced within ``timeout`` seconds (``first``: stop at the first branch
    hub, of ``branch`` when given)."""
    from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    zc = AsyncZeroconf(
        interfaces=list(interfaces) if interfaces else InterfaceChoice.All,
        ip_version=IPVersion.V4Only,
    )
    names: asyncio.Queue[str] = asyncio.Queue()

    def on_change(
        zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            names.put_nowait(name)

    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    found: dict[str, HubAnnouncement] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while (remaining := deadline - loop.time()) > 0:
            try:
                name = await asyncio.wait_for(names.get(), remaining)
            except TimeoutError:
                break
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zc.zeroconf, 1500):
                continue
            announcement = _announcement(info)
            if announcement is not None:
                found[announcement.name] = announcement
                if first and _wanted(announcement, branch):
                    break
    finally:
        await browser.async_cancel()
        await zc.async_close()
    return sorted(found.values(), key=lambda h: (h.company_mode, h.name))


async def find_hub(
    timeout: float = 3.0, interfaces: Sequence[str] | None = None, branch: str | None = None
) -> str | None:
    """The URL of a branch hub announced on mDNS (the hub of ``branch`` when given:
    several hubs may share a network), or None when none answered."""
    found = await browse_hubs(timeout=timeout, interfaces=interfaces, first=True, branch=branch)
    hubs = [h for h in found if _wanted(h, branch)]
    if not hubs:
        which = f"for branch {branch!r} " if branch else ""
        log.info("no PrinterMaster hub %sannounced on mDNS within %.1fs", which, timeout)
        return None
    hub = hubs[0]
    log.info("found hub %r at %s (branch %s)", hub.name, hub.url, hub.branch)
    return hub.url
