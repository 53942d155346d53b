"""``pm tui --web`` serves the same dashboard to a browser (textual-serve), and only to
the person who started it (issue 12, finding 1): a secret in the printed address,
its own host name and origin only, a cap on open dashboards, nothing fetched from
the internet."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from pm_hub.server import RunningHub
from tests.tui.test_smoke import free_port


@dataclass
class WebDashboard:
    url: str  #: the address it printed, with the secret
    base: str  #: http://127.0.0.1:PORT
    secret: str


@pytest.fixture
async def web(hub: RunningHub, admin_token: str) -> AsyncIterator[WebDashboard]:
    port = free_port()
    env = {**os.environ, "PM_TOKEN": admin_token, "PM_MDNS": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pm", "tui", "--web", "--web-port", str(port), "--hub", hub.url,
        "--web-sessions", "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        said = ""
        deadline = time.monotonic() + 20
        while "Serving the dashboard on" not in said and time.monotonic() < deadline:
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, f"pm tui --web exited: {said}"
            said += line.decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", said)
        assert match, said
        assert admin_token not in said  # the token stays in the server's environment
        dashboard = WebDashboard(match.group(0), match.group(1), match.group(2))
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(dashboard.base + "/static/css/xterm.css"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
        yield dashboard
    finally:
        proc.terminate()
        await proc.wait()


async def test_the_printed_address_opens_the_dashboard_page(web: WebDashboard) -> None:
    async with aiohttp.ClientSession() as session, session.get(web.url) as resp:
        page = await resp.text()
        assert resp.status == 200
        assert "PrinterMaster" in page and "<html" in page.lower()
        assert resp.cookies["pm_web_session"]["httponly"]
        assert resp.cookies["pm_web_session"]["samesite"] == "Strict"
    # Everything the page loads comes from this server (branch boxes are often offline).
    loads = re.findall(r'(?:href|src|url)\(?="?([^"\s)]+)', page)
    assert loads and all(not u.startswith(("http:", "https:", "//")) for u in loads), loads
    assert "googleapis" not in page


async def test_without_the_secret_nothing_is_served(web: WebDashboard) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/?token=wrong", "/ws"):
            async with session.get(web.base + path) as resp:
                assert resp.status == 403, path
                assert "PrinterMaster" not in await resp.text()


async def test_a_foreign_web_page_cannot_drive_the_dashboard(web: WebDashboard) -> None:
    """The finding: a page elsewhere opened the WebSocket with its own Origin and typed
    ``t`` (a test print). Refused at the handshake, with or without the secret."""
    async with aiohttp.ClientSession() as session:
        for query in ("", f"?token={web.secret}"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    f"{web.base}/ws{query}", headers={"Origin": "http://evil.example"}
                )
            assert refused.value.status == 403


async def test_a_rebound_host_name_is_refused(web: WebDashboard) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 sends its own Host header."""
    port = web.base.rsplit(":", 1)[1]
    rebound = {"Host": f"evil.example:{port}"}
    async with aiohttp.ClientSession() as session, session.get(web.url, headers=rebound) as resp:
        assert resp.status == 403


async def test_own_page_gets_a_dashboard_and_the_cap_holds(web: WebDashboard) -> None:
    own = {"Origin": web.base}
    # A browser keeps cookies of 127.0.0.1; aiohttp does only when told (unsafe=True).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(web.url) as resp:
            assert resp.status == 200  # the cookie is set now
        first = await session.ws_connect(f"{web.base}/ws?width=80&height=24", headers=own)
        try:
            frame = await asyncio.wait_for(first.receive(), 20)
            assert frame.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{web.base}/ws", headers=own)
            assert refused.value.status == 503  # --web-sessions 1
        finally:
            await first.close()
