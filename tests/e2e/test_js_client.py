"""The official Socket.IO JavaScript client (socket.io-client 4, installed into
tests/js by ``make test``) talks to the hub as a browser dashboard would: over ws://,
over wss:// with a private CA, and it is refused with the hub's reason."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.tls import Certificates

JS = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="Node.js is not installed: the JavaScript client cannot run"
)


async def js_client(url: str, token: str, ca: Path | None = None) -> tuple[int, dict[str, Any]]:
    if not (JS / "node_modules" / "socket.io-client").exists():
        raise AssertionError("tests/js/node_modules is missing: `make test` installs it (npm ci)")
    assert NODE is not None
    args = [NODE, str(JS / "ops_client.mjs"), url, token, *([str(ca)] if ca else [])]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert out, err.decode()
    return proc.returncode or 0, json.loads(out.decode().strip().splitlines()[-1])


async def test_the_js_client_lists_printers(hub: RunningHub, admin_token: str) -> None:
    code, result = await js_client(hub.url, admin_token)
    assert code == 0, result
    assert result["ack"] == {"ok": True, "printers": []}


async def test_the_js_client_connects_over_wss_with_a_private_ca(
    tmp_path: Path,
    certs: Certificates,
) -> None:
    running = await start_hub(hub_settings(tmp_path, tls_cert=certs.cert, tls_key=certs.key))
    try:
        assert running.hub.tokens is not None
        token = running.hub.tokens.create(role="viewer", branch_ids=[1])
        code, result = await js_client(running.url, token, certs.ca)
        assert code == 0, result
        assert result["ack"]["ok"] is True
        code, result = await js_client(running.url, token)  # no CA: not trusted
        assert code == 1 and result["connected"] is False
    finally:
        await running.stop()


async def test_the_js_client_hears_why_it_was_refused(hub: RunningHub) -> None:
    code, result = await js_client(hub.url, "not-a-token")
    assert code == 1
    assert result == {"connected": False, "error": "auth_failed"}
