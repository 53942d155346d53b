"""The ``pm`` command as a user runs it (subprocesses, real files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pm_hub import auth
from pm_hub.cli import build_parser

PM = [sys.executable, "-m", "pm_hub"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PM, *args], capture_output=True, text=True, timeout=60, env=env)


def test_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    commands = sorted(sub.choices)  # type: ignore[union-attr]
    assert {"up", "hub", "agent", "tui", "demo", "sim", "token", "license", "bench"} <= set(
        commands
    )
    for command in commands:
        result = run(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: pm" in result.stdout


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
