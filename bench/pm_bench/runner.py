"""``pm bench``: run the scenarios in order, each against a fresh server process, and
report every figure (table on stdout, JSON with ``--json``).

Every scenario starts its own hub (fresh temporary data dir, free port,
``sqlite_synchronous=FULL``) with ``python -m pm hub``, drives it from load
processes (:mod:`pm_bench.worker`), and stops everything it started, also when
it fails or the run is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from pm_bench.machine import load_average, machine_info
from pm_bench.procs import (
    CA_ENV,
    BenchError,
    ProcessSet,
    ServerProcess,
    Worker,
    child_env,
    raise_fd_limit,
)
from pm_bench.profiling import Profile, py_spy_path
from pm_bench.report import ScenarioResult, render_table, to_json, write_json

SCENARIOS = (
    "idle",
    "roundtrip",
    "throughput",
    "fanout",
    "connections",
    "dashboard",
    "baseline",
    "company",
)


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of every scenario. The defaults are issue 7's; :meth:`tiny` is for tests."""

    duration: float = 10.0
    """Seconds of load in each measured phase."""
    hub_log_level: str = "INFO"
    """The hub runs as users run it: INFO logs, written to a file in the run's temp dir."""
    idle_seconds: float = 2.0
    """idle: the server rests this long, then its CPU is measured for as long again."""
    # roundtrip
    rt_rate: float = 100.0
    rt_agents: int = 4
    rt_printers_per_agent: int = 4
    rt_operators: int = 4
    rt_real_agents: int = 1
    rt_real_printers_per_agent: int = 4
    # throughput
    tp_agents: int = 4
    tp_printers_per_agent: int = 4
    tp_submitters: int = 4
    """Operator connections submitting jobs: enough that none nears the hub's
    per-connection rate limit (``ops_rate_limit``, 500 requests/s by default)."""
    tp_ack_window: int = 4
    tp_backlog: int = 16
    tp_real_agents: int = 1
    tp_real_printers_per_agent: int = 8
    tp_max_jobs: int = 200_000
    # fanout
    fo_operators: int = 1000
    fo_processes: int = 4
    fo_agents: int = 2
    fo_printers_per_agent: int = 10
    fo_rate: float = 5.0
    fo_max_events: int = 50_000
    # dashboard (pm_bench.dashboard_probe in its own process: the hub never imports Textual)
    db_printers: int = 500
    db_rate: float = 100.0
    db_branches: int = 0
    """0: the printers behind a branch hub; B: behind a company hub and B branch links."""
    # connections
    cn_connections: int = 10_000
    cn_agent_share: float = 0.2
    cn_processes: int = 4
    cn_concurrency: int = 32
    connect_timeout: float = 300.0
    # company (issue 13): branch links syncing into a company hub, operators listening
    co_branches: int = 500
    co_printers: int = 20
    co_operators: int = 100
    co_rate: float = 2000.0
    co_link_processes: int = 2
    co_listener_processes: int = 2
    co_max_changes: int = 200_000
    co_setups: tuple[str, ...] = ("sqlite", "postgresql", "postgresql+redis")
    """Which company setups run (``pm bench company --company-setups sqlite,postgresql``)."""
    tls: bool = False
    """Serve the hub over TLS (a private CA made for the run): ``pm bench --tls``."""

    @classmethod
    def tiny(cls, duration: float = 1.0) -> BenchConfig:
        """A few connections and a second of load: proves every figure is produced."""
        return cls(
            duration=duration,
            idle_seconds=0.3,
            rt_rate=50.0,
            rt_agents=1,
            rt_printers_per_agent=2,
            rt_operators=1,
            rt_real_printers_per_agent=2,
            tp_agents=1,
            tp_printers_per_agent=2,
            tp_submitters=1,
            tp_real_printers_per_agent=2,
            tp_max_jobs=2000,
            fo_operators=20,
            fo_processes=2,
            fo_agents=1,
            fo_printers_per_agent=2,
            fo_rate=10.0,
            fo_max_events=500,
            db_printers=20,
            db_rate=10.0,
            cn_connections=40,
            cn_processes=2,
            connect_timeout=60.0,
            co_branches=4,
            co_printers=3,
            co_operators=4,
            co_rate=40.0,
            co_link_processes=1,
            co_listener_processes=1,
            co_max_changes=1000,
        )

    @property
    def fd_needed(self) -> int:
        return max(self.cn_connections, self.fo_operators, self.co_branches) + 1024


