"""Running the pieces together: ``pm up`` (hub + agent + optional simulated printers in
one process) and ``pm agent`` (the agent, finding its hub on mDNS when not told)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pm_core.tls import client_context, pinned_context
from pm_hub import auth
from pm_hub.config import HubSettings
from pm_hub.hub import Hub
from pm_hub.server import start_hub
from pm_hub.store import tenants

log = logging.getLogger(__name__)

LOCAL_KEY_FILE = "local-agent.key"
DEMO_STATIONS = ("kitchen", "kitchen", "bar", "receipt", "receipt", "bar")
DEMO_NAMES = ("Kitchen-1", "Kitchen-2", "Bar", "Receipt-1", "Receipt-2", "Bar-2")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def agent_health_options(settings: HubSettings) -> dict[str, Any]:
    """The agent's health and spool settings, as :class:`pm_agent.agent.Agent` takes them."""
    return {
        "ping_interval": settings.agent_ping_interval_s,
        "report_interval": settings.agent_report_interval_s,
        "spool_retention": settings.agent_spool_retention_s,
    }


async def local_license(hub: Hub) -> str:
    """The license of the agent that runs inside ``pm up``: created once, kept in the
    data dir (mode 600), replaced if the database no longer knows it."""
    path: Path = hub.settings.data_dir / LOCAL_KEY_FILE
    existing = await asyncio.to_thread(_read_key, path)
    if existing:
        key_hash = auth.hash_license_key(existing)
        known = await hub.db.read(lambda d: tenants.find_license(d, key_hash))
        if known is not None and known["revoked_at"] is None:
            return existing
    key = await hub.create_license(label="pm up (local agent)")
    await asyncio.to_thread(_write_key, path, key)
    return key


