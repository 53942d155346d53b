"""What the benchmark ran on: CPU, memory, kernel, Python and library versions."""

from __future__ import annotations

import os
import platform
import resource
import sqlite3
import sys
from importlib import metadata
from typing import Any

from pm_core.event_loop import event_loop_name

PACKAGES = (
    "printermaster",
    "aiohttp",
    "python-socketio",
    "python-engineio",
    "sqlite-utils",
    "pyjwt",
    "python-escpos",
)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the box skews every figure."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mb": _memory_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "event_loop": event_loop_name(),
        "sqlite": sqlite3.sqlite_version,
        "open_files_limit": {"soft": soft, "hard": hard},
        "load_average": load_average(),
        "versions": {name: _version(name) for name in PACKAGES},
    }
