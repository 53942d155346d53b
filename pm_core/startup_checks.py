"""What a service checks before it starts, so that a box that cannot run says why in
one line (with what to do) instead of a traceback half-way through its start:

- the data dir can be created and written (a service user without access to it);
- the port is free (another ``pm up`` or ``pm hub`` is already there);
- the clock is sane (a box that booted without a real-time clock believes it is 1970:
  every token and license would look expired or not yet valid).

Each check raises :class:`StartupError`, whose message is the one line to print.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path

from pm_core.private_files import private_dir

#: No clock that reads earlier than this is right (this code did not exist before).
EARLIEST_SANE_TIME = 1767225600.0  # 2026-01-01 00:00 UTC


class StartupError(Exception):
    """A service cannot start; the message says why and what to do, in one line."""


def check_data_dir(path: Path) -> Path:
    """Create ``path`` (0700) if missing and prove it writable with a scratch file."""
    hint = (
        f"give the service's user write access (e.g. chown -R printermaster {path}) "
        "or pass --data-dir DIR"
    )
    try:
        private_dir(path)
    except FileExistsError:
        raise StartupError(
            f"the data dir {path} is a file, not a directory; pass --data-dir DIR (a directory)"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"cannot create the data dir {path} ({exc.strerror or exc}); {hint}"
        ) from None
    if not path.is_dir():
        raise StartupError(f"the data dir {path} is not a directory; {hint}")
    probe = path / f".write-check-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"cannot write to the data dir {path} ({exc.strerror or exc}); {hint}"
        ) from None
    return path


def port_in_use_message(host: str, port: int) -> str:
    return (
        f"port {port} on {host} is already in use (another pm up or pm hub?); stop that "
        "one, or pass --port N (port = N in the config file)"
    )


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once the way the hub will (SO_REUSEADDR), then let it go."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(
            f"cannot listen on {host}:{port}: {exc.strerror}; check --host (host in the "
            "config file)"
        ) from None
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise StartupError(listen_error_message(host, port, exc)) from None


def listen_error_message(host: str, port: int, exc: OSError) -> str:
    """One line for a failed bind: the port taken, an address not on this machine, or a
    port below 1024 without the right."""
    if exc.errno == errno.EADDRINUSE:
        return port_in_use_message(host, port)
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}:{port}: no network interface has that address; "
            "check --host (0.0.0.0 for every interface)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"cannot listen on {host}:{port}: permission denied (ports below 1024 need "
            "privileges); pass --port 3001 or another port above 1023"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_clock(now: float | None = None) -> None:
    """Refuse a clock that reads before this program existed."""
    now = time.time() if now is None else now
    if now < EARLIEST_SANE_TIME:
        shown = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now))
        raise StartupError(
            f"the system clock says {shown}, which cannot be right: tokens and licenses "
            "depend on it; set the clock (timedatectl set-ntp true, or date -s) and start again"
        )
