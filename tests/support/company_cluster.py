"""A company hub in several processes: ``pm hub --company-mode`` subprocesses on one
PostgreSQL schema and one Redis channel (a test's own), sharing a data dir for the
secrets, and a small TCP balancer in front of them that sends each new connection to
the first process that accepts it (what HAProxy does for a backend that is down)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_hub.auth import TokenIssuer, load_or_create_secret
from tests.support.fault_harness import Proc, wait_healthy
from tests.support.helpers import free_port


@dataclass
class CompanyProcess:
    name: str
    port: int
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> CompanyProcess:
        self.proc.start()
        try:
            await wait_healthy(self.url, timeout=30)
        except AssertionError:
            raise AssertionError(f"{self.name} did not start:\n{self.proc.tail()}") from None
        return self

    def kill9(self) -> None:
        self.proc.kill9()

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class CompanyCluster:
    root: Path
    database_url: str
    redis_url: str
    channel: str
    processes: list[CompanyProcess] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "company-data"

    def issuer(self) -> TokenIssuer:
        return TokenIssuer(load_or_create_secret(self.data_dir))

    def token(self, **claims: Any) -> str:
        claims.setdefault("role", "admin")
        claims.setdefault("sub", "hq")
        return self.issuer().create(**claims)

    def branch_token(self, branch_id: int) -> str:
        return self.issuer().create(
            role="branch", branch_ids=[branch_id], sub=f"branch-{branch_id}"
        )

    def process(
        self, name: str, *, redis_url: str | None = None, redis: bool = True
    ) -> CompanyProcess:
        """A process of the company hub, not started yet."""
        port = free_port()
        args = ["hub", "--company-mode", "--no-mdns", "--data-dir", str(self.data_dir)]
        args += ["--port", str(port), "--database", self.database_url]
        if redis:
            args += ["--redis-url", redis_url or self.redis_url]
        env = {"PM_REDIS_CHANNEL": self.channel, "PM_REQUEST_TIMEOUT": "5"}
        proc = Proc(name, args, self.root / f"{name}.log", env=env)
        process = CompanyProcess(name, port, proc)
        self.processes.append(process)
        return process

    async def start_process(
        self, name: str, *, redis_url: str | None = None, redis: bool = True
    ) -> CompanyProcess:
        return await self.process(name, redis_url=redis_url, redis=redis).start()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


class Balancer:
    """A TCP front on 127.0.0.1: each new connection goes to the first backend port
    that accepts it, and stays there (sticky by connection, like websockets behind
    HAProxy)."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Balancer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for port in self.backends:
            with contextlib.suppress(OSError):
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
        if upstream is None:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}
