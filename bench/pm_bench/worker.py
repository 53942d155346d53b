"""A load process: ``python -m pm_bench.worker MODULE:CLASS``.

The runner drives it over stdin/stdout, one JSON object per line. The first line
holds the keyword arguments for ``CLASS``; every later line is a command
``{"id": n, "cmd": name, "args": {...}}`` that runs ``await obj.cmd_<name>(**args)``
and is answered with ``{"id": n, "ok": true, "result": ...}`` (or ``ok: false`` and
the traceback). The process ends after ``stop``, when stdin closes (the runner is
gone), or after ``max_lifetime`` seconds, whichever comes first, so a load process
never outlives its benchmark.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
import traceback
from typing import Any

from pm_core.event_loop import event_loop_factory

DEFAULT_MAX_LIFETIME = 900.0


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _load(target: str) -> Any:
    module_name, _, class_name = target.partition(":")
    if not module_name.startswith("pm_bench.") or not class_name:
        raise ValueError(f"not a bench worker target: {target!r}")
    return getattr(importlib.import_module(module_name), class_name)


async def serve(target: str) -> int:
    reader = await _stdin_reader()
    first = await reader.readline()
    if not first:
        return 1
    init: dict[str, Any] = json.loads(first)
    obj = _load(target)(**init)
    _write({"id": 0, "ok": True, "result": {"pid": os.getpid()}})
    try:
        while True:
            line = await reader.readline()
            if not line:
                return 0  # the runner went away
            msg = json.loads(line)
            try:
                method = getattr(obj, f"cmd_{msg['cmd']}", None)
                if method is None and msg["cmd"] == "stop":
                    result = None
                elif method is None:
                    raise ValueError(f"{target} has no command {msg['cmd']!r}")
                else:
                    result = await method(**msg.get("args", {}))
            except Exception:
                _write({"id": msg["id"], "ok": False, "error": traceback.format_exc()})
            else:
                _write({"id": msg["id"], "ok": True, "result": result})
            if msg["cmd"] == "stop":
                return 0
    finally:
        close = getattr(obj, "close", None)
        if close is not None:
            try:
                await asyncio.wait_for(close(), 15)
            except Exception:
                logging.getLogger(__name__).warning("closing the worker failed", exc_info=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m pm_bench.worker MODULE:CLASS", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("PM_BENCH_LOG_LEVEL", "WARNING"))
    lifetime = float(os.environ.get("PM_BENCH_MAX_LIFETIME", DEFAULT_MAX_LIFETIME))

    async def bounded() -> int:
        return await asyncio.wait_for(serve(args[0]), lifetime)

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(bounded())
    except TimeoutError:
        print(f"bench worker {args[0]}: max lifetime {lifetime}s reached", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
