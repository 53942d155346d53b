"""No terminal commands reach the operator's screen (issue 12, finding 3): a name or
message carrying ESC, BEL or a C1 control arrives at the dashboard as visible
pictures, whatever part of the hub's answer or event it sits in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web

from pm_core.protocol import HubEvent, Namespace
from pm_tui.hub_link import HubLink
from pm_tui.scrub import scrub, scrub_text
from tests.support.helpers import eventually

TITLE_ATTACK = "Kitchen\x1b]0;pwned\x07"  # sets the terminal's title


def test_controls_become_pictures_and_lines_stay() -> None:
    assert scrub_text(TITLE_ATTACK) == "Kitchen\u241b]0;pwned\u2407"
    assert scrub_text("a\x9bb\x7fc") == "a\ufffdb\u2421c"
    assert scrub_text("2x Soup\n\t1x Bread") == "2x Soup\n\t1x Bread"
    same = {"name": "Bar"}
    assert scrub(same) == same


def test_every_string_is_scrubbed_keys_too() -> None:
    dirty = {"printers": [{"name": TITLE_ATTACK, "flags": {"\x1b[2J": True}, "id": 3}]}
    clean = scrub(dirty)
    assert clean == {"printers": [{"name": "Kitchen␛]0;pwned␇", "flags": {"␛[2J": True}, "id": 3}]}


@pytest.fixture
async def hostile_hub(unused_tcp_port: int) -> AsyncIterator[tuple[str, socketio.AsyncServer]]:
    """A hub (as a hostile branch or agent could make it speak) on 127.0.0.1."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    async def whoami(sid: str, data: Any = None) -> dict[str, Any]:
        return {"ok": True, "sub": "x", "hub": {"branch_name": TITLE_ATTACK}}

    sio.on("whoami", whoami, namespace=Namespace.OPS)
    sio.on("connect", lambda sid, environ, auth=None: None, namespace=Namespace.OPS)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        yield f"http://127.0.0.1:{unused_tcp_port}", sio
    finally:
        await runner.cleanup()


async def test_the_hub_link_scrubs_events_and_answers(
    hostile_hub: tuple[str, socketio.AsyncServer],
) -> None:
    url, sio = hostile_hub
    seen: list[tuple[str, Any]] = []
    link = HubLink(url, "token", on_event=lambda e, d: seen.append((e, d)))
    runner = asyncio.create_task(link.run())
    try:
        await eventually(lambda: link.connected, what="dashboard connected")
        await sio.emit(
            HubEvent.PRINTERS_UPDATE,
            {"printers": [{"id": 1, "name": TITLE_ATTACK}]},
            namespace=Namespace.OPS,
        )
        await eventually(lambda: seen, what="event received")
        assert seen == [
            (HubEvent.PRINTERS_UPDATE, {"printers": [{"id": 1, "name": "Kitchen␛]0;pwned␇"}]})
        ]
        ack = await link.call("whoami")
        assert ack["hub"]["branch_name"] == "Kitchen␛]0;pwned␇"
    finally:
        runner.cancel()
        await link.close()
        await asyncio.gather(runner, return_exceptions=True)
