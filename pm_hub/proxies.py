"""Who a client really is behind a load balancer.

Behind HAProxy or nginx every connection comes from the balancer's address, so the
per-address limits (connections, failed logins) would count every branch, agent and
dashboard as one client. For a connection from a trusted proxy (``trusted_proxies``),
the client is the right-most address of ``X-Forwarded-For`` that is not a trusted
proxy itself; from anyone else the header is ignored (a client cannot choose how it
is counted by sending one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aiohttp loads with the server, not with the settings (pm --help)
    from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
if TYPE_CHECKING:
    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_networks(text: str) -> list[Network]:
    """``"10.0.0.5, 10.1.0.0/16"`` -> networks; a bad entry is a ValueError naming it."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"trusted_proxies: {item!r} is not an IP address or network (e.g. 10.0.0.5 "
                "or 10.0.0.0/24)"
            ) from None
    return networks


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded: list[str], trusted: list[Network]) -> str | None:
    """The client of a connection from ``peer`` that carried ``X-Forwarded-For`` headers
    ``forwarded`` (None: keep ``peer``)."""
    if not trusted or peer is None or not _trusted(peer, trusted):
        return None
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return None  # a malformed chain: count the proxy, not a made-up client
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else None


def forwarded_for(trusted: list[Network]) -> Any:
    """An aiohttp middleware: requests from a trusted proxy carry their client's address
    as ``request.remote`` (which the admission counts, for HTTP and Socket.IO)."""
    from aiohttp import web

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), trusted
        )
        if client is not None:
            request = request.clone(remote=client)
        return await handler(request)

    return middleware