def _read_key(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _write_key(path: Path, key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")


#: The simulated CloudPRNT printer of ``pm up --sim-cloudprnt`` (and ``pm demo``).
SIM_CLOUDPRNT_MAC = "00:11:62:00:5e:01"


async def start_cloudprnt_sim(running: Any) -> Any:
    """Enroll a simulated Star CloudPRNT printer ("Pass-Cloud", station ``pass``) in
    the hub and start it polling the hub's ``/cloudprnt`` on loopback."""
    from pm_agent.sim.cloudprnt_client import SimulatedCloudPrntPrinter
    from pm_hub.cloudprnt import new_secret
    from pm_hub.store import cloudprnt as cloudprnt_store

    hub = running.hub
    if hub.cloudprnt is None or running.tls:
        return None  # (the simulated printer does not check a self-signed hub: HTTP only)
    secret = new_secret()
    await hub.db.write(
        lambda d: cloudprnt_store.enroll(
            d, mac=SIM_CLOUDPRNT_MAC, name="Pass-Cloud", secret=secret, dots=576, station="pass"
        )
    )
    await hub.cloudprnt.load_enrollments()
    scheme = "https" if running.tls else "http"
    printer = SimulatedCloudPrntPrinter(
        f"{scheme}://127.0.0.1:{running.port}/cloudprnt",
        mac=SIM_CLOUDPRNT_MAC,
        secret=secret,
        name="Pass-Cloud",
        poll_interval=1.0,
    )
    await printer.start()
    _say(f"simulated CloudPRNT printer Pass-Cloud ({SIM_CLOUDPRNT_MAC}) polling the hub")
    return printer


async def run_up(
    settings: HubSettings,
    *,
    printers: list[Any],
    sim_count: int = 0,
    sim_port: int = 9101,
    sim_control_port: int = 9180,
    poll_interval: float = 2.0,
    discovery: Any = None,
    sim_cloudprnt: bool = False,
) -> int:
    from pm_agent.agent import Agent
    from pm_agent.printer_uri import parse_printer_spec
    from pm_agent.sim.fleet import SimulatorFleet

    fleet = None
    specs = list(printers)
    if sim_count:
        names = [DEMO_NAMES[i] if i < len(DEMO_NAMES) else f"Sim-{i + 1}" for i in range(sim_count)]
        fleet = await SimulatorFleet.start(
            count=sim_count, base_port=sim_port, names=names, control_port=sim_control_port
        )
        for i, printer in enumerate(fleet.printers):
            station = DEMO_STATIONS[i % len(DEMO_STATIONS)]
            specs.append(
                parse_printer_spec(f"{printer.name}=tcp://127.0.0.1:{printer.port}#{station}")
            )
            _say(f"simulated printer {printer.name} on tcp://127.0.0.1:{printer.port}")
        _say(f"simulator control on http://127.0.0.1:{fleet.control_port} (pm simctl --help)")
    running = await start_hub(settings)
    agent = None
    cloud: Any = None
    traffic: asyncio.Task[None] | None = None
    try:
        if sim_cloudprnt:
            cloud = await start_cloudprnt_sim(running)
        key = await local_license(running.hub)
        # The local agent reaches its own hub on loopback: over TLS too when the hub
        # serves it, trusting exactly the hub's certificate (its name is not 127.0.0.1).
        scheme = "https" if running.tls else "http"
        agent = Agent(
            hub_url=f"{scheme}://127.0.0.1:{running.port}",
            tls=pinned_context(settings.tls_cert) if settings.tls_cert else None,
            license_key=key,
            data_dir=settings.data_dir,
            printers=specs,
            poll_interval=poll_interval,
            name="local agent",
            discovery=discovery,
            **agent_health_options(settings),
        )
        await agent.start()
        _say(
            f"branch box up: hub on {running.url}, {len(specs)} printer(s), "
            f"data in {settings.data_dir}"
        )
        if os.environ.get("PM_DEMO_TRAFFIC") and fleet is not None:
            from pm.demo_traffic import run_demo_traffic

            traffic = asyncio.create_task(run_demo_traffic(running.hub, fleet))
        await asyncio.Event().wait()
    finally:
        if traffic is not None:
            traffic.cancel()
        if agent is not None:
            await agent.stop()
        if cloud is not None:
            await cloud.stop()
        await running.stop()
        if fleet is not None:
            await fleet.stop()
    return 0


async def run_agent(
    *,
    hub_url: str | None,
    license_key: str,
    data_dir: Path,
    printers: list[Any],
    settings: HubSettings | None = None,
    poll_interval: float = 2.0,
    name: str | None = None,
    discovery: Any = None,
    mdns_interfaces: list[str] | None = None,
    mdns_timeout: float = 5.0,
    hub_branch: str | None = None,
    ca_file: Path | None = None,
) -> int:
    from pm_agent.agent import Agent, AgentAuthError

    if not hub_url:
        from pm_core.mdns import find_hub

        which = f" of branch {hub_branch!r}" if hub_branch else ""
        _say(f"pm agent: no --hub given; looking for a hub{which} on mDNS")
        hub_url = await find_hub(
            timeout=mdns_timeout, interfaces=mdns_interfaces, branch=hub_branch
        )
        if not hub_url:
            _say(
                f"pm agent: no hub{which} announced on mDNS (is the hub started with "
                "--no-mdns, or listening on 127.0.0.1 on another machine?); pass --hub URL"
            )
            return 2
        _say(f"pm agent: found the hub at {hub_url}")
    if not printers and not (discovery is not None and discovery.enabled):
        _say("pm agent: no printers given (use --printer tcp://HOST:PORT); waiting anyway")
    options = agent_health_options(settings or HubSettings(data_dir=data_dir))
    agent = Agent(
        hub_url=hub_url,
        tls=client_context(ca_file) if hub_url.startswith("https://") else None,
        license_key=license_key,
        data_dir=data_dir,
        printers=printers,
        poll_interval=poll_interval,
        name=name,
        discovery=discovery,
        **options,
    )
    try:
        await agent.start()
        _say(f"agent connected to {hub_url} with {len(agent.workers)} printer(s)")
        await asyncio.Event().wait()
    except AgentAuthError as exc:
        _say(f"pm agent: {exc}")
        return 3
    finally:
        await agent.stop()
    return 0
