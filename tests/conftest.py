"""Shared fixtures: a real hub on 127.0.0.1, simulated printers, a real agent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pm_agent.agent import Agent
from pm_agent.printer_uri import parse_printer_spec
from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.config import HubSettings
from pm_hub.server import RunningHub, start_hub
from tests.support.helpers import OpsClient
from tests.support.services import postgres_schema
from tests.support.tls import Certificates, make_certificates


@pytest.fixture(autouse=True, scope="session")
def _commands_do_not_announce_on_mdns() -> Iterator[None]:
    """``pm hub`` and ``pm up`` announce themselves on mDNS by default; the hubs tests
    start (many, some in subprocesses) stay quiet so no test finds another's hub. The
    mDNS tests switch it on for their own hub."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PM_MDNS", "0")
        yield


def hub_settings(data_dir: Path, **overrides: Any) -> HubSettings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": 0,
        "request_timeout": 5.0,
        "sqlite_synchronous": "NORMAL",
    }
    values.update(overrides)
    return HubSettings(**values)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(hub_settings(tmp_path / "hub"))
    yield running
    await running.stop()


@pytest.fixture
def admin_token(hub: RunningHub) -> str:
    assert hub.hub.tokens is not None
    return hub.hub.tokens.create(role="admin", sub="test-admin")


@pytest.fixture
async def ops(hub: RunningHub, admin_token: str) -> AsyncIterator[OpsClient]:
    client = await OpsClient(hub.url, admin_token).connect()
    yield client
    await client.close()


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatorFleet]:
    async with SimulatorFleet.start(count=2, names=["Kitchen-1", "Bar"], control_port=None) as f:
        yield f


AgentFactory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def make_agent(hub: RunningHub, tmp_path: Path) -> AsyncIterator[AgentFactory]:
    agents: list[Agent] = []

    async def make(
        printers: list[str], *, name: str = "agent", license_key: str | None = None, **kw: Any
    ) -> Agent:
        key = license_key or await hub.hub.create_license()
        kw.setdefault("poll_interval", 0.2)
        kw.setdefault("spool_synchronous", "NORMAL")
        agent = Agent(
            hub_url=hub.url,
            license_key=key,
            data_dir=tmp_path / f"agent-{name}",
            printers=[parse_printer_spec(p) for p in printers],
            name=name,
            **kw,
        )
        agents.append(agent)
        await agent.start()
        return agent

    yield make
    for agent in agents:
        await agent.stop()


@pytest.fixture
async def agent(make_agent: AgentFactory, fleet: SimulatorFleet) -> Agent:
    specs = [f"{p.name}=tcp://127.0.0.1:{p.port}#kitchen" for p in fleet.printers]
    return await make_agent(specs)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A private CA and the hub's certificate for 127.0.0.1 (TLS tests)."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL URL whose connections use a schema made for this test (dropped
    after). Skipped when the server cannot be reached, failed instead with
    ``PM_REQUIRE_SERVICES=1`` (tests/support/services.py)."""
    label = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[5:25].strip("_")
    with postgres_schema(label or "t") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store test keeps its data, once per engine: a SQLite file, then a
    PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url
