"""The ``pm`` command as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pm.cli import build_parser
from pm_agent.sim.printer import SimulatedPrinter
from pm_hub import auth
from pm_hub.config import load_settings
from pm_hub.server import RunningHub
from tests.support.fault_harness import Proc, free_port, wait_healthy
from tests.support.helpers import eventually

PM = [sys.executable, "-m", "pm"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PM, *args], capture_output=True, text=True, timeout=60, env=env)


def _command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str | None]]:
    """Every command and subcommand (``printer add``, ...) with the help line its
    parent lists for it."""
    found: list[tuple[tuple[str, ...], str | None]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                found.append(((*prefix, name), helps.get(name)))
                found.extend(_command_paths(child, (*prefix, name)))
    return found


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``pm --help`` from the installed entry point, then ``--help`` on every command
    and subcommand (in this process: one interpreter start per command took 10 s)."""
    result = run("--help")
    assert result.returncode == 0 and "usage: pm" in result.stdout, result.stderr
    paths = _command_paths(build_parser())
    top = {path[0] for path, _ in paths}
    assert {"up", "hub", "agent", "tui", "demo", "sim", "token", "license", "bench"} <= top
    assert ("printer", "add") in {path for path, _ in paths}
    for path, listed in paths:
        assert listed, f"pm {' '.join(path)} has no help line in its parent's list"
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([*path, "--help"])
        assert exit_.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith(f"usage: pm {' '.join(path)}"), (path, out[:200])


def test_token_create_prints_a_token_the_hub_accepts(tmp_path: Path) -> None:
    result = run(
        "token",
        "create",
        "--role",
        "operator",
        "--branch",
        "1",
        "--ttl",
        "30m",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    principal = auth.TokenIssuer(auth.load_or_create_secret(tmp_path)).verify(token)
    assert principal.role == "operator" and principal.branch_ids == (1,)
    assert 1700 < principal.claims["exp"] - principal.claims["iat"] <= 1800


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "operator"], "needs --branch"),
        (["--role", "admin", "--ttl", "forever"], "bad duration"),
        (["--role", "branch"], "needs --branch"),
        (["--role", "branch", "--branch", "1", "--branch", "2"], "exactly one branch"),
    ],
)
def test_token_create_explains_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("token", "create", *args, "--data-dir", str(tmp_path))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_license_create_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    result = run("license", "create", "--data-dir", str(tmp_path), "--label", "till 2")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("pmk_") and "shown only once" in result.stderr
    raw = (tmp_path / "hub.sqlite").read_bytes()
    assert key.encode() not in raw
    assert auth.hash_license_key(key).encode() in raw


