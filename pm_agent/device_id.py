"""This machine's agent id (``device_id`` in the ``/agent`` connect auth): the hub
binds a license to the device that first used it, so the id must survive restarts."""

from __future__ import annotations

import platform
import secrets
from pathlib import Path

from pm_core.private_files import write_private

FILE_NAME = "agent-device-id"


def load_device_id(data_dir: Path) -> str:
    """A stable id for this machine's agent, created once in the data dir."""
    path = data_dir / FILE_NAME
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = f"{platform.node() or 'agent'}-{secrets.token_hex(6)}"
    write_private(path, value + "\n")  # 0600 in a 0700 data dir
    return value
