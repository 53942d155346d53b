"""Processes of a benchmark run: the server under test, load workers, the profiler.

Every child gets its own session (a Ctrl-C in the terminal reaches only ``pm bench``,
which then stops them in order) and, on Linux, ``PR_SET_PDEATHSIG`` so it gets
SIGTERM if ``pm bench`` itself dies. :class:`ProcessSet` ends whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import resource
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

READ_LIMIT = 256 * 1024 * 1024
_LISTENING = re.compile(r"listening on (https?://[0-9.]+:(\d+))")
#: The private CA of a ``--tls`` run: load processes (and this one) trust it.
CA_ENV = "PMBENCH_CA_FILE"


def bench_ssl() -> ssl.SSLContext | bool:
    """What a bench client checks a hub's certificate against: the run's own CA when
    it serves TLS (``pm bench --tls``), else aiohttp's default."""
    ca = os.environ.get(CA_ENV)
    return ssl.create_default_context(cafile=ca) if ca else True


class BenchError(Exception):
    """The benchmark cannot run or a process in it failed; the message says why."""


def _child_setup() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit (inherited by every child) to ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise BenchError(
                f"the open-file limit is {soft} (hard {hard}) but this run needs {needed}: "
                f"raise the hard limit (e.g. `ulimit -Hn {needed}` as root, or nofile in "
                "/etc/security/limits.conf) or ask for fewer connections"
            )
        target = needed if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            raise BenchError(f"cannot raise the open-file limit to {target}: {exc}") from exc
        soft = target
    return int(soft)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for children: ours without ``PM_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- /proc readings ------------------------------------------------------------------


def rss_kb(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (all threads), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (all threads) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class CpuMeter:
    """CPU use of some processes between :meth:`start` and :meth:`stop`, in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def start(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._t0, 1e-6)
        usage: dict[str, float] = {}
        for name, pid in self.pids.items():
            now = cpu_seconds(pid)
            if now is not None:
                usage[name] = round(100 * (now - self._start.get(name, 0.0)) / wall, 1)
        return usage


# -- processes -------------------------------------------------------------------------


class ProcessSet:
    """Every child of a run; :meth:`close` ends the ones still running."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(
        self, *args: str, log_path: Path, env: dict[str, str] | None = None, pipes: bool = False
    ) -> asyncio.subprocess.Process:
        log_file = _open_log(log_path)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                env=env or child_env(),
                start_new_session=True,
                preexec_fn=_child_setup if sys.platform.startswith("linux") else None,
                limit=READ_LIMIT,
            )
        finally:
            log_file.close()
        self.procs.append(proc)
        return proc

    async def end(self, proc: asyncio.subprocess.Process, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    async def close(self) -> None:
        procs, self.procs = list(self.procs), []
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def _open_log(path: Path) -> Any:
    return open(path, "ab")  # handed to the child; closed after the spawn


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


class ServerProcess:
    """The server under test (the hub, or the bare relay) running in its own process."""

    def __init__(
        self, procs: ProcessSet, proc: asyncio.subprocess.Process, log_path: Path, name: str
    ) -> None:
        self.procs = procs
        self.proc = proc
        self.log_path = log_path
        self.name = name
        self.url = ""
        self.start_s: float | None = None
        self.data_dir: Path | None = None
        """The hub's data dir (None for the bare relay)."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(
        cls,
        procs: ProcessSet,
        args: list[str],
        *,
        log_path: Path,
        name: str,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ServerProcess:
        """Spawn, wait for its "listening on URL" line, then for ``/healthz`` to answer.

        ``start_s`` is the time from spawn to the first good ``/healthz``."""
        t0 = time.monotonic()
        proc = await procs.spawn(*args, log_path=log_path, env=env)
        server = cls(procs, proc, log_path, name)
        deadline = t0 + timeout
        connector = aiohttp.TCPConnector(ssl=bench_ssl())
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    raise BenchError(f"{name} exited with {proc.returncode}:\n{log_tail(log_path)}")
                if not server.url:
                    match = _LISTENING.search(_read(log_path))
                    if match:
                        server.url = match.group(1)
                if server.url:
                    try:
                        async with session.get(f"{server.url}/healthz") as resp:
                            if resp.status == 200:
                                server.start_s = time.monotonic() - t0
                                return server
                    except aiohttp.ClientError:
                        pass
                await asyncio.sleep(0.005)
        await procs.end(proc)
        raise BenchError(f"{name} did not answer /healthz within {timeout}s:\n{log_tail(log_path)}")

    def rss_kb(self) -> int | None:
        return rss_kb(self.pid)

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pid)

    def check_alive(self) -> None:
        if self.proc.returncode is not None:
            raise BenchError(
                f"{self.name} exited with {self.proc.returncode}:\n{log_tail(self.log_path)}"
            )

    async def stop(self) -> int | None:
        return await self.procs.end(self.proc, timeout=15)


class Worker:
    """A load process (:mod:`pm_bench.worker`) and the commands it runs."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log_path: Path) -> None:
        self.proc = proc
        self.name = name
        self.log_path = log_path
        self._ids = 0
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(
        cls,
        procs: ProcessSet,
        target: str,
        *,
        name: str,
        log_path: Path,
        max_lifetime: float,
        timeout: float = 60.0,
        **init: Any,
    ) -> Worker:
        env = child_env(PM_BENCH_MAX_LIFETIME=str(max_lifetime))
        proc = await procs.spawn(
            sys.executable, "-m", "pm_bench.worker", target, log_path=log_path, env=env,
            pipes=True,
        )  # fmt: skip
        worker = cls(proc, name, log_path)
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(init) + "\n").encode())
        await proc.stdin.drain()
        await worker._reply(0, timeout)
        return worker

    async def _reply(self, msg_id: int, timeout: float) -> Any:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer within {timeout:.0f}s") from None
        if not line:
            await asyncio.sleep(0.2)
            raise BenchError(
                f"{self.name} exited ({self.proc.returncode}):\n{log_tail(self.log_path)}"
            )
        msg = json.loads(line)
        if msg.get("id") != msg_id:
            raise BenchError(f"{self.name}: answer {msg.get('id')} for command {msg_id}")
        if not msg.get("ok"):
            raise BenchError(f"{self.name} failed:\n{msg.get('error')}")
        return msg.get("result")

    async def call(self, cmd: str, *, timeout: float = 120.0, **args: Any) -> Any:
        """Run ``cmd_<cmd>(**args)`` in the worker and return its result."""
        async with self._lock:
            self._ids += 1
            msg_id = self._ids
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(
                    (json.dumps({"id": msg_id, "cmd": cmd, "args": args}) + "\n").encode()
                )
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                raise BenchError(
                    f"{self.name} is gone ({self.proc.returncode}):\n{log_tail(self.log_path)}"
                ) from None
            return await self._reply(msg_id, timeout)


async def call_all(workers: list[Worker], cmd: str, *, timeout: float = 120.0, **args: Any) -> Any:
    """The same command in every worker at once; the results in worker order."""
    return await asyncio.gather(*(w.call(cmd, timeout=timeout, **args) for w in workers))