def test_agent_without_license_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run("agent", "--hub", "http://127.0.0.1:9", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 2 and "pm license create" in result.stderr


def test_tui_without_token_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run("tui", "--hub", "http://127.0.0.1:9", env=env)
    assert result.returncode == 2 and "pm token create" in result.stderr


def test_bad_printer_uri_is_a_clear_error(tmp_path: Path) -> None:
    result = run("up", "--data-dir", str(tmp_path), "--port", "0", "--printer", "lpt://x")
    assert result.returncode == 2 and "unsupported printer address" in result.stderr


def test_a_font_that_is_not_there_is_a_clear_error(tmp_path: Path) -> None:
    for command in ("up", "agent"):
        missing = tmp_path / "Missing.ttf"
        result = run(command, "--data-dir", str(tmp_path), "--font", str(missing))
        assert result.returncode == 2, result.stderr
        assert f"pm {command}: --font {missing}: not a font file" in result.stderr


# -- settings ------------------------------------------------------------------------------


def test_poll_interval_setting_file_env_and_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every setting: default < TOML (top level, [hub] or [agent]) < PM_* < option."""
    monkeypatch.delenv("PM_POLL_INTERVAL", raising=False)
    config = tmp_path / "pm.toml"
    assert load_settings().poll_interval == 2.0
    config.write_text("[agent]\npoll_interval = 0.5\n")
    assert load_settings(config_file=config).poll_interval == 0.5
    monkeypatch.setenv("PM_POLL_INTERVAL", "0.75")
    assert load_settings(config_file=config).poll_interval == 0.75
    settings = load_settings(config_file=config, overrides={"poll_interval": 1.5})
    assert settings.poll_interval == 1.5
    monkeypatch.setenv("PM_POLL_INTERVAL", "soon")
    with pytest.raises(ValueError, match=r"poll_interval .*PM_POLL_INTERVAL"):
        load_settings()
    monkeypatch.setenv("PM_POLL_INTERVAL", "0")
    with pytest.raises(ValueError, match="poll_interval must be between"):
        load_settings()


def test_a_bad_poll_interval_stops_the_command_with_a_clear_message(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PM_POLL_INTERVAL": "-1"}
    result = run("up", "--data-dir", str(tmp_path), "--port", "0", env=env)
    assert result.returncode == 2 and "poll_interval must be between" in result.stderr


async def test_pm_agent_polls_printers_as_often_as_its_config_file_says(
    hub: RunningHub, tmp_path: Path
) -> None:
    """`pm agent --config` with ``poll_interval = 0.2``: the printer is asked for its
    status about five times a second instead of every 2 s."""
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\npoll_interval = 0.2\n")
    key = await hub.hub.create_license()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    async with SimulatedPrinter("Pass", serial="PASS-2") as sim:
        log = (tmp_path / "agent.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            *PM, "agent", "--hub", hub.url, "--license", key, "--config", str(config),
            "--data-dir", str(tmp_path / "agent"), "--printer", f"Pass={sim.address}",
            stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            await eventually(lambda: sim.status_queries > 0, timeout=20, what="first poll")
            before = sim.status_queries
            await asyncio.sleep(1.5)
            polls = (sim.status_queries - before) / 4  # DLE EOT 1, 2, 3 and 4 each poll
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
            log.close()
    assert polls >= 4, (polls, (tmp_path / "agent.log").read_text()[-2000:])


def test_upstream_without_a_token_says_what_to_do(tmp_path: Path) -> None:
    """``--upstream`` alone is refused at once with the command that makes the token."""
    for command in ("hub", "up"):
        result = run(
            command, "--data-dir", str(tmp_path), "--port", "0", "--upstream", "http://127.0.0.1:9"
        )
        assert result.returncode == 2, result.stderr
        assert "--upstream-token" in result.stderr and "--role branch" in result.stderr
    result = run("hub", "--company-mode", "--upstream", "http://x:1", "--upstream-token", "t")
    assert result.returncode == 2 and "company hub has no upstream" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--ping-interval", "0"], {}, "agent_ping_interval_s must be a positive"),
        ([], {"PM_AGENT_REPORT_INTERVAL_S": "-5"}, "agent_report_interval_s must be a positive"),
    ],
)
def test_agent_health_intervals_must_be_positive(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run(
        "agent",
        "--hub",
        "http://127.0.0.1:9",
        "--license",
        "pmk_x",
        "--data-dir",
        str(tmp_path),
        *args,
        env={**base, **env},
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_pm_up_takes_the_agent_ping_and_report_intervals(tmp_path: Path) -> None:
    """``pm up --ping-interval --report-interval``: the hub has the local agent's
    latency and its health report within seconds (defaults: 15 s and 5 min)."""
    port = free_port()
    proc = Proc(
        "up",
        [
            *("up", "--data-dir", str(tmp_path), "--port", str(port)),
            *("--ping-interval", "0.2", "--report-interval", "0.5"),
        ],
        tmp_path / "up.log",
    )
    proc.start()
    try:
        asyncio.run(wait_healthy(f"http://127.0.0.1:{port}"))
        token = auth.TokenIssuer(auth.load_or_create_secret(tmp_path)).create(role="admin")
        deadline = time.monotonic() + 4
        agent: dict[str, Any] = {}
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/health",
                headers={"Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(request, timeout=5) as resp:
                agents = json.loads(resp.read())["agents"]
            agent = agents[0] if agents else {}
            if agent.get("latency_ms", {}).get("last") is not None and agent["last_report_at"]:
                break
            time.sleep(0.2)
        assert agent.get("latency_ms", {}).get("last") is not None, (agent, proc.tail())
        assert agent["last_report_at"], agent
    finally:
        proc.stop()


def test_services_run_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from pm_core.event_loop import event_loop_factory, event_loop_name

    monkeypatch.delenv("PM_EVENT_LOOP", raising=False)
    factory = event_loop_factory()
    assert factory is not None and event_loop_name() == "uvloop"
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()
    monkeypatch.setenv("PM_EVENT_LOOP", "asyncio")
    assert event_loop_factory() is None
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        assert runner.run(asyncio.sleep(0, result=7)) == 7
