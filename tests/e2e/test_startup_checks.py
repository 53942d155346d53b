"""Start-up checks and operational errors: each gives one line that says what to do,
exit code 2, and no traceback (``pm --debug`` shows it). Real processes."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_core.startup_checks import StartupError, check_clock
from tests.support.fault_harness import PM
from tests.support.helpers import free_port


def pm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [*PM, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr of a refused start (exit code 2)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["up", "hub"])
def test_a_busy_port_is_one_line_before_anything_starts(
    tmp_path: Path, busy_port: int, command: str
) -> None:
    """Before: `pm up` logged "hub ready", then a raw ``[Errno 98]`` with no hint."""
    result = pm(tmp_path, command, "--data-dir", str(tmp_path / "d"), "--port", str(busy_port),
                "--no-mdns")  # fmt: skip
    line = one_line(result)
    assert line.startswith(f"pm {command}: port {busy_port} on 127.0.0.1 is already in use")
    assert "--port" in line and "Errno" not in line and "hub ready" not in result.stderr


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write: mode 0555, or for root a read-only mount."""
    if os.geteuid() != 0:
        path = tmp_path / "ro"
        path.mkdir(mode=0o555)
        return path
    for candidate in (Path("/sys"), Path("/proc/sys")):
        try:
            (candidate / f"pm-probe-{os.getpid()}").touch()
        except OSError:
            return candidate
        (candidate / f"pm-probe-{os.getpid()}").unlink()
    pytest.skip("running as root with no read-only directory to try (/sys is writable)")


@pytest.mark.parametrize("command", ["up", "hub", "agent"])
def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path: Path, command: str) -> None:
    """Before: a 56-line traceback ending in ``sqlite3.OperationalError: unable to open
    database file``."""
    where = unwritable_dir(tmp_path)
    extra = ["--hub", "http://127.0.0.1:9", "--license", "pmk_x"] if command == "agent" else []
    port = [] if command == "agent" else ["--port", str(free_port()), "--no-mdns"]
    line = one_line(pm(tmp_path, command, "--data-dir", str(where), *port, *extra))
    assert line.startswith(f"pm {command}: cannot write to the data dir {where}")
    assert "--data-dir" in line and "chown" in line


def test_pm_license_create_on_an_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    """Before: a 22-line traceback."""
    where = unwritable_dir(tmp_path)
    line = one_line(pm(tmp_path, "license", "create", "--data-dir", str(where)))
    assert line.startswith(f"pm license: cannot write to the data dir {where}")


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    line = one_line(pm(tmp_path, "up", "--data-dir", str(path), "--port", "0", "--no-mdns"))
    assert line == f"pm up: the data dir {path} is a file, not a directory; pass --data-dir DIR " \
        "(a directory)"  # fmt: skip


def test_a_damaged_database_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.sqlite").write_text("this is not SQLite, it is long enough to be read" * 10)
    args = ["hub", "--data-dir", str(data), "--port", str(free_port()), "--no-mdns",
            "--log-level", "ERROR"]  # fmt: skip
    line = one_line(pm(tmp_path, *args))
    assert "SQLite database cannot be used" in line and "hub.sqlite" in line
    debug = pm(tmp_path, "--debug", *args)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_bad_config_file_is_one_line_with_its_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "pm.toml"
    config.write_text('[hub]\nport = 3001\n\n[[printers]]\nname = "Bar"\nuri = "lpt://1"\n')
    line = one_line(pm(tmp_path, "up", "--config", str(config), "--data-dir", str(tmp_path)))
    assert line.startswith(f"pm up: {config}, line 6: printers[0].uri: ")


def test_a_clock_before_this_program_existed_is_refused() -> None:
    """A box without a real-time clock that booted into 1970: tokens and licenses
    would all look expired, so the service says what to fix instead."""
    with pytest.raises(StartupError, match=r"clock says 1970-01-01 .*timedatectl set-ntp"):
        check_clock(now=1000.0)
    check_clock()  # this machine's clock is fine


def test_an_unexpected_error_is_one_line_unless_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug is one line that says how to see more; ``--debug`` lets the traceback out."""
    from pm import cli

    def broken(*_args: object) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert cli.main(["sim"]) == 1
    assert capsys.readouterr().err == (
        "pm sim: unexpected error: RuntimeError: something nobody expected "
        "(run `pm --debug sim ...` for the traceback)\n"
    )
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "sim"])
