"""``pm tui --web`` serves the same dashboard to a browser (textual-serve)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp

from pm_hub.server import RunningHub
from tests.tui.test_smoke import free_port


async def test_pm_tui_web_serves_the_dashboard_page(hub: RunningHub, admin_token: str) -> None:
    port = free_port()
    env = {**os.environ, "PM_TOKEN": admin_token, "PM_MDNS": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pm", "tui", "--web", "--web-port", str(port), "--hub", hub.url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        page = ""
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline and proc.returncode is None:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/") as resp:
                        page = await resp.text()
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
        assert proc.returncode is None, "pm tui --web exited"
        assert "PrinterMaster" in page and "<html" in page.lower()
        assert admin_token not in page  # the token stays in the server's environment
    finally:
        proc.terminate()
        await proc.wait()
