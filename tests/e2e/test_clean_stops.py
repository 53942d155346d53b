"""Stopping the services: SIGINT and SIGTERM end ``pm up``, ``pm hub``, ``pm agent``,
``pm sim`` and the headless demo with exit 0 and one goodbye line; a planned stop
raises no ``printer_offline`` alert while a killed agent still does. Real processes,
real sockets on 127.0.0.1, simulated printers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pm_agent.sim.fleet import SimulatorFleet
from pm_hub.server import start_hub
from tests.conftest import hub_settings
from tests.support.fault_harness import PM, Proc, wait_healthy
from tests.support.helpers import OpsClient, eventually, free_port


def quiet_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PM_", "JOURNAL_"))}
    env.update(HOME=str(tmp_path / "home"), PM_LOG_FORMAT="text", **extra)
    return env


class Service:
    """A ``pm`` command in its own process; stderr in a file, read from a mark on."""

    def __init__(self, tmp_path: Path, name: str, args: list[str], **env: str) -> None:
        self.err_path = tmp_path / f"{name}.err"
        self.out_path = tmp_path / f"{name}.out"
        with open(self.err_path, "wb") as err, open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [*PM, *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=quiet_env(tmp_path, **env),
            )
        self.mark = 0

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    async def wait_for(self, text: str, timeout: float = 30) -> None:
        await eventually(
            lambda: text in self.stderr() + self.out_path.read_text(errors="replace"),
            timeout=timeout,
            what=f"{text!r} from {self.proc.args}\n{self.stderr()[-2000:]}",
        )

    async def stop(self, sig: signal.Signals, timeout: float = 20) -> tuple[int, str]:
        """Send ``sig``; the exit code and what stderr got after it."""
        self.mark = len(self.stderr())
        self.proc.send_signal(sig)
        code = await asyncio.to_thread(self.proc.wait, timeout)
        return code, self.stderr()[self.mark :]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_pm_up_stops_on_a_signal_with_exit_0_and_only_the_goodbye_line(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Before: Ctrl-C ended in ``RuntimeError: Event loop stopped before Future
    completed`` and exit code 1 (python-socketio's own SIGINT handler stopped the loop)."""
    port, sim = free_port(), free_port(2)
    up = Service(
        tmp_path,
        "up",
        ["up", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--no-mdns",
         "--sim", "1", "--sim-port", str(sim), "--sim-control-port", str(sim + 1),
         "--log-level", "WARNING"],
    )  # fmt: skip
    try:
        await up.wait_for("branch box up")
        code, after = await up.stop(sig)
    finally:
        up.kill()
    assert (code, after) == (0, f"pm up: stopped ({sig.name})\n"), up.stderr()
    assert "Traceback" not in up.stderr()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_pm_hub_stops_on_a_signal_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    hub = Service(
        tmp_path,
        "hub",
        ["hub", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--no-mdns",
         "--log-level", "WARNING"],
    )  # fmt: skip
    try:
        await hub.wait_for("hub listening")
        code, after = await hub.stop(sig)
    finally:
        hub.kill()
    assert (code, after) == (0, f"pm hub: stopped ({sig.name})\n"), hub.stderr()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_pm_agent_stops_on_a_signal_with_exit_0_and_no_alert(
    tmp_path: Path, fleet: SimulatorFleet, sig: signal.Signals
) -> None:
    """A stopped agent says so first (``agent:stopping``): its printer shows offline,
    marked ``agent_stopped``, and no ``printer_offline`` alert opens."""
    running = await start_hub(hub_settings(tmp_path / "hub"))
    printer = fleet.printers[0]
    agent = Service(
        tmp_path,
        "agent",
        ["agent", "--hub", running.url, "--license", await running.hub.create_license(),
         "--data-dir", str(tmp_path / "agent"), "--log-level", "WARNING",
         "--printer", f"{printer.name}=tcp://127.0.0.1:{printer.port}"],
    )  # fmt: skip
    try:
        await eventually(
            lambda: any(p["status"] == "online" for p in running.hub.printers.values()),
            timeout=30,
            what=f"agent up\n{agent.stderr()}",
        )
        code, after = await agent.stop(sig)
        await eventually(
            lambda: all(p["status"] == "offline" for p in running.hub.printers.values()),
            what="printer offline",
        )
        await asyncio.sleep(0.5)  # an alert would have opened by now
        row = next(iter(running.hub.printers.values()))
        assert '"agent_stopped": true' in str(row["flags"])
        assert not running.hub.alerts.is_open("printer_offline", f"printer:{row['id']}")
    finally:
        agent.kill()
        await running.stop()
    assert (code, after) == (0, f"pm agent: stopped ({sig.name})\n"), agent.stderr()


