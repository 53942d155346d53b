"""``pm tui`` from the command line: clear messages when it cannot start, and the real
thing in a terminal (tmux) against ``pm up --sim 2``."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm.cli import main
from tests.support.helpers import free_port

PM = [sys.executable, "-m", "pm"]


def test_pm_tui_explains_a_hub_that_is_down(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["tui", "--hub", url, "--token", "t"]) == 1
    err = capsys.readouterr().err
    assert f"nothing answers at {url}" in err and "Traceback" not in err


def test_pm_tui_explains_a_wrong_url_and_a_missing_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("PM_TOKEN", raising=False)
    assert main(["tui", "--hub", "hub.local:3001", "--token", "t"]) == 2
    assert "must start with http://" in capsys.readouterr().err
    assert main(["tui", "--hub", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "no token" in err and "pm token create" in err and "tui.toml" in err


@pytest.fixture
def branch_box(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``pm up --sim 2`` in its own process; yields (hub URL, admin token)."""
    port, sim_port = free_port(), free_port(run=2)
    data = tmp_path / "box"
    cmd = [
        sys.executable, "-m", "pm", "up", "--data-dir", str(data), "--port", str(port),
        "--sim", "2", "--sim-port", str(sim_port), "--sim-control-port", str(free_port()),
        "--poll-interval", "0.5", "--branch-name", "Smoke branch",
    ]  # fmt: skip
    log = (tmp_path / "box.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        token = ""
        while True:
            assert proc.poll() is None, (tmp_path / "box.log").read_text()
            try:
                request = urllib.request.Request(f"{url}/healthz")
                if token:
                    request.add_header("Authorization", f"Bearer {token}")
                with urllib.request.urlopen(request, timeout=1) as response:
                    health = json.loads(response.read())
                if not token:  # the hub answers: its file is ready for the token
                    token = subprocess.run(
                        [*PM, "token", "create", "--role", "admin", "--data-dir", str(data)],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.strip()
                elif health.get("printers", 0) >= 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "pm up did not start"
            time.sleep(0.1)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)
def test_pm_tui_in_a_real_terminal(branch_box: tuple[str, str], tmp_path: Path) -> None:
    """The dashboard in tmux (100x30): printers, live jobs tab, help, quit."""
    url, token = branch_box
    server = f"pm-smoke-{os.getpid()}"
    tmux = ["tmux", "-L", server]
    env = {
        **os.environ,
        "PM_TOKEN": token,
        "XDG_CONFIG_HOME": str(tmp_path),
        "TERM": "xterm-256color",
    }
    command = shlex.join([sys.executable, "-m", "pm", "tui", "--hub", url])

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "smoke"], capture_output=True, text=True
        ).stdout

    def wait_for(*words: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            shown = screen()
            if all(word in shown for word in words):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{words} not on screen:\n{shown}")

    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "smoke", "-x", "100", "-y", "30", command],
        env=env,
        check=True,
    )
    try:
        shown = wait_for("Kitchen-1", "Kitchen-2", "ONLINE", "Smoke branch", "● hub")
        assert "Traceback" not in shown
        subprocess.run([*tmux, "send-keys", "-t", "smoke", "2"], check=True)
        wait_for("JOB", "STATUS", "PRINTER")
        subprocess.run([*tmux, "send-keys", "-t", "smoke", "?"], check=True)
        wait_for("PrinterMaster dashboard", "send a test receipt")
        subprocess.run([*tmux, "send-keys", "-t", "smoke", "Escape"], check=True)
        wait_for("1 Printers", "2 Jobs")  # help closed (esc then q at once would be alt+q)
        assert "PrinterMaster dashboard" not in screen()
        subprocess.run([*tmux, "send-keys", "-t", "smoke", "q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run([*tmux, "has-session", "-t", "smoke"], capture_output=True)
            if alive.returncode != 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"q did not quit:\n{screen()}")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
