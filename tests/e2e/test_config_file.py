"""One config file holds what the flags can, printers included; ``pm config check``
says what is wrong and where (file, line, field)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from pm.config_file import read_config
from pm_agent.sim.fleet import SimulatorFleet
from tests.support.fault_harness import PM
from tests.support.helpers import eventually, free_port

GOOD = """\
log_level = "WARNING"

[hub]
port = {port}
mdns = false
branch_name = "Harbour"

[agent]
poll_interval = 0.5

[[printers]]
name = "Pass"
uri = "tcp://127.0.0.1:{printer_port}"
station = "Kitchen"
profile = "TM-T88V"
language = "escpos"
"""

BAD = """\
[hub]
host = "0.0.0.0"
prot = 3001
latency_alert_ms = "fast"

[[printers]]
name = "Bar"
uri = "lpt://1"

[[printers]]
name = "Pass"
uri = "tcp://10.0.0.6:9100"
language = "klingon"
colour = "red"
"""


def check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    return subprocess.run(
        [*PM, "config", "check", str(path)], capture_output=True, text=True, env=env, check=False
    )


def test_config_check_names_the_file_line_and_field_of_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "pm.toml"
    path.write_text(BAD)
    result = check(path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}, line 3: hub.prot: unknown setting (did you mean 'port'?)",
        f"{path}, line 4: hub.latency_alert_ms: must be a number (got 'fast')",
        f"{path}, line 8: printers[0].uri: unsupported printer address 'lpt://1': use "
        "tcp://HOST:PORT, usb://VID:PID, serial:///dev/ttyUSB0?baudrate=19200 or file:///path",
        f"{path}, line 13: printers[1].language: must be one of escpos, star_line, starprnt, "
        "star_raster, zpl, raw",
        f"{path}, line 14: printers[1].colour: unknown printer field",
    ]


def test_config_check_of_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pm.toml"
    path.write_text('[hub]\nport = 3001\nhost = "0.0.0.0\n')
    result = check(path)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{path}, line 3: not valid TOML")


def test_a_good_config_checks_ok_and_says_its_printers(tmp_path: Path) -> None:
    path = tmp_path / "pm.toml"
    path.write_text(GOOD.format(port=3001, printer_port=9100))
    result = check(path)
    assert (result.returncode, result.stdout) == (0, f"{path}: OK (1 printer(s): Pass)\n")
    config, problems = read_config(path)
    assert problems == []
    assert config.printers[0].spec_text() == (
        "Pass=tcp://127.0.0.1:9100?profile=TM-T88V&language=escpos#kitchen"
    )


async def test_pm_up_drives_the_printers_its_config_file_names(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """No --printer flag: the printer, its station and the hub's port and branch name
    all come from the file."""
    port = free_port()
    printer = fleet.printers[0]
    path = tmp_path / "pm.toml"
    path.write_text(GOOD.format(port=port, printer_port=printer.port))
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    proc = await asyncio.create_subprocess_exec(
        *PM, "up", "--config", str(path), "--data-dir", str(data),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip

    def printers() -> list[tuple[str, str, str]]:
        if not (data / "hub.sqlite").exists():
            return []
        try:
            with sqlite3.connect(data / "hub.sqlite") as conn:
                return conn.execute("SELECT name, station, status FROM printers").fetchall()
        except sqlite3.OperationalError:  # the hub is still making its tables
            return []

    try:
        await eventually(
            lambda: printers() == [("Pass", "kitchen", "online")], timeout=30, what="printer"
        )
        with sqlite3.connect(data / "hub.sqlite") as conn:
            assert conn.execute("SELECT name FROM branches").fetchall() == [("Harbour",)]
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert err.decode().strip().splitlines()[-1] == "pm up: stopped (SIGTERM)"


def test_a_printers_language_and_text_mode_reach_its_worker(tmp_path: Path) -> None:
    """``language`` and ``text_mode`` of a ``[[printers]]`` table travel in its address
    and are what the agent's worker renders with (until an operator says otherwise)."""
    from pm_agent.printer_uri import parse_printer_spec
    from pm_agent.printer_worker import PrinterWorker

    path = tmp_path / "pm.toml"
    path.write_text(
        '[[printers]]\nname = "Labels"\nuri = "tcp://127.0.0.1:9100"\nlanguage = "zpl"\n'
        '[[printers]]\nname = "Pass"\nuri = "tcp://127.0.0.1:9101"\ntext_mode = "raster"\n'
    )
    config, problems = read_config(path)
    assert problems == []
    labels, kitchen = (
        PrinterWorker(
            parse_printer_spec(p.spec_text()),
            port=None,
            spool=None,
            on_status=None,
            on_outbox=lambda: None,
        )  # type: ignore[arg-type]
        for p in config.printers
    )
    assert (labels.language, labels.text_mode) == ("zpl", "auto")
    assert (kitchen.language, kitchen.text_mode) == ("escpos", "raster")
