"""Behind a load balancer (``trusted_proxies``), the per-address limits count the
clients named in ``X-Forwarded-For``; from anyone else that header changes nothing."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import socketio

from pm_core.protocol import Namespace
from pm_hub.config import load_settings
from pm_hub.proxies import client_address, parse_networks
from pm_hub.server import start_hub
from tests.conftest import hub_settings

PROXY = parse_networks("127.0.0.1, 10.9.0.0/16")


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["198.51.100.7, 10.9.1.1"], "198.51.100.7"),  # two proxies
        ("127.0.0.1", ["203.0.113.9, 198.51.100.7"], "198.51.100.7"),  # the nearest wins
        ("127.0.0.1", ["198.51.100.7", "10.9.1.1"], "198.51.100.7"),  # repeated header
        ("127.0.0.1", ["not-an-address"], None),
        ("127.0.0.1", [], None),
        ("192.0.2.1", ["198.51.100.7"], None),  # not a proxy: the header is ignored
    ],
)
def test_the_client_behind_trusted_proxies(
    peer: str, header: list[str], client: str | None
) -> None:
    assert client_address(peer, header, PROXY) == client


def test_trusted_proxies_must_be_addresses() -> None:
    assert parse_networks("") == []
    assert parse_networks("10.0.0.5") == [ipaddress.ip_network("10.0.0.5/32")]
    with pytest.raises(ValueError, match="not an IP address"):
        load_settings(overrides={"trusted_proxies": "balancer.local"})


async def login(url: str, token: str, client: str) -> str | None:
    """Connect as an operator from ``client`` (as the balancer says); the refusal code."""
    refused: list[str] = []
    sio = socketio.AsyncClient(reconnection=False)

    def on_error(data: object = None) -> None:
        detail = data.get("data") if isinstance(data, dict) else None
        refused.append(str(detail.get("code") if isinstance(detail, dict) else data))

    sio.on("connect_error", on_error, namespace=Namespace.OPS)
    try:
        await sio.connect(
            url,
            namespaces=[Namespace.OPS],
            auth={"token": token},
            headers={"X-Forwarded-For": client},
            transports=["websocket"],
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        return refused[0] if refused else "refused"
    await sio.disconnect()
    return None


@pytest.mark.parametrize("trusted", [True, False])
async def test_failed_logins_count_per_client_behind_the_balancer(
    tmp_path: Path, trusted: bool
) -> None:
    hub = await start_hub(
        hub_settings(
            tmp_path,
            login_failures_allowed=2,
            trusted_proxies="127.0.0.1" if trusted else "",
        )
    )
    try:
        assert hub.hub.tokens is not None
        good = hub.hub.tokens.create(role="admin")
        for _ in range(3):
            assert await login(hub.url, "wrong", "198.51.100.7") is not None
        assert await login(hub.url, good, "198.51.100.7") == "rate_limited"
        other = await login(hub.url, good, "198.51.100.8")
        # Trusted: another kitchen behind the same balancer is not punished. Not
        # trusted: everyone is 127.0.0.1, and a client cannot claim otherwise.
        assert other == (None if trusted else "rate_limited")
    finally:
        await hub.stop()
