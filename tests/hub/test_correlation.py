"""CorrelationRegistry: id format, answers, timeouts, cleanup of stale entries."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from pm_core.protocol import new_correlation_id, parse_correlation_id
from pm_hub.correlation import CorrelationRegistry


def test_ids_have_the_seed_format_and_are_unique() -> None:
    ids = {new_correlation_id("test") for _ in range(1000)}
    assert len(ids) == 1000
    for cid in list(ids)[:20]:
        assert re.fullmatch(r"test_\d{13}_\d+_[0-9a-f]{8}", cid)
        parts = parse_correlation_id(cid)
        assert parts is not None and parts.kind == "test"
        assert abs(parts.timestamp_ms / 1000 - time.time()) < 5
    with pytest.raises(ValueError):
        new_correlation_id("Bad Type")
    assert parse_correlation_id("nonsense") is None


async def test_answer_resolves_and_late_answer_is_ignored() -> None:
    registry = CorrelationRegistry(timeout=1, stale_after=5)
    pending = registry.register("test", printer_id=1)
    assert len(registry) == 1
    assert registry.resolve(pending.correlation_id, {"ok": True})
    assert await pending.future == {"ok": True}
    assert not registry.resolve(pending.correlation_id, {"ok": False})
    assert registry.late_answers == 1
    assert len(registry) == 0
    await registry.stop()


async def test_no_answer_times_out_with_code_timeout() -> None:
    registry = CorrelationRegistry(timeout=0.05, stale_after=5)
    seen: list[dict] = []
    pending = registry.register("test", on_done=lambda _p, result: seen.append(result))
    result = await asyncio.wait_for(pending.future, 1)
    assert result["ok"] is False and result["error"]["code"] == "timeout"
    assert seen == [result] and registry.timeouts == 1
    await registry.stop()


async def test_stale_entries_are_cleaned_up() -> None:
    registry = CorrelationRegistry(timeout=10, stale_after=0.1)
    done = registry.register("test")
    registry.resolve(done.correlation_id, {"ok": True})
    abandoned = registry.register("test")
    assert registry.cleanup(now=time.monotonic() + 1) == 2
    assert registry.get(done.correlation_id) is None
    assert (await abandoned.future)["error"]["code"] == "timeout"
    await registry.stop()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CorrelationRegistry(timeout=0)
