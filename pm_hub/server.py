"""The hub's aiohttp application: Socket.IO namespaces, HTTP API, lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pm_core import __version__
from pm_core.protocol import HubEvent, Namespace
from pm_core.startup_checks import StartupError, listen_error_message
from pm_core.tls import server_context
from pm_hub.config import HubSettings
from pm_hub.hub import Hub
from pm_hub.proxies import forwarded_for, parse_networks
from pm_hub.wiring import build_hub, mount

log = logging.getLogger(__name__)

HUB_KEY = web.AppKey("hub", Hub)


def create_app(settings: HubSettings) -> web.Application:
    """Build the application (``pm_hub.wiring``); the hub starts and stops with it
    (``cleanup_ctx``)."""
    hub = build_hub(settings)
    app = web.Application(client_max_size=settings.max_payload_bytes)
    if settings.trusted_proxies:
        app.middlewares.append(forwarded_for(parse_networks(settings.trusted_proxies)))
    app[HUB_KEY] = hub
    mount(app, hub)
    sio = hub.broadcaster.sio

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await hub.start()
        yield
        hub.state.stopping = True
        try:
            await sio.shutdown()
        except Exception:
            log.debug("socket.io shutdown", exc_info=True)
        await hub.stop()

    async def announce_stop(app: web.Application) -> None:
        # A planned stop: agents and dashboards hear it before their link closes, and
        # the agents' disconnects that follow raise no alerts.
        hub.state.stopping = True
        payload = {"planned": True, "reason": "shutdown"}
        for namespace in (Namespace.AGENT, Namespace.OPS):
            try:
                # This process's own clients only (another company-hub process goes on).
                await asyncio.wait_for(
                    sio.emit(
                        HubEvent.HUB_STOPPING, payload, namespace=namespace, ignore_queue=True
                    ),
                    1.0,
                )
            except Exception:
                log.debug("announcing the stop on %s", namespace, exc_info=True)
        log.info("hub stopping (planned): agents and dashboards told")

    async def drop_connections(app: web.Application) -> None:
        # Close every Engine.IO connection so the web server does not wait on them;
        # clients see a dropped transport and reconnect to the next hub process.
        hub.state.stopping = True
        for socket in list(sio.eio.sockets.values()):
            try:
                await asyncio.wait_for(socket.close(wait=False), 1.0)
            except Exception:
                log.debug("closing a connection at shutdown", exc_info=True)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(announce_stop)
    app.on_shutdown.append(drop_connections)
    return app


@dataclass
class RunningHub:
    """A hub listening on a socket (used by ``pm hub``, ``pm up`` and the tests)."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int
    advertiser: Any = None  #: pm_core.mdns.HubAdvertiser while announced on mDNS
    tls: bool = False  #: serving https:// and wss://

    @property
    def hub(self) -> Hub:
        return self.app[HUB_KEY]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def stop(self) -> None:
        advertiser, self.advertiser = self.advertiser, None
        if advertiser is not None:
            try:
                await advertiser.stop()
            except Exception:
                log.debug("mDNS shutdown", exc_info=True)
        await self.runner.cleanup()

    async def start_mdns(self) -> None:
        """Announce this hub on mDNS (``settings.mdns``); a failure only logs."""
        # zeroconf loads here, only for a hub that announces itself (keeps start-up fast).
        from pm_core.mdns import HubAdvertiser

        hub = self.hub
        advertiser = HubAdvertiser(
            port=self.port,
            host=self.host,
            branch=hub.branch_name,
            branch_id=hub.branch_id,
            version=__version__,
            company_mode=hub.settings.company_mode,
            tls=self.tls,
        )
        try:
            await advertiser.start()
        except Exception as exc:
            log.warning("cannot advertise the hub on mDNS (%s); agents need --hub", exc)
            return
        self.advertiser = advertiser


async def start_hub(settings: HubSettings) -> RunningHub:
    """Start listening on ``settings.host:settings.port`` (port 0 picks a free one)."""
    ssl_context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        ssl_context = server_context(settings.tls_cert, settings.tls_key)
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.port, reuse_address=True, ssl_context=ssl_context
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(listen_error_message(settings.host, settings.port, exc)) from exc
    port = settings.port
    sockets = getattr(site._server, "sockets", None)  # the bound port when 0 was asked for
    if sockets:
        port = sockets[0].getsockname()[1]
    running = RunningHub(
        app=app, runner=runner, host=settings.host, port=port, tls=ssl_context is not None
    )
    log.info("hub ready: listening on %s", running.url)
    if settings.mdns:
        await running.start_mdns()
    return running
