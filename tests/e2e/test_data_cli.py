"""The new commands' one-line answers when they cannot do what was asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PM = [sys.executable, "-m", "pm"]


def pm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PM, *args], capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result
    assert says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_backup_of_a_company_hub_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    config = _config(tmp_path, 'database_url = "postgresql://x@127.0.0.1/db"')
    result = pm("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path), "--config", str(config))
    one_line(result, "back it up with pg_dump")


def test_backup_without_a_hub_database_says_so(tmp_path: Path) -> None:
    one_line(pm("backup", str(tmp_path / "b"), "--data-dir", str(tmp_path)), "no such file")


def test_printer_commands_without_a_token_or_a_hub_say_what_to_do(tmp_path: Path) -> None:
    one_line(
        pm("printer", "list", "--data-dir", str(tmp_path), "--hub", "http://127.0.0.1:9"),
        "no token: give --token-file FILE",
    )
    token = tmp_path / "t"
    token.write_text("not-a-token\n")
    token.chmod(0o600)
    one_line(
        pm("printer", "remove", "3", "--token-file", str(token), "--hub", "http://127.0.0.1:9"),
        "cannot reach the hub at http://127.0.0.1:9",
    )


def test_license_show_of_an_unknown_license(tmp_path: Path) -> None:
    one_line(pm("license", "show", "42", "--data-dir", str(tmp_path)), "no license '42'")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pm.toml"
    path.write_text(text + "\n")
    return path
