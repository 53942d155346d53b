"""Sampling the server under test with py-spy while a scenario runs (``--profile DIR``).

py-spy attaches from outside (no change to the hub), samples every thread at
``RATE`` Hz and writes collapsed stacks; :func:`summarize` turns them into where the
hub's event loop spent its time: busy share, time by package (the frame that was
running), and the heaviest functions including what they call.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pm_bench.procs import BenchError, ProcessSet

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


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


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


#: Frames on every stack of the event loop (the loop itself, the CLI around it).
_PLUMBING = (
    "runpy",
    "run_until_complete",
    "runners.py",
    "Runner.run",
    "run_forever",
    "_run_once",
    "cli.py",
    "Handle._run",
    "<module>",
    "Thread.run",
    "_bootstrap",
)


def _thread_group(name: str) -> str:
    """``printer:Bar-1_0`` -> ``printer``, ``sqlite-writer:hub.sqlite`` -> ``sqlite-writer``."""
    return name.split(":", 1)[0].rsplit("_", 1)[0] if name != "MainThread" else name


def summarize(raw: str, *, seconds: float, rate: int = RATE, top: int = 15) -> dict[str, Any]:
    """Where the time went, from py-spy's ``--format raw --threads`` output."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    other_own: dict[str, Counter[str]] = {}
    main = 0
    for line in raw.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        stack, count = match.group(1).split(";"), int(match.group(2))
        thread = stack[0].split(":", 1)[1].strip() if ":" in stack[0] else stack[0]
        group = _thread_group(thread)
        threads[group] += count
        frames = [_parse(f) for f in stack[1:]]
        if not frames:
            continue
        func, path = frames[-1]
        leaf = f"{func} ({_short(path)})"
        if group != "MainThread":
            other_own.setdefault(group, Counter())[leaf] += count
            continue
        main += count
        own[leaf] += count
        areas[area_of(path)] += count
        for name in {f"{fn} ({_short(p)})" for fn, p in frames}:
            inclusive[name] += count
    expected = max(seconds * rate, 1)

    def pct(n: int, of: int) -> float:
        return round(100 * n / max(of, 1), 1)

    return {
        "seconds": round(seconds, 1),
        "rate_hz": rate,
        "samples_by_thread": dict(threads.most_common()),
        "event_loop_busy_pct": round(min(100.0, 100 * main / expected), 1),
        "event_loop_by_package_pct": {area: pct(n, main) for area, n in areas.most_common()},
        "top_own": [{"frame": k, "pct": pct(n, main)} for k, n in own.most_common(top)],
        "top_inclusive": [
            {"frame": k, "pct": pct(n, main)}
            for k, n in inclusive.most_common(top * 3)
            if not any(p in k for p in _PLUMBING)
        ][:top],
        "other_threads": {
            group: {
                "busy_pct": pct(threads[group], int(expected)),
                "top_own": [
                    {"frame": k, "pct": pct(n, threads[group])} for k, n in c.most_common(5)
                ],
            }
            for group, c in other_own.items()
        },
    }


class Profile:
    """py-spy recording one process for at most ``seconds`` (stopped early by
    :meth:`finish` when the phase it covers ends first)."""

    def __init__(self, procs: ProcessSet, pid: int, out: Path, seconds: float) -> None:
        self.procs = procs
        self.pid = pid
        self.out = out
        self.seconds = seconds
        self._proc: asyncio.subprocess.Process | None = None
        self._t0 = 0.0

    async def start(self) -> Profile:
        self._t0 = time.monotonic()
        self._proc = await self.procs.spawn(
            py_spy_path(), "record", "--pid", str(self.pid), "--duration",
            str(max(1, round(self.seconds))), "--rate", str(RATE), "--format", "raw",
            "--threads", "--nonblocking", "--output", str(self.out),
            log_path=self.out.with_suffix(".log"),
        )  # fmt: skip
        return self

    async def finish(self) -> dict[str, Any]:
        assert self._proc is not None
        elapsed = min(time.monotonic() - self._t0, self.seconds)
        if self._proc.returncode is None and elapsed < self.seconds - 0.5:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGINT)  # py-spy writes what it has
        try:
            await asyncio.wait_for(self._proc.wait(), 30)
        except TimeoutError:
            await self.procs.end(self._proc)
        if not self.out.exists():
            return {"error": f"py-spy wrote nothing; see {self.out.with_suffix('.log')}"}
        summary = summarize(_read(self.out), seconds=elapsed)
        summary["raw_file"] = str(self.out)
        return summary
