"""Work started while a request is handled but living past it (a sender loop, a batch
timer, a printer's poll loop) carries no correlation id; the request's own lines keep it."""

from __future__ import annotations

import asyncio

from pm_core.logs import correlation, correlation_id, start_background, uncorrelated

JOB = "job_1733550000000_42_a1b2c3d4"


async def current_id() -> str | None:
    return correlation_id.get()


async def test_background_work_started_in_a_jobs_request_carries_no_id() -> None:
    loop = asyncio.get_running_loop()
    timer_saw: list[str | None] = []
    fired = asyncio.Event()

    def timer() -> None:
        timer_saw.append(correlation_id.get())
        fired.set()

    with correlation(JOB):
        plain = asyncio.ensure_future(current_id())  # a task copies the request's context
        background = start_background(current_id(), name="sender")
        loop.call_later(0, timer, context=uncorrelated())
        assert correlation_id.get() == JOB  # the request's own lines keep the id
    assert await plain == JOB
    assert await background is None
    assert background.get_name() == "sender"
    await asyncio.wait_for(fired.wait(), 5)
    assert timer_saw == [None]
