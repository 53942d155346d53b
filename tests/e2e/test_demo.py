"""``pm demo`` and the README agree: the demo keeps its own data dir (and says so in
``--help``), a second demo gets its own dir and ports and prints them, with the exact
``pm simctl`` and ``curl`` lines; ``pm token create`` no longer makes a secret no hub
knows. Real processes, simulated printers, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.fault_harness import PM
from tests.support.helpers import eventually, free_port


def demo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "XDG_"))}
    env.update(HOME=str(home), PM_LOG_FORMAT="text")
    return env


def pm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PM, *args], capture_output=True, text=True, timeout=60, env=demo_env(home), check=False
    )


def test_demo_help_names_the_demo_data_dir(tmp_path: Path) -> None:
    """Before: it named pm up's data dir, which the demo does not use."""
    result = pm(tmp_path, "demo", "--help")
    text = "".join(result.stdout.split())  # argparse breaks long paths across lines
    assert f"{tmp_path}/.local/share/printermaster-demo".replace(" ", "") in text
    assert "$PM_DATA_DIR" not in text  # pm up's default, which the demo does not use


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    out: Path

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def guide(self) -> dict[str, str]:
        text = self.text()
        found = re.search(r"Demo branch box on (\S+) \(data: ([^;]+);", text)
        simctl = re.search(r"Switch a printer: (pm simctl .*)", text)
        token = re.search(r"Admin token: (\S+)", text)
        assert found and simctl and token, text
        return {
            "url": found.group(1),
            "data": found.group(2),
            "simctl": simctl.group(1),
            "token_file": token.group(1),
        }


def start_demo(home: Path, name: str, port: int) -> Demo:
    out = home / f"{name}.out"
    with open(out, "wb") as stream:
        proc = subprocess.Popen(
            [*PM, "demo", "--headless", "--printers", "1", "--port", str(port)],
            stdout=stream,
            stderr=stream,
            stdin=subprocess.DEVNULL,
            env=demo_env(home),
        )
    return Demo(proc, out)


def printers(url: str, token: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/api/v1/printers", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return list(json.loads(resp.read())["printers"])


async def test_a_second_demo_has_its_own_dir_and_ports_and_says_which(tmp_path: Path) -> None:
    """Before: a second demo shared the first one's data dir and took other ports
    without saying so, so the README's ``pm simctl state 9101 ...`` switched the other
    demo's printer."""
    port = free_port()
    first = start_demo(tmp_path, "first", port)
    second: Demo | None = None
    try:
        await eventually(lambda: "Token:" in first.text(), timeout=60, what=first.text())
        second = start_demo(tmp_path, "second", port)
        await eventually(lambda: "Token:" in second.text(), timeout=60, what=second.text())
        one, two = first.guide(), second.guide()
        assert one["data"] == f"{tmp_path}/.local/share/printermaster-demo"
        assert two["data"] == f"{tmp_path}/.local/share/printermaster-demo-2"
        # The README's line for the demo: TOKEN=$(cat ~/.local/share/printermaster-demo/demo.token)
        assert one["token_file"] == f"{tmp_path}/.local/share/printermaster-demo/demo.token"
        assert one["url"] != two["url"] and one["simctl"] != two["simctl"]
        token_one, token_two = [
            (await asyncio.to_thread(Path(g["token_file"]).read_text)).strip() for g in (one, two)
        ]
        # The second demo's own simctl line, exactly as printed, switches its printer only.
        words = shlex.split(two["simctl"])
        assert words[:2] == ["pm", "simctl"]
        switched = pm(tmp_path, *words[1:])
        assert switched.returncode == 0, switched.stderr

        def kitchen(url: str, token: str) -> str:
            (found,) = [p for p in printers(url, token) if p["name"] == "Kitchen-1"]
            return str(found["status"])

        def statuses() -> tuple[str, str]:
            return kitchen(one["url"], token_one), kitchen(two["url"], token_two)

        await eventually(lambda: statuses() == ("online", "paper_out"), what="paper out")
        # The README's token line, for the demo: refused without the demo's data dir
        # (no secret is made), accepted with it.
        refused = pm(tmp_path, "token", "create", "--role", "admin")
        assert refused.returncode == 2 and refused.stdout == ""
        assert f"--data-dir {one['data']}" in refused.stderr
        assert not (tmp_path / ".local/share/printermaster/jwt-secret").exists()
        made = pm(tmp_path, "token", "create", "--role", "admin", "--data-dir", one["data"])
        assert made.returncode == 0, made.stderr
        assert kitchen(one["url"], made.stdout.strip()) == "online"
    finally:
        for demo in (first, second):
            if demo is not None and demo.proc.poll() is None:
                demo.proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(d.proc.wait, 30) for d in (first, second) if d is not None]
    assert codes == [0, 0]
    assert first.text().rstrip().endswith("pm demo: stopped (SIGTERM)")
    assert "Traceback" not in first.text() + (second.text() if second else "")
