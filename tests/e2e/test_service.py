"""``pm service``: the systemd unit it writes (checked by ``systemd-analyze verify``
where systemd is installed) and what ``pm service status`` says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pm.service import render_unit
from tests.support.fault_harness import PM


def pm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    return subprocess.run(
        [*PM, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_dry_run_prints_a_hardened_unit_for_pm_up() -> None:
    result = pm("service", "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    unit = directives(result.stdout)
    command = unit["ExecStart"][0].split()
    assert Path(command[0]).name == "pm" and Path(command[0]).is_absolute()
    assert command[1:] == [
        "up", "--config", "/etc/printermaster/pm.toml", "--data-dir", "/var/lib/printermaster"
    ]  # fmt: skip
    expected = {
        "User": ["printermaster"],
        "Restart": ["on-failure"],
        "StateDirectory": ["printermaster"],
        "ProtectSystem": ["strict"],
        "ReadWritePaths": ["/var/lib/printermaster"],
        "PrivateTmp": ["true"],
        "NoNewPrivileges": ["true"],
        "ProtectHome": ["true"],
        "ProtectKernelTunables": ["true"],
        "ProtectKernelModules": ["true"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
        "SupplementaryGroups": ["dialout lp"],
        "KillSignal": ["SIGTERM"],
    }
    for key, value in expected.items():
        assert unit.get(key) == value, key
    assert "char-usb_device rw" in unit["DeviceAllow"]
    assert {"char-ttyUSB rw", "char-ttyACM rw"} <= set(unit["DeviceAllow"])


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("PM_REQUIRE_SERVICES") == "1":
            pytest.fail("systemd-analyze is missing (`make unit` installs systemd as root)")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    unit = tmp_path / "printermaster.service"
    program = Path(os.sys.executable).with_name("pm")  # this venv's console script
    assert program.exists()
    unit.write_text(render_unit(pm=str(program), config=Path("/etc/printermaster/pm.toml")))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify exits 0 even for a directive it ignores; it says so on stderr.
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stderr
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    complaint = subprocess.run(
        [analyze, "verify", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "restart specifier" in complaint.stderr  # so the empty stderr above means it


def test_status_says_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "pm.toml"
    config.write_text("[hub]\nport = 9\n")
    result = pm("service", "status", "--unit-dir", str(tmp_path), "--config", str(config))
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert lines[0] == f"unit:    {tmp_path / 'printermaster.service'} (not installed)"
    assert lines[2] == "hub:     http://127.0.0.1:9 does not answer"


def test_install_writes_the_unit_and_a_config_the_service_user_can_read(tmp_path: Path) -> None:
    """The unit and a starting config that `pm config check` accepts, group-readable
    by the service's user (here an existing one: the test makes no user)."""
    if os.geteuid() != 0:
        pytest.skip("pm service install needs root")
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    config = tmp_path / "etc" / "pm.toml"
    result = pm("service", "install", "--unit-dir", str(tmp_path / "units"), "--config",
                str(config), "--user", user, "--no-systemctl")  # fmt: skip
    assert result.returncode == 0, result.stderr
    unit = directives((tmp_path / "units" / "printermaster.service").read_text())
    assert unit["ExecStart"][0].split()[1:4] == ["up", "--config", str(config)]
    info = config.stat()
    assert (info.st_mode & 0o777, info.st_gid) == (0o640, pwd.getpwnam(user).pw_gid)
    checked = pm("config", "check", str(config))
    assert checked.returncode == 0 and checked.stdout.endswith("OK (0 printer(s): none)\n")