class BenchContext:
    """What a scenario uses: servers, load workers, credentials, the profiler."""

    def __init__(
        self, config: BenchConfig, root: Path, procs: ProcessSet, profile_dir: Path | None
    ) -> None:
        self.config = config
        self.root = root
        self.procs = procs
        self.profile_dir = profile_dir
        self.results: dict[str, ScenarioResult] = {}
        self.progress: Callable[[str], None] = lambda _m: None
        self._count = 0

    def certificate(self) -> tuple[Path, Path]:
        """The hub's certificate and key for a ``--tls`` run, signed by a CA made for
        it; load processes started from here on trust that CA."""
        cert, key = self.root / "hub.pem", self.root / "hub.key"
        if not cert.exists():
            import trustme  # only a --tls run needs it (a dependency of the bench package)

            authority = trustme.CA()
            server = authority.issue_cert("127.0.0.1", "localhost")
            authority.cert_pem.write_to_path(str(self.root / "ca.pem"))
            server.private_key_pem.write_to_path(str(key))
            cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
            os.environ[CA_ENV] = str(self.root / "ca.pem")  # inherited by the workers
        return cert, key

    def _dir(self, name: str) -> Path:
        self._count += 1
        path = self.root / f"{self._count:02d}-{name}"
        path.mkdir(parents=True)
        return path

    @property
    def worker_lifetime(self) -> float:
        return 6 * self.config.duration + self.config.connect_timeout + 300

    async def start_hub(self, name: str) -> ServerProcess:
        """A hub in its own process with a fresh data dir on a free port, persistence on."""
        where = self._dir(name)
        data_dir = where / "hub-data"
        args = [sys.executable, "-m", "pm", "hub", "--data-dir", str(data_dir)]
        args += ["--port", "0", "--no-mdns", "--log-level", self.config.hub_log_level]
        if self.config.tls:
            cert, key = self.certificate()
            args += ["--tls-cert", str(cert), "--tls-key", str(key)]
        server = await ServerProcess.start(
            self.procs,
            args,
            log_path=where / "hub.log",
            name=f"hub ({name})",
            # The bench measures capacity, not policy: every load process connects from
            # 127.0.0.1 (the per-address connection limit, 256 by default, would stop the
            # 10,000-connection scenario) and its thousands of operators share one token
            # session (whose request rate is limited to 500/s by default).
            env=child_env(
                PM_SQLITE_SYNCHRONOUS="FULL",
                PM_MAX_CONNECTIONS_PER_ADDRESS="0",
                PM_MAX_OPERATORS_PER_COMPANY="0",
                PM_OPS_RATE_LIMIT="0",
            ),
        )
        server.data_dir = data_dir
        return server

    async def start_relay(self, name: str) -> ServerProcess:
        where = self._dir(name)
        return await ServerProcess.start(
            self.procs,
            [sys.executable, "-m", "pm_bench.relay", "--port", "0"],
            log_path=where / "relay.log",
            name=f"bare relay ({name})",
        )

    async def worker(self, target: str, name: str, **init: Any) -> Worker:
        where = self.root / "workers"
        where.mkdir(exist_ok=True)
        self._count += 1
        return await Worker.start(
            self.procs,
            f"pm_bench.{target}",
            name=name,
            log_path=where / f"{self._count:02d}-{name}.log",
            max_lifetime=self.worker_lifetime,
            **init,
        )

    def token(
        self, server: ServerProcess, *, role: str = "admin", branch_ids: list[int] | None = None
    ) -> str:
        """An operator token the server accepts (the bare relay accepts anything)."""
        if server.data_dir is None:
            return "bare-relay-needs-no-token"
        from pm_hub.auth import TokenIssuer, load_or_create_secret

        issuer = TokenIssuer(load_or_create_secret(server.data_dir))
        return issuer.create(
            role=role, branch_ids=branch_ids, sub=f"bench-{role}", ttl_seconds=7200
        )

    async def licenses(self, server: ServerProcess, count: int) -> list[str]:
        """``count`` new agent license keys, written to the hub's file in one transaction."""
        if server.data_dir is None:
            return [f"bare-{i}" for i in range(count)]
        return await asyncio.to_thread(create_licenses, server.data_dir, count)

    @contextlib.asynccontextmanager
    async def profiled(
        self, server: ServerProcess, name: str, seconds: float, into: dict[str, Any]
    ) -> AsyncIterator[None]:
        """Sample ``server`` with py-spy for ``seconds`` (only with ``--profile DIR``)."""
        if self.profile_dir is None:
            yield
            return
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        out = self.profile_dir / f"{name}.txt"
        profile = await Profile(self.procs, server.pid, out, seconds).start()
        try:
            yield
        finally:
            into["profile"] = await profile.finish()