async def test_a_killed_agent_still_raises_printer_offline(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """The contrast: SIGKILL gives the agent no chance to say goodbye, so the loss is
    unplanned and alerts as before."""
    running = await start_hub(hub_settings(tmp_path / "hub"))
    printer = fleet.printers[0]
    agent = Service(
        tmp_path,
        "agent",
        ["agent", "--hub", running.url, "--license", await running.hub.create_license(),
         "--data-dir", str(tmp_path / "agent"),
         "--printer", f"{printer.name}=tcp://127.0.0.1:{printer.port}"],
    )  # fmt: skip
    try:
        await eventually(
            lambda: any(p["status"] == "online" for p in running.hub.printers.values()),
            timeout=30,
            what="agent up",
        )
        agent.kill()
        row = next(iter(running.hub.printers.values()))
        await eventually(
            lambda: running.hub.alerts.is_open("printer_offline", f"printer:{row['id']}"),
            what="printer_offline after SIGKILL",
        )
    finally:
        agent.kill()
        await running.stop()


def online_printers(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM printers WHERE status = 'online'").fetchone()
    return int(row[0])


def alerts_in(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT kind, state FROM alerts ORDER BY id").fetchall()


async def test_a_planned_restart_of_pm_up_raises_no_alert(tmp_path: Path) -> None:
    """Before: every graceful stop or restart opened a critical ``printer_offline`` per
    printer (pager noise at every upgrade). Two stops and a start later: no alert."""
    data = tmp_path / "data"
    port, sim = free_port(), free_port(3)
    args = ["up", "--data-dir", str(data), "--port", str(port), "--no-mdns", "--sim", "2",
            "--sim-port", str(sim), "--sim-control-port", str(sim + 2)]  # fmt: skip
    for round_ in range(2):
        up = Service(tmp_path, f"up{round_}", args)
        try:
            await up.wait_for("branch box up")
            await eventually(
                lambda: online_printers(data / "hub.sqlite") == 2, timeout=20, what="printers"
            )
            code, after = await up.stop(signal.SIGTERM)
        finally:
            up.kill()
        assert code == 0 and "Traceback" not in up.stderr(), up.stderr()
        assert "no alert" in after  # the info line that replaces the alert
    assert alerts_in(data / "hub.sqlite") == []


async def test_a_hub_stop_tells_dashboards_and_agents_it_is_planned(
    tmp_path: Path, fleet: SimulatorFleet
) -> None:
    """``pm hub`` on SIGTERM sends ``hub:stopping {planned: true}`` before closing; the
    agent logs an info line, not a warning, and nothing alerts after the restart."""
    from pm_agent.agent import Agent
    from pm_agent.printer_uri import parse_printer_spec
    from pm_hub import auth
    from pm_hub.credential_admin import create_license_offline

    data = tmp_path / "hub"
    data.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["hub", "--data-dir", str(data), "--port", str(port), "--no-mdns"]
    hub = Proc("hub", args, tmp_path / "hub.log", env={"PM_LOG_FORMAT": "text"})
    token = auth.TokenIssuer(auth.load_or_create_secret(data)).create(role="admin")
    printer = fleet.printers[0]
    agent = Agent(
        hub_url=url,
        license_key=await asyncio.to_thread(create_license_offline, data),
        data_dir=tmp_path / "agent",
        printers=[parse_printer_spec(f"{printer.name}=tcp://127.0.0.1:{printer.port}")],
        poll_interval=0.2,
    )
    hub.start()
    ops: OpsClient | None = None
    try:
        await wait_healthy(url)
        await agent.start()
        ops = OpsClient(url, token)
        ops.sio.on("hub:stopping", ops._recorder("hub:stopping"), namespace="/ops")
        await ops.connect()
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        told = await ops.wait_for("hub:stopping", timeout=10)
        assert told == {"planned": True, "reason": "shutdown"}
        assert await asyncio.to_thread(hub.proc.wait, 20) == 0
        await eventually(lambda: agent.connection.hub_stopping, what="agent heard it")
        hub.start()
        await wait_healthy(url)
        await eventually(lambda: agent.connected, timeout=20, what="agent back")
        await asyncio.sleep(0.5)
    finally:
        await agent.stop()
        if ops is not None:
            await ops.close()
        hub.stop()
    assert alerts_in(data / "hub.sqlite") == [], hub.tail()
    assert "stopping (planned)" in hub.tail()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_pm_sim_stops_on_a_signal_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port(2)
    sim = Service(
        tmp_path,
        "sim",
        ["sim", "--port", str(port), "--control-port", str(port + 1), "--log-level", "WARNING"],
    )
    try:
        await sim.wait_for("listening")
        code, after = await sim.stop(sig)
    finally:
        sim.kill()
    assert (code, after) == (0, f"pm sim: stopped ({sig.name})\n"), sim.stderr()


def start_under_journal(tmp_path: Path, err: Path, args: list[str]) -> subprocess.Popen[bytes]:
    """``pm ARGS`` with stderr on ``err`` and ``JOURNAL_STREAM`` naming it, as systemd does."""
    with open(err, "wb") as stream:
        info = os.fstat(stream.fileno())
        env = quiet_env(tmp_path, JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
        env.pop("PM_LOG_FORMAT")
        return subprocess.Popen(
            [*PM, *args],
            stderr=stream,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
        )


async def test_journald_gets_plain_lines_with_a_priority_and_no_time(tmp_path: Path) -> None:
    """Under systemd (``JOURNAL_STREAM`` names stderr) a line is ``<6>logger: message``:
    journald stamps the time and reads the priority."""
    err = tmp_path / "journal.err"
    port = free_port()
    proc = start_under_journal(tmp_path, err, ["hub", "--data-dir", str(tmp_path / "data"),
                                              "--port", str(port), "--no-mdns"])  # fmt: skip
    try:
        await wait_healthy(f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = err.read_text().splitlines()
    ready = next(line for line in lines if "hub ready" in line)
    assert ready.startswith("<6>pm_hub.server: hub ready: listening on http://127.0.0.1:")
    assert not any(line.startswith("{") for line in lines)
    assert not any(time.strftime("%Y-%m-%d") in line for line in lines)
    json.dumps(lines)  # plain text


def run_in_terminal(args: list[str], sig: signal.Signals, env: dict[str, str]) -> tuple[int, str]:
    """``pm ARGS`` on a pseudo-terminal (the dashboard needs one); ``sig`` once it has
    drawn its screen. Its exit code and what it wrote."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: become the dashboard
        os.execve(PM[0], [*PM, *args], env)
    out = b""

    def read(seconds: float, until: bytes | None = None) -> None:
        nonlocal out
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until in out):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    return

    read(30, until=b"Kitchen")  # the dashboard is up and shows the printers
    os.kill(pid, sig)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        read(0.2)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            os.close(fd)
            return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)
    raise AssertionError(f"pm {args[0]} did not stop on {sig.name}")


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
async def test_pm_tui_stops_on_a_signal_with_exit_0(
    tmp_path: Path, fleet: SimulatorFleet, make_agent: Any, hub: Any, sig: signal.Signals
) -> None:
    """Before: SIGTERM killed the dashboard (exit -15, the terminal left in raw mode)."""
    printer = fleet.printers[0]
    await make_agent([f"{printer.name}=tcp://127.0.0.1:{printer.port}"])
    token = hub.hub.tokens.create(role="admin")
    env = quiet_env(tmp_path, TERM="xterm-256color")
    code, screen = await asyncio.to_thread(
        run_in_terminal, ["tui", "--hub", hub.url, "--token", token], sig, env
    )
    assert code == 0 and "Traceback" not in screen
