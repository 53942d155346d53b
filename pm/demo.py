"""``pm demo``: a branch box with simulated printers and the dashboard, zero set-up.

The branch box (``pm up --sim N``) runs in a child process that logs to a file in
the demo data dir, so the dashboard owns the terminal. Closing the dashboard
stops the branch box.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pm_core.private_files import private_dir
from pm_hub.config import HubSettings
from pm_hub.credential_admin import issue_token


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


def run_demo(
    settings: HubSettings,
    *,
    printers: int = 3,
    headless: bool = False,
    data_dir_given: bool = False,
) -> int:
    data_dir = (
        settings.data_dir if data_dir_given else settings.data_dir.parent / "printermaster-demo"
    )
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
        hint = (
            f"Try: pm simctl --control http://127.0.0.1:{control_port} state {sim_port} paper_out"
        )
        if headless:
            print(f"Branch box running on {url}. Token:\n{token}\n{hint}", flush=True)
            return proc.wait()
        from pm_tui.launch import launch

        code = launch(hub_url=url, token=token)
        print(hint.replace("Try:", "While it runs, try:"), file=sys.stderr)
        return code
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
