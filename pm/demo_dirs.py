"""Where ``pm demo`` keeps its state: apart from ``pm up``'s data dir, and one dir per
demo running at the same time (a second demo must not drive the first one's printers)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from pm_hub.config import xdg_data_dir
from pm_hub.hub_lock import LOCK_FILE

#: Most demos running at once on one machine.
MAX_DEMOS = 20


def demo_data_dir(number: int = 1) -> Path:
    """``~/.local/share/printermaster-demo`` (``-2``, ``-3``, ... for further demos)."""
    base = xdg_data_dir().parent / "printermaster-demo"
    return base if number == 1 else base.with_name(f"{base.name}-{number}")


def in_use(data_dir: Path) -> bool:
    """True while a hub (a running demo's branch box) holds the dir's lock."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def free_demo_data_dir() -> Path:
    """The first demo dir no running demo holds."""
    for number in range(1, MAX_DEMOS + 1):
        candidate = demo_data_dir(number)
        if not in_use(candidate):
            return candidate
    raise OSError(f"{MAX_DEMOS} demos are running already; stop one (q in its dashboard)")