def create_licenses(data_dir: Path, count: int) -> list[str]:
    """Agent license keys in bulk (like ``pm license create``, in one transaction)."""
    from pm_hub import auth
    from pm_hub.store import Database, prepare_hub_db, tenants

    keys = [auth.new_license_key() for _ in range(count)]

    def write(d: Any) -> None:
        company_id, branch_id = tenants.ensure_default_tenant(d)
        for key in keys:
            tenants.insert_license(
                d,
                key_hash=auth.hash_license_key(key),
                key_prefix=auth.license_prefix(key),
                company_id=company_id,
                branch_id=branch_id,
                label="pm bench",
            )

    db = Database(data_dir / "hub.sqlite")
    db.start(prepare_hub_db)
    try:
        asyncio.run(db.write(write))
    finally:
        db.close()
    return keys


ScenarioFn = Callable[[BenchContext, ScenarioResult], Awaitable[None]]


def _scenario(name: str) -> ScenarioFn:
    """``run(ctx, result)`` of the scenario module ``pm_bench.<name>``."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}")
    fn: ScenarioFn = importlib.import_module(f"pm_bench.{name}").run
    return fn


async def run_scenarios(
    names: list[str],
    config: BenchConfig,
    *,
    profile_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Run ``names`` in order and return their results (a failed one carries its error)."""
    if profile_dir is not None:
        py_spy_path()
    if any(n in ("connections", "fanout", "baseline", "company") for n in names):
        raise_fd_limit(config.fd_needed)
    results: list[ScenarioResult] = []
    procs = ProcessSet()
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as tmp:
        ctx = BenchContext(config, Path(tmp), procs, profile_dir)
        ctx.progress = progress or (lambda _m: None)
        try:
            for name in names:
                result = ScenarioResult(name)
                ctx.results[name] = result
                results.append(result)
                ctx.progress(f"{name}: running")
                t0 = time.monotonic()
                try:
                    await _scenario(name)(ctx, result)
                except BenchError as exc:
                    result.error = str(exc)
                except Exception:
                    result.error = traceback.format_exc()
                finally:
                    await procs.close()
                    result.seconds = time.monotonic() - t0
                if result.error:
                    ctx.progress(f"{name}: FAILED\n{result.error}")
                else:
                    ctx.progress(f"{name}: done in {result.seconds:.0f}s")
        finally:
            await procs.close()
            # The run's CA (a --tls run) went with its directory: a later run in this
            # process must not be told to trust a file that is gone.
            os.environ.pop(CA_ENV, None)
    return results


def parse_scenarios(names: list[str] | None) -> list[str]:
    chosen = list(names or SCENARIOS)
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown:
        raise ValueError(
            f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    return [n for n in SCENARIOS if n in chosen]


def run_bench(
    scenarios: list[str] | None,
    *,
    duration: float = 10.0,
    json_path: Path | None = None,
    profile_dir: Path | None = None,
    config: BenchConfig | None = None,
    out: TextIO | None = None,
) -> int:
    """The ``pm bench`` command: 0 when every scenario produced its figures."""
    out = out or sys.stdout
    names = parse_scenarios(scenarios)
    if duration <= 0:
        raise ValueError("--duration must be positive")
    config = replace(config or BenchConfig(), duration=duration)
    started = time.time()

    def progress(message: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    async def main() -> list[ScenarioResult]:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_scenarios(names, config, profile_dir=profile_dir, progress=progress)

    machine = machine_info()
    progress(
        f"pm bench {' '.join(names)} on {machine['cpu_count']} x {machine['cpu_model']}, "
        f"{machine['python']}; {duration:g}s per phase; load average {machine['load_average']}"
        + ("; the hub serves TLS (https, wss)" if config.tls else "")
    )
    try:
        results = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("pm bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    if config.tls:
        print("over TLS: the hub serves https:// and wss:// (pm bench --tls)", file=out)
    print(render_table(results), file=out)
    if json_path is not None:
        command = ["pm", "bench", *(scenarios or []), "--duration", f"{duration:g}"]
        command += ["--tls"] if config.tls else []
        run = {
            "command": shlex.join([*command, "--json", str(json_path)]),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
            "load_average_at_end": load_average(),
            "scenarios": names,
            "config": asdict(config),
        }
        write_json(json_path, to_json(results, machine=machine, run=run))
        print(f"figures written to {json_path}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0
