"""``pm demo``: a branch box with simulated printers and the dashboard, zero set-up.

The branch box (``pm up --sim N``) runs in a child process that logs to a file in
the demo data dir, so the dashboard owns the terminal. Closing the dashboard
stops the branch box.

The demo keeps its state apart from ``pm up``'s (``pm.demo_dirs``): a second demo
started while one runs takes a dir of its own and other ports, and says which (on
stderr and in the dashboard's first toast), with its token file and the exact
``pm simctl`` and ``curl`` lines for them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pm.demo_dirs import free_demo_data_dir, in_use
from pm_core.private_files import private_dir, write_private
from pm_hub.config import HubSettings
from pm_hub.credential_admin import issue_token

#: The demo's admin token, in its data dir (mode 0600).
TOKEN_FILE = "demo.token"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pick(preferred: int, count: int = 1) -> int:
    """``preferred`` if it (and the next ``count - 1`` ports) are free, else a free port."""
    if all(_port_free(preferred + i) for i in range(count)):
        return preferred
    if count == 1:
        return _free_port()
    for base in range(preferred + 100, preferred + 2000, 50):
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise OSError("no free ports for the simulated printers")


def _wait_ready(
    url: str,
    printers: int,
    proc: subprocess.Popen[bytes],
    log: Path,
    token: Callable[[], str],
) -> str:
    """Wait for the hub to answer, then (with the token ``token()`` makes once the hub's
    file is ready) for its agent and printers; returns the token."""
    deadline = time.monotonic() + 30
    last = "starting"
    made: str | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise OSError(f"the branch box stopped during start-up:\n{tail}")
        try:
            request = urllib.request.Request(f"{url}/healthz")
            if made is not None:
                request.add_header("Authorization", f"Bearer {made}")
            with urllib.request.urlopen(request, timeout=1) as resp:
                health = json.loads(resp.read())
            if made is None:
                made = token()  # the hub answers: its file is ready
                continue
            if health.get("agents_connected", 0) >= 1 and health.get("printers", 0) >= printers:
                return made
            last = f"{health.get('printers', 0)} printers so far"
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    raise OSError(f"the branch box did not come up in 30 s ({last}); see {log}")


class _Stopped(Exception):
    """SIGINT or SIGTERM reached the headless demo."""


def _wait_for_signal(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the branch box; SIGINT or SIGTERM stops it (exit 0, one goodbye line)."""
    received: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        received.append(signum)
        raise _Stopped

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    except _Stopped:
        print(f"pm demo: stopped ({signal.Signals(received[0]).name})", file=sys.stderr)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def demo_guide(
    *, url: str, data_dir: Path, token_path: Path, sim_port: int, control_port: int
) -> str:
    """What this demo took and the commands that reach it (exact ports and paths)."""
    return (
        f"Demo branch box on {url} (data: {data_dir}; log: {data_dir / 'demo.log'})\n"
        f"Admin token: {token_path}\n"
        f"Switch a printer: pm simctl --control http://127.0.0.1:{control_port} "
        f"state {sim_port} paper_out\n"
        f"HTTP API: TOKEN=$(cat {token_path}); "
        f'curl -H "Authorization: Bearer $TOKEN" {url}/api/v1/printers'
    )


def run_demo(
    settings: HubSettings,
    *,
    printers: int = 3,
    headless: bool = False,
    data_dir_given: bool = False,
) -> int:
    if data_dir_given:
        data_dir = settings.data_dir
        if in_use(data_dir):
            raise OSError(
                f"another demo (or hub) is running on {data_dir}; stop it, or leave out "
                "--data-dir (this demo then takes a dir of its own)"
            )
    else:
        data_dir = free_demo_data_dir()
    private_dir(data_dir)
    port = _pick(settings.port)
    sim_port = _pick(9101, printers)
    control_port = _pick(9180)
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "demo.log"
    print(f"Starting the demo branch box on {url} (log: {log_path}) …", file=sys.stderr, flush=True)
    cmd = [
        sys.executable,
        "-m",
        "pm",
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--sim",
        str(printers),
        "--sim-port",
        str(sim_port),
        "--sim-control-port",
        str(control_port),
        "--sim-cloudprnt",
        "--branch-name",
        "Demo branch",
    ]
    env = dict(os.environ, PM_DEMO_TRAFFIC="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    try:
        demo_settings = replace(settings, data_dir=data_dir)
        token = _wait_ready(
            url,
            printers,
            proc,
            log_path,
            lambda: (
                issue_token(
                    demo_settings,
                    role="admin",
                    sub="demo",
                    ttl_seconds=int(settings.token_max_ttl_s),
                ).token
            ),
        )
        token_path = data_dir / TOKEN_FILE
        write_private(token_path, token + "\n")
        guide = demo_guide(
            url=url,
            data_dir=data_dir,
            token_path=token_path,
            sim_port=sim_port,
            control_port=control_port,
        )
        if headless:
            print(f"{guide}\nToken:\n{token}", flush=True)
            return _wait_for_signal(proc)
        from pm_tui.launch import launch

        print(guide, file=sys.stderr, flush=True)
        code = launch(hub_url=url, token=token, notice=guide)
        print(guide, file=sys.stderr)
        return code
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
