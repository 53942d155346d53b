"""A request that reaches the hub while it stops (its store already closed) is
answered ``unavailable``, quietly: tried and failed, an agent's ``printer:discovered``
arriving during ``pm up``'s SIGTERM logged a 20-line traceback ("cannot schedule new
futures after shutdown") and answered ``internal``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from pm_core.database import Database, DatabaseClosed
from pm_hub.handlers import guarded


async def test_a_request_after_the_store_closed_is_answered_unavailable_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "hub.sqlite")
    db.start(lambda d: d.execute("CREATE TABLE t (x)"))
    db.close()

    async def reads(sid: str, payload: Any) -> dict[str, Any]:
        rows = await db.read(lambda d: list(d.query("SELECT x FROM t")))
        return {"ok": True, "rows": rows}

    async def writes(sid: str, payload: Any) -> dict[str, Any]:
        await db.write(lambda d: d.execute("INSERT INTO t VALUES (1)"))
        return {"ok": True}

    with pytest.raises(DatabaseClosed):
        await db.read(lambda d: None)
    with caplog.at_level(logging.INFO):
        for fn in (reads, writes):
            ack = await guarded("printer:discovered", fn)("sid-1", {})
            assert ack["ok"] is False and ack["error"]["code"] == "unavailable", ack
            assert "stopping" in ack["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
