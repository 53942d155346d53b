"""Limits with clear answers (issue 12, finding 2): a client that asks and never reads
cannot grow the hub's memory; it is disconnected and logged, the memory comes back,
and everyone else is served as before."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pm_core.protocol import Namespace, OpsEvent
from pm_hub.server import RunningHub, start_hub
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually
from tests.support.raw_agent import RawAgent
from tests.support.raw_ws import RawSocketIO

LIMIT = 4 * 1024 * 1024


@pytest.fixture
async def small_buffer_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(hub_settings(tmp_path, client_buffer_bytes=LIMIT))
    try:
        yield running
    finally:
        await running.stop()


async def test_a_client_that_never_reads_is_cut_off_and_its_memory_freed(
    small_buffer_hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = small_buffer_hub
    assert hub.hub.tokens is not None
    admin = await OpsClient(hub.url, hub.hub.tokens.create(role="admin")).connect()
    agent: RawAgent | None = None
    try:
        # A big ticket: 1 MiB of raw ESC/POS (1.4 MB as JSON), for a printer an agent has.
        agent = await RawAgent(hub.url, await hub.hub.create_license(), "box-1").connect()
        printer = (await agent.register("serial:PASS-1"))["printer_id"]
        raw = base64.b64encode(b"\x1b@" + b"A" * (1024 * 1024 - 2)).decode()
        ack = await admin.call(
            OpsEvent.JOB_SUBMIT, {"printer_id": printer, "document": {"raw_base64": raw}}
        )
        assert ack["ok"], ack
        job_id = ack["job"]["id"]

        sockets = hub.hub.broadcaster.sio.eio.sockets
        others = set(sockets)
        viewer = hub.hub.tokens.create(role="viewer", branch_ids=[1])
        slow = await asyncio.to_thread(RawSocketIO, "127.0.0.1", hub.port, receive_buffer=4096)
        answer = await asyncio.to_thread(slow.connect_namespace, Namespace.OPS, {"token": viewer})
        assert answer.startswith("40/ops,"), answer
        assert len(hub.hub.state.operators) == 2
        (slow_sid,) = set(sockets) - others
        caplog.set_level(logging.WARNING, logger="pm_hub.engineio_socket")
        for n in range(80):  # and never read an answer
            try:
                await asyncio.to_thread(
                    slow.emit,
                    Namespace.OPS,
                    OpsEvent.JOB_GET,
                    {"job_id": job_id, "document": True},
                    n,
                )
            except OSError:  # the hub cut it off while it was still asking
                break

        await eventually(
            lambda: len(hub.hub.state.operators) == 1, timeout=20, what="slow client dropped"
        )
        assert await asyncio.to_thread(slow.closed_by_peer)
        assert "is not reading" in caplog.text
        # Its socket (and the queue that held the answers) is gone from the hub (a
        # moment after the operator: engine.io drops it when its tasks end).
        await eventually(lambda: slow_sid not in sockets, timeout=5, what="its socket freed")
        # Everyone else is served as before.
        listed = await admin.call(OpsEvent.JOBS_LIST, {})
        assert listed["ok"] and [j["id"] for j in listed["jobs"]] == [job_id]
    finally:
        await admin.close()
        if agent is not None:
            await agent.close()
