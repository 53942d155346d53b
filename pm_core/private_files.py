"""The data dir holds every ticket, the signing secret and license keys: only the
service's own user may read it. Directories are made 0700 and files 0600, also when
they already existed with looser modes (a data dir from an older version).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make it 0700; returns it. A directory
    owned by someone else (a shared parent) is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created empty if missing) inside a 0700
    directory; returns it. SQLite gives its -wal and -shm files the mode of the
    database file, so this covers them too."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a 0600 file (replacing what was there)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    _tighten(path, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError as exc:  # read-only mounts and the like: say so, do not fail
        log.warning("cannot restrict %s to mode %o: %s", path, mode, exc)


def read_secret(path: Path, what: str) -> str:
    """A secret (token, license key) kept in a file instead of on a command line,
    where ``ps`` shows it to every user of the machine. ValueError says what is wrong."""
    try:
        value = path.expanduser().read_text().strip()
    except OSError as exc:
        raise ValueError(f"cannot read {what} from {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{path} is empty: it should hold the {what}")
    try:
        if path.expanduser().stat().st_mode & 0o077:
            log.warning("%s is readable by other users: chmod 600 %s", path, path)
    except OSError:
        pass
    return value
