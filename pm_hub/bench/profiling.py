"""Sampling the server under test with py-spy while a scenario runs (``--profile DIR``).

py-spy attaches from outside (no change to the hub), samples every thread at
``RATE`` Hz and writes collapsed stacks; :func:`summarize` turns them into where the
hub's event loop spent its time: busy share, time by package (the frame that was
running), and the heaviest functions including what they call.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pm_hub.bench.procs import BenchError, ProcessSet

RATE = 200
_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")

AREAS = (
    ("pm_hub/", "hub code (pm_hub)"),
    ("socketio/", "python-socketio"),
    ("engineio/", "python-engineio"),
    ("aiohttp/", "aiohttp"),
    ("multidict/", "aiohttp"),
    ("yarl/", "aiohttp"),
    ("json/", "json"),
    ("jwt/", "pyjwt"),
    ("sqlite_utils/", "sqlite"),
    ("sqlite3/", "sqlite"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
)


def py_spy_path() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise BenchError("--profile needs py-spy: pip install py-spy")
    return found


def area_of(path: str) -> str:
    for needle, area in AREAS:
        if needle in path:
            return area
    return "other"


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match.group(1), match.group(2)


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path


def summarize(raw: str, *, seconds: float, rate: int = RATE, top: int = 15) -> dict[str, Any]:
    """Where the time went, from py-spy's ``--format raw --threads`` output."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    main = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        stack, count = match.group(1).split(";"), int(match.group(2))
        thread = stack[0].split(":", 1)[1].strip() if ":" in stack[0] else stack[0]
        threads[thread] += count
        if thread != "MainThread":
            continue
        main += count
        frames = [_parse(f) for f in stack[1:]]
        if not frames:
            continue
        func, path = frames[-1]
        own[f"{func} ({_short(path)})"] += count
        areas[area_of(path)] += count
        for name in {f"{fn} ({_short(p)})" for fn, p in frames}:
            inclusive[name] += count
    expected = max(seconds * rate, 1)
    return {
        "seconds": round(seconds, 1),
        "rate_hz": rate,
        "samples_by_thread": dict(threads.most_common()),
        "event_loop_busy_pct": round(min(100.0, 100 * main / expected), 1),
        "event_loop_by_package_pct": {
            area: round(100 * n / max(main, 1), 1) for area, n in areas.most_common()
        },
        "top_own": [
            {"frame": name, "pct": round(100 * n / max(main, 1), 1)}
            for name, n in own.most_common(top)
        ],
        "top_inclusive": [
            {"frame": name, "pct": round(100 * n / max(main, 1), 1)}
            for name, n in inclusive.most_common(top * 2)
            if not name.startswith(("<module>", "run (", "_run_once", "run_forever", "main ("))
        ][:top],
    }


class Profile:
    """py-spy recording one process for a fixed time."""

    def __init__(self, procs: ProcessSet, pid: int, out: Path, seconds: float) -> None:
        self.procs = procs
        self.pid = pid
        self.out = out
        self.seconds = seconds
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Profile:
        self._proc = await self.procs.spawn(
            py_spy_path(), "record", "--pid", str(self.pid), "--duration",
            str(max(1, round(self.seconds))), "--rate", str(RATE), "--format", "raw",
            "--threads", "--nonblocking", "--output", str(self.out),
            log_path=self.out.with_suffix(".log"),
        )  # fmt: skip
        return self

    async def finish(self) -> dict[str, Any]:
        assert self._proc is not None
        try:
            await asyncio.wait_for(self._proc.wait(), self.seconds + 30)
        except TimeoutError:
            await self.procs.end(self._proc)
        if not self.out.exists():
            return {"error": f"py-spy wrote nothing; see {self.out.with_suffix('.log')}"}
        summary = summarize(self.out.read_text(), seconds=round(self.seconds))
        summary["raw_file"] = str(self.out)
        return summary
