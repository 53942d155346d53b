"""``pm tui --web``: the dashboard in a browser, for the person who started it and
nobody else.

textual-serve runs one dashboard process per browser tab and streams its screen
over a WebSocket that takes key presses, all under the operator's token. So the
server here (a textual-serve ``Server`` with a guard in front):

- asks for a secret made at start and printed in the URL (``?token=...``, as
  notebook servers do); the first visit turns it into an HttpOnly, SameSite=Strict
  cookie;
- takes requests only for its own host name (a DNS-rebinding page is refused) and
  WebSockets only from its own pages (the ``Origin`` header), so another web page
  the operator has open cannot drive the dashboard;
- caps the dashboards open at once (each is a process of its own);
- serves its page with fonts and scripts from here (branch boxes are often offline);
- keeps one dashboard started ahead (``pm_tui.web_spare``), so a page shows the
  dashboard as soon as it connects rather than a splash screen while one starts.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import textual_serve
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from pm_tui.web_spare import SpareDashboard, Target

log = logging.getLogger(__name__)

COOKIE = "pm_web_session"
TEMPLATES = Path(__file__).with_name("web")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")
#: Dashboards open at once by default (each is a dashboard process of ~60 MB).
DEFAULT_MAX_SESSIONS = 4

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class DashboardWebServer(Server):
    def __init__(
        self,
        command: str,
        *,
        host: str,
        port: int,
        secret: str,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        title: str = "PrinterMaster",
        spare: bool = True,
    ) -> None:
        statics = Path(textual_serve.__file__).with_name("static")  # xterm.js, fonts
        super().__init__(
            command,
            host=host,
            port=port,
            title=title,
            statics_path=statics,
            templates_path=TEMPLATES,
        )
        self.secret = secret
        self.max_sessions = max_sessions
        self.sessions = 0
        #: Keep a dashboard started ahead for the next page (counts against the cap).
        self.keep_spare = spare
        self.spare: SpareDashboard | None = None
        self._spare_starting: asyncio.Task[None] | None = None
        #: The size of the last page: the next spare starts at it.
        self.last_size = (80, 24)
        names = LOOPBACK_NAMES if host in LOOPBACK_NAMES else (host,)
        #: ``Host`` headers this server answers (its own name, with the port).
        self.hosts = {f"{name}:{port}" for name in names}
        #: ``Origin`` of its own pages: the only ones whose WebSocket it takes.
        self.origins = {f"http://{name}" for name in self.hosts}

    @property
    def url(self) -> str:
        """What to open in the browser: the page, with the secret."""
        return f"http://{self.host}:{self.port}/?token={self.secret}"

    def initialize_logging(self) -> None:
        """pm's own logging is set up already (textual-serve's would replace it)."""

    async def on_startup(self, app: web.Application) -> None:
        """No banner (``pm tui`` said where to go); a dashboard starts ahead."""
        self._want_spare()

    async def on_shutdown(self, app: web.Application) -> None:
        await super().on_shutdown(app)
        self.keep_spare = False
        if self._spare_starting is not None:
            # Not cancelled: a process start cancelled half-way is waited for forever.
            await asyncio.wait({self._spare_starting}, timeout=10)
        spare, self.spare = self.spare, None
        if spare is not None:
            await spare.stop()

    def _want_spare(self) -> None:
        """Start a spare dashboard if none is ready and the cap leaves room for one."""
        if not self.keep_spare or self.sessions >= self.max_sessions:
            return
        if self.spare is not None and self.spare.alive:
            return
        if self._spare_starting is not None and not self._spare_starting.done():
            return
        self._spare_starting = asyncio.create_task(self._start_spare())

    async def _start_spare(self) -> None:
        width, height = self.last_size
        spare = SpareDashboard(
            self.command,
            width=width,
            height=height,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        try:
            await spare.start()
        except Exception:
            log.exception("web dashboard: could not start a dashboard ahead")
            return
        self.spare = spare

    def _take_spare(self) -> SpareDashboard | None:
        spare, self.spare = self.spare, None
        if spare is not None and not spare.alive:
            log.info("web dashboard: the dashboard started ahead had ended; starting one")
            return None
        return spare

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    def _has_secret(self, request: web.Request) -> bool:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.secret.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in self.hosts:
            log.warning("web dashboard: refused a request for host %r", request.host)
            raise web.HTTPForbidden(text="unknown host name")
        if request.path.startswith("/static/"):
            return await handler(request)  # xterm.js, the fonts: nothing of the branch
        if not self._has_secret(request):
            raise web.HTTPForbidden(
                text="Open the address `pm tui --web` printed: it carries the secret."
            )
        if request.path == "/ws":
            origin = request.headers.get("Origin")
            if origin not in self.origins:
                log.warning("web dashboard: refused a WebSocket from origin %r", origin)
                raise web.HTTPForbidden(text="WebSocket from another site")
        response = await handler(request)
        if request.query.get("token") and request.path == "/":
            response.set_cookie(COOKIE, self.secret, httponly=True, samesite="Strict", path="/")
        return response

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, its WebSocket and files at the host name the browser used (the
        cookie belongs to that name; the guard checked it is one of ours)."""
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"ws://{request.host}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.sessions >= self.max_sessions:
            log.warning("web dashboard: %d sessions open, refusing another", self.sessions)
            raise web.HTTPServiceUnavailable(
                text=f"{self.max_sessions} dashboards are open already; close one first"
            )
        self.sessions += 1
        try:
            return await self._serve_websocket(request)
        finally:
            self.sessions -= 1
            self._want_spare()

    async def _serve_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's ``handle_websocket``, with the spare dashboard taken over
        when there is one (else one is started for this page, as textual-serve does)."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        self.last_size = (width, height)
        app_service: AppService | None = None
        try:
            await websocket.prepare(request)

            async def close_page() -> None:
                await websocket.close()

            spare = self._take_spare()
            if spare is not None:
                app_service = spare.service
                target = Target(websocket.send_bytes, websocket.send_str, close_page)
                await spare.hand_over(target, width, height)
            else:
                app_service = AppService(
                    self.command,
                    write_bytes=websocket.send_bytes,
                    write_str=websocket.send_str,
                    close=close_page,
                    download_manager=self.download_manager,
                    debug=self.debug,
                )
                await app_service.start(width, height)
            self._want_spare()  # the next page's
            await self._process_messages(websocket, app_service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:
            log.exception("web dashboard: the page's session failed")
        finally:
            if app_service is not None:
                await app_service.stop()
        return websocket
