"""The hub's websocket poll for python-engineio: same packets, same endings, no timer
per message."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from engineio import async_socket, exceptions

from pm_hub import engineio_socket


def socket(*, upgraded: bool = True) -> Any:
    server = SimpleNamespace(ping_interval=0.05, ping_timeout=0.05)
    return SimpleNamespace(upgraded=upgraded, queue=asyncio.Queue(), server=server)


async def test_waiting_packets_come_out_together_in_order() -> None:
    s = socket()
    for p in ("a", "b", "c"):
        s.queue.put_nowait(p)
    assert await engineio_socket.websocket_poll(s) == ["a", "b", "c"]
    await asyncio.wait_for(s.queue.join(), 1)  # every get was marked done


async def test_a_poll_waits_for_the_next_packet() -> None:
    s = socket()
    poll = asyncio.ensure_future(engineio_socket.websocket_poll(s))
    await asyncio.sleep(0.2)  # longer than ping_interval + ping_timeout: no timeout here
    assert not poll.done()
    s.queue.put_nowait("late")
    assert await asyncio.wait_for(poll, 1) == ["late"]


async def test_the_end_marker_ends_the_writer_after_what_came_before() -> None:
    s = socket()
    for p in ("a", None):
        s.queue.put_nowait(p)
    assert await engineio_socket.websocket_poll(s) == ["a"]
    assert await engineio_socket.websocket_poll(s) == []  # the None was left for this poll


async def test_a_cancelled_poll_raises_queue_empty_like_the_library() -> None:
    s = socket()
    poll = asyncio.ensure_future(engineio_socket.websocket_poll(s))
    await asyncio.sleep(0.01)
    poll.cancel()
    with pytest.raises(exceptions.QueueEmpty):
        await poll


async def test_long_polling_sockets_keep_the_library_poll_and_its_timeout() -> None:
    s = socket(upgraded=False)
    with pytest.raises(exceptions.QueueEmpty):
        await asyncio.wait_for(engineio_socket.websocket_poll(s), 2)


def test_installed_only_for_the_versions_it_was_checked_against() -> None:
    assert engineio_socket.supported("4.15.1")
    assert not engineio_socket.supported("5.0.0")
    assert engineio_socket.install()
    assert async_socket.AsyncSocket.poll is engineio_socket.websocket_poll
