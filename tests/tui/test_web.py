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
from pathlib import Path

import aiohttp
import pytest

from pm_hub.server import RunningHub
from tests.support.browser import chromium_path, headless_chromium
from tests.support.helpers import eventually
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


def external_loads(text: str) -> list[str]:
    """Addresses a page or style sheet would load: ``src``/``href`` attributes, CSS
    ``url()`` and ``@import`` (an ``xmlns`` or a URL in a comment loads nothing)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", text)
    found += re.findall(r"""url\(\s*["']?([^"')\s]+)""", text)
    found += re.findall(r"""@import\s+["']([^"']+)""", text)
    return [
        u
        for u in found
        if u.startswith(("http:", "https:", "//"))
        and not re.match(r"^(https?:)?//(127\.0\.0\.1|localhost)[:/]", u)
    ]


async def test_the_page_and_its_style_sheets_load_nothing_from_elsewhere(
    web: WebDashboard,
) -> None:
    """Issue 16: the web dashboard fetched a font from the internet; a branch box is
    often offline. The page and every style sheet it uses point only at this server."""
    async with aiohttp.ClientSession() as session:
        async with session.get(web.url) as resp:
            page = await resp.text()
        assert external_loads(page) == []
        sheets = re.findall(r"""href="([^"]+\.css)""", page)
        assert sheets
        for sheet in sheets:
            async with session.get(web.base + sheet) as resp:
                assert resp.status == 200
                assert external_loads(await resp.text()) == [], sheet
    # The checker itself finds what it must.
    assert external_loads('<link href="https://fonts.googleapis.com/css2?family=X">') != []
    assert external_loads("@font-face { src: url(https://example.com/f.ttf) }") != []


async def test_a_dashboard_is_ready_before_the_page_opens(
    hub: RunningHub, web: WebDashboard
) -> None:
    """Issue 16: the page showed only its splash screen for seconds while a dashboard
    process started. One starts with the server: it is connected to the hub before any
    page opens, and the first page takes it over (with --web-sessions 1, no other)."""
    await eventually(lambda: len(hub.hub.state.operators) == 1, what="a dashboard started ahead")
    own = {"Origin": web.base}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(web.url):
            pass
        page = await session.ws_connect(f"{web.base}/ws?width=100&height=30", headers=own)
        try:
            started = time.monotonic()
            frame = await asyncio.wait_for(page.receive(), 20)
            assert frame.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)
            assert time.monotonic() - started < 1.0  # no process to start: it is there
            await asyncio.sleep(1)
            assert len(hub.hub.state.operators) == 1  # the same dashboard, taken over
        finally:
            await page.close()


@pytest.mark.skipif(chromium_path() is None, reason="needs Chromium (apt-get install chromium)")
async def test_keys_work_in_the_browser_without_a_click(
    hub: RunningHub, web: WebDashboard, tmp_path: Path
) -> None:
    """Issue 16: the page took no keys until clicked. In a real (headless) Chromium the
    page is opened and ``6`` pressed without any click: the dashboard goes to its Logs
    tab, which follows the hub's log lines (the hub sees the follower). Every request
    the page made went to this server."""
    async with headless_chromium() as browser:
        await browser.open(web.url)
        deadline = time.monotonic() + 30
        while "-first-byte" not in str(await browser.evaluate("document.body.className")):
            assert time.monotonic() < deadline, "the dashboard never showed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # connected to the hub and drawn
        assert hub.hub.logs.followers == 0
        await browser.press("6")
        await eventually(lambda: hub.hub.logs.followers == 1, what="the Logs tab opened")
        await browser.screenshot(tmp_path / "logs-tab.png")
        assert browser.requests
        port = web.base.rsplit(":", 1)[1]
        assert all(u.startswith(f"http://127.0.0.1:{port}/") for u in browser.requests), (
            browser.requests
        )
