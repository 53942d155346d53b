"""Simulated ESC/POS network printers, for the demo and for every test.

:class:`SimulatedPrinter` is an asyncio TCP server on 127.0.0.1 that behaves
like a kitchen printer on port 9100: it decodes what it receives with
:class:`~pm_agent.escpos_stream.EscPosDecoder`, turns it into
:class:`Receipt` objects (a cut ends a receipt), answers ``DLE EOT 1..4``
real-time status queries and ``GS I n`` identity queries, and can be put into
the states of a real printer (offline, paper low/out, cover open, error).

Status answers are sent in stream order: a query is answered only after every
receipt that came before it on the same connection has been printed, so
"send the job, then DLE EOT" works as a barrier. While the printer cannot
print (paper out, cover open, error) it still answers status queries, and the
receipts it receives wait in its buffer until the state returns to online or
paper_low. Offline means powered off: the port refuses connections, open
connections are dropped and whatever was not printed yet is lost.

:class:`SimulatorFleet` runs several printers plus a small HTTP control server
(``GET /printers``, ``GET/DELETE /printers/{port}/receipts``,
``POST /printers/{port}/state``). ``add_sim_arguments``/``run_sim`` and
``add_simctl_arguments``/``run_simctl`` are the glue for ``pm sim`` and
``pm simctl``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from pm_agent.escpos_status import STATUSES, encode_state
from pm_agent.escpos_stream import (
    Barcode,
    Cut,
    EscPosDecoder,
    Event,
    IdentityRequest,
    Image,
    LineFeed,
    QRCode,
    StatusRequest,
    Text,
)
from pm_agent.escpos_stream import (
    Feed as FeedEvent,
)

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 9100
DEFAULT_CONTROL_PORT = 9180
#: Every state a simulated printer can be put in.
PRINTER_STATES = STATUSES
#: States in which the printer prints what it receives.
PRINTING_STATES = frozenset({"online", "paper_low"})
DEFAULT_NAMES = ("Kitchen", "Bar", "Counter")

#: ``GS I 1/2/3`` answers: model id, type id (bit 1: autocutter), version id.
MODEL_ID = 0x20
TYPE_ID = 0x02
VERSION_ID = 0x10
FIRMWARE = "1.0-SIM"
MAKER = "PRINTERMASTER"
DEFAULT_MODEL = "PM-SIM80"
READ_SIZE = 65536


@dataclass
class Receipt:
    """One printed piece of paper.

    ``text`` has one line per line feed; barcodes appear as
    ``[BARCODE CODE128 data]``, QR codes as ``[QR data]``, images as
    ``[IMAGE WxH]``. ``cut`` is False when the sender closed the connection
    without cutting.
    """

    text: str
    raw: bytes
    finished_at: float
    cut: bool

    def to_json(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "text": self.text,
            "cut": self.cut,
            "finished_at": self.finished_at,
            "bytes": len(self.raw),
        }


class _ReceiptBuilder:
    """Collects the events of the receipt being printed on one connection."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.raw = bytearray()
        self.has_content = False

    def add(self, event: Event, raw: bytes) -> None:
        if isinstance(event, StatusRequest | IdentityRequest):
            return  # queries are not part of the paper
        self.raw += raw
        if isinstance(event, Text):
            self.line.append(event.text)
            self.has_content = True
        elif isinstance(event, LineFeed):
            self._newline()
            self.has_content = True
        elif isinstance(event, FeedEvent):
            if event.lines == 0:
                if self.line:
                    self._newline()
            else:
                self._newline()
                self.lines.extend([""] * (event.lines - 1))
        elif isinstance(event, Barcode):
            self._block(f"[BARCODE {event.kind} {event.data}]")
        elif isinstance(event, QRCode):
            self._block(f"[QR {event.data}]")
        elif isinstance(event, Image):
            self._block(f"[IMAGE {event.width}x{event.height}]")

    def _newline(self) -> None:
        self.lines.append("".join(self.line))
        self.line = []

    def _block(self, text: str) -> None:
        if self.line:
            self._newline()
        self.lines.append(text)
        self.has_content = True

    def text(self) -> str:
        lines = [*self.lines, "".join(self.line)] if self.line else list(self.lines)
        while lines and not lines[-1].strip():
            lines.pop()  # the feed before the cut
        return "\n".join(lines)


@dataclass
class _PrintJob:
    text: str
    raw: bytes
    cut: bool
    done: asyncio.Future[None]


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter, profile: str | None) -> None:
        self.writer = writer
        self.decoder = EscPosDecoder(profile)
        self.builder = _ReceiptBuilder()
        self.last_print: asyncio.Future[None] | None = None
        self.task: asyncio.Task[Any] | None = None
        self.dropped = False


class SimulatedPrinter:
    """A simulated ESC/POS network printer listening on 127.0.0.1."""

    def __init__(
        self,
        name: str = "Kitchen-1",
        port: int = 0,
        *,
        serial: str | None = None,
        model: str | None = None,
        status_supported: bool = True,
        print_delay: float = 0.0,
        profile: str | None = None,
        host: str = HOST,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("simulated printers listen on loopback addresses (127.x.y.z) only")
        self.name = name
        self.port = port
        self.host = host
        self.serial = serial or f"SIM{zlib.crc32(name.encode()):08X}"
        self.model = model or DEFAULT_MODEL
        self.status_supported = status_supported
        self.print_delay = print_delay
        self.profile = profile
        self.state = "online"
        self.receipts: list[Receipt] = []
        self.status_queries = 0
        self.bytes_received = 0
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._queue: deque[_PrintJob] = deque()
        self._cond: asyncio.Condition | None = None
        self._mechanism_task: asyncio.Task[None] | None = None
        self._running = False

    def __repr__(self) -> str:
        return f"<SimulatedPrinter {self.name} {self.address} {self.state}>"

    @property
    def address(self) -> str:
        """The address an agent is configured with: ``tcp://127.0.0.1:PORT``."""
        return f"tcp://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def connections(self) -> int:
        """How many clients are connected right now."""
        return len(self._connections)

    @property
    def held(self) -> int:
        """Receipts received but not printed yet (waiting for paper, cover, ...)."""
        return len(self._queue)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start listening (port 0 picks a free port, kept across offline/online)."""
        if self._running:
            return
        self._cond = asyncio.Condition()
        if self.state != "offline":
            await self._listen()
        self._running = True
        self._mechanism_task = asyncio.create_task(
            self._mechanism(), name=f"sim-printer-{self.name}"
        )

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if not self._running:
            return
        self._running = False
        await self._close_listener()
        await self._drop_connections()
        self._drop_queue()
        if self._mechanism_task is not None:
            self._mechanism_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._mechanism_task
            self._mechanism_task = None

    async def __aenter__(self) -> SimulatedPrinter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        logger.info("simulated printer %s listening on %s", self.name, self.address)

    async def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # Connections are dropped separately; do not wait for them here
            # (Server.wait_closed waits for clients on Python >= 3.12).

    async def _drop_connections(self) -> None:
        connections = list(self._connections)
        for conn in connections:
            conn.dropped = True
            conn.writer.transport.abort()
            if conn.task is not None and conn.task is not asyncio.current_task():
                conn.task.cancel()
        tasks = [c.task for c in connections if c.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._connections.clear()

    def _drop_queue(self) -> None:
        if self._queue:
            logger.info(
                "simulated printer %s lost %d unprinted receipt(s)", self.name, len(self._queue)
            )
        for job in self._queue:
            if not job.done.done():
                job.done.cancel()
        self._queue.clear()

    # ------------------------------------------------------------------ state

    async def set_state(self, state: str) -> None:
        """Put the printer in one of :data:`PRINTER_STATES`."""
        if state not in PRINTER_STATES:
            raise ValueError(f"state must be one of {', '.join(PRINTER_STATES)}, not {state!r}")
        old = self.state
        if state == old:
            return
        self.state = state
        logger.info("simulated printer %s: %s -> %s", self.name, old, state)
        if state == "offline":
            await self._close_listener()
            await self._drop_connections()
            self._drop_queue()
        elif old == "offline" and self._running:
            try:
                await self._listen()
            except OSError:
                self.state = "offline"
                raise
        await self._notify()

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def clear(self) -> None:
        """Forget the printed receipts and reset the counters."""
        self.receipts.clear()
        self.status_queries = 0
        self.bytes_received = 0

    async def wait_for_receipts(
        self,
        count: int,
        timeout: float = 10,
    ) -> list[Receipt]:
        """Wait until at least ``count`` receipts are printed; return them all."""
        if self._cond is None:
            raise RuntimeError(f"simulated printer {self.name} is not started")
        cond = self._cond
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    await cond.wait_for(lambda: len(self.receipts) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: {len(self.receipts)} receipt(s) after {timeout}s, expected {count}"
            ) from None
        return list(self.receipts)

    # ------------------------------------------------------------------ printing

    async def _mechanism(self) -> None:
        """Prints queued receipts one by one while the state allows it."""
        assert self._cond is not None
        cond = self._cond
        while True:
            async with cond:
                await cond.wait_for(lambda: bool(self._queue) and self.state in PRINTING_STATES)
                job = self._queue[0]
            if self.print_delay > 0:
                await asyncio.sleep(self.print_delay)
            async with cond:
                if not self._queue or self._queue[0] is not job:
                    continue  # dropped (offline) while printing
                if self.state not in PRINTING_STATES:
                    continue  # paper ran out mid-receipt: print it again later
                self._queue.popleft()
                self.receipts.append(
                    Receipt(text=job.text, raw=job.raw, finished_at=time.time(), cut=job.cut)
                )
                if not job.done.done():
                    job.done.set_result(None)
                cond.notify_all()

    async def _finish_receipt(self, conn: _Connection, *, cut: bool) -> None:
        builder = conn.builder
        conn.builder = _ReceiptBuilder()
        if not builder.has_content:
            return
        job = _PrintJob(
            text=builder.text(),
            raw=bytes(builder.raw),
            cut=cut,
            done=asyncio.get_running_loop().create_future(),
        )
        conn.last_print = job.done
        assert self._cond is not None
        async with self._cond:
            self._queue.append(job)
            self._cond.notify_all()

    async def _barrier(self, conn: _Connection) -> None:
        """Wait until what came before on this connection is printed (or
        cannot be printed in the current state)."""
        done = conn.last_print
        if done is None or done.done() or self._cond is None:
            return
        async with self._cond:
            await self._cond.wait_for(lambda: done.done() or self.state not in PRINTING_STATES)

    # ------------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer, self.profile)
        conn.task = asyncio.current_task()
        if self.state == "offline" or not self._running:
            writer.transport.abort()
            return
        self._connections.add(conn)
        peer = writer.get_extra_info("peername")
        logger.debug("simulated printer %s: connection from %s", self.name, peer)
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                self.bytes_received += len(data)
                await self._process(conn, conn.decoder.feed_raw(data))
            await self._process(conn, conn.decoder.flush_raw())
            if not conn.dropped:
                await self._finish_receipt(conn, cut=False)
        except (ConnectionError, OSError) as exc:
            logger.debug("simulated printer %s: connection lost: %s", self.name, exc)
        except asyncio.CancelledError:
            # Dropped (offline/stop). Ending normally: on Python 3.11 the
            # stream machinery logs an error for a cancelled handler task.
            logger.debug("simulated printer %s: connection dropped", self.name)
        finally:
            self._connections.discard(conn)
            if not writer.is_closing():
                writer.close()

    async def _process(self, conn: _Connection, pairs: Sequence[tuple[Event, bytes]]) -> None:
        for event, raw in pairs:
            if conn.dropped:
                return
            if isinstance(event, StatusRequest):
                self.status_queries += 1
                if self.status_supported and 1 <= event.n <= 4:
                    await self._barrier(conn)
                    answer = encode_state(self.state)[event.n]
                    conn.writer.write(bytes([answer]))
                    await conn.writer.drain()
            elif isinstance(event, IdentityRequest):
                answer_bytes = self.identity(event.n)
                if answer_bytes is not None:
                    conn.writer.write(answer_bytes)
                    await conn.writer.drain()
            elif isinstance(event, Cut):
                conn.builder.add(event, raw)
                await self._finish_receipt(conn, cut=True)
            else:
                conn.builder.add(event, raw)

    def identity(self, n: int) -> bytes | None:
        """The answer to ``GS I n`` (None: the printer sends nothing)."""
        if n in (1, 49):
            return bytes([MODEL_ID])
        if n in (2, 50):
            return bytes([TYPE_ID])
        if n in (3, 51):
            return bytes([VERSION_ID])
        strings = {0x41: FIRMWARE, 0x42: MAKER, 0x43: self.model, 0x44: self.serial, 0x45: "ANK"}
        if n in strings:
            return b"\x5f" + strings[n].encode("ascii", "replace") + b"\x00"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "address": self.address,
            "state": self.state,
            "receipts": len(self.receipts),
            "held": self.held,
            "status_queries": self.status_queries,
            "bytes_received": self.bytes_received,
            "serial": self.serial,
            "model": self.model,
        }


# --------------------------------------------------------------------------- fleet


def default_names(count: int) -> list[str]:
    """Kitchen-1, Bar-1, Counter-1, Kitchen-2, ..."""
    return [
        f"{DEFAULT_NAMES[i % len(DEFAULT_NAMES)]}-{i // len(DEFAULT_NAMES) + 1}"
        for i in range(count)
    ]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"code": code, "message": message}}, status=status
    )


class SimulatorFleet:
    """Several simulated printers and their HTTP control server.

    ``fleet = await SimulatorFleet.start(count=3)`` or
    ``async with SimulatorFleet.start(count=3) as fleet: ...``.
    """

    def __init__(self, printers: Sequence[SimulatedPrinter], *, control_port: int | None = 0):
        self.printers = list(printers)
        self.control_port = control_port
        self._runner: web.AppRunner | None = None
        self._started = False

    @classmethod
    def start(
        cls,
        count: int = 3,
        base_port: int = 0,
        names: Sequence[str] | None = None,
        *,
        control_port: int | None = 0,
        print_delay: float = 0.0,
        status_supported: bool = True,
    ) -> _FleetStart:
        """Create and start a fleet. ``base_port`` 0 gives every printer a free
        port, otherwise printer i listens on ``base_port + i``. ``control_port``
        None runs no control server, 0 picks a free port."""
        names = list(names) if names else default_names(count)
        if len(names) < count:
            names += default_names(count)[len(names) :]
        printers = [
            SimulatedPrinter(
                names[i],
                base_port + i if base_port else 0,
                print_delay=print_delay,
                status_supported=status_supported,
            )
            for i in range(count)
        ]
        return _FleetStart(cls(printers, control_port=control_port))

    async def start_all(self) -> SimulatorFleet:
        """Start every printer and the control server."""
        if self._started:
            return self
        try:
            for printer in self.printers:
                await printer.start()
            if self.control_port is not None:
                await self._start_control()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        return self

    async def stop(self) -> None:
        """Stop the control server and every printer."""
        self._started = False
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        for printer in self.printers:
            await printer.stop()

    async def __aenter__(self) -> SimulatorFleet:
        return await self.start_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def control_url(self) -> str | None:
        if self._runner is None or self.control_port is None:
            return None
        return f"http://{HOST}:{self.control_port}"

    def printer(self, port: int) -> SimulatedPrinter | None:
        """The printer listening on ``port``."""
        for printer in self.printers:
            if printer.port == port:
                return printer
        return None

    # ------------------------------------------------------------------ HTTP control

    async def _start_control(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._http_index)
        app.router.add_get("/printers", self._http_printers)
        app.router.add_get("/printers/{port}", self._http_printer)
        app.router.add_get("/printers/{port}/receipts", self._http_receipts)
        app.router.add_delete("/printers/{port}/receipts", self._http_clear)
        app.router.add_post("/printers/{port}/state", self._http_state)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, self.control_port or 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.control_port = int(runner.addresses[0][1])
        logger.info("simulator control server on %s", self.control_url)

    def _lookup(self, request: web.Request) -> SimulatedPrinter | web.Response:
        text = request.match_info["port"]
        printer = self.printer(int(text)) if text.isdigit() else None
        if printer is None:
            return _error(404, "not_found", f"no simulated printer on port {text}")
        return printer

    async def _http_index(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "printers": "/printers",
                "receipts": "/printers/{port}/receipts",
                "state": 'POST /printers/{port}/state {"state": ...}',
                "states": list(PRINTER_STATES),
            }
        )

    async def _http_printers(self, request: web.Request) -> web.Response:
        return web.json_response([p.to_json() for p in self.printers])

    async def _http_printer(self, request: web.Request) -> web.Response:
        printer = self._lookup(request)
        if isinstance(printer, web.Response):
            return printer
        return web.json_response(printer.to_json())

    async def _http_receipts(self, request: web.Request) -> web.Response:
        printer = self._lookup(request)
        if isinstance(printer, web.Response):
            return printer
        return web.json_response([r.to_json(i) for i, r in enumerate(printer.receipts)])

    async def _http_clear(self, request: web.Request) -> web.Response:
        printer = self._lookup(request)
        if isinstance(printer, web.Response):
            return printer
        cleared = len(printer.receipts)
        printer.clear()
        return web.json_response({"cleared": cleared})

    async def _http_state(self, request: web.Request) -> web.Response:
        printer = self._lookup(request)
        if isinstance(printer, web.Response):
            return printer
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid_payload", 'body must be JSON like {"state": "paper_out"}')
        state = body.get("state") if isinstance(body, dict) else None
        if state not in PRINTER_STATES:
            return _error(
                400,
                "invalid_payload",
                f"state must be one of {', '.join(PRINTER_STATES)}, not {state!r}",
            )
        try:
            await printer.set_state(state)
        except OSError as exc:
            return _error(409, "conflict", f"cannot listen on port {printer.port} again: {exc}")
        return web.json_response(printer.to_json())


class _FleetStart:
    """What :meth:`SimulatorFleet.start` returns: await it, or use it in
    ``async with`` (the fleet stops at the end of the block)."""

    def __init__(self, fleet: SimulatorFleet) -> None:
        self._fleet = fleet

    def __await__(self) -> Generator[Any, None, SimulatorFleet]:
        return self._fleet.start_all().__await__()

    async def __aenter__(self) -> SimulatorFleet:
        return await self._fleet.start_all()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._fleet.stop()


# --------------------------------------------------------------------------- CLI


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pm sim``."""
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port of the first printer; the others follow (0: free ports) [%(default)s]",
    )
    parser.add_argument("--count", type=int, default=1, help="number of printers [%(default)s]")
    parser.add_argument(
        "--host",
        default=HOST,
        choices=[HOST],
        help="listen address; simulated printers only listen on 127.0.0.1",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        default=DEFAULT_CONTROL_PORT,
        help="port of the HTTP control server (0: a free port) [%(default)s]",
    )
    parser.add_argument(
        "--print-delay",
        type=float,
        default=0.0,
        help="seconds each receipt takes to print [%(default)s]",
    )
    parser.add_argument(
        "--no-status",
        action="store_true",
        help="never answer DLE EOT status queries (like some cheap printers)",
    )


async def run_sim(args: argparse.Namespace) -> None:
    """``pm sim``: run the printers until cancelled (Ctrl-C)."""
    count = int(args.count)
    if not 1 <= count <= 100:
        raise SystemExit("pm sim: --count must be from 1 to 100")
    if args.print_delay < 0:
        raise SystemExit("pm sim: --print-delay must not be negative")
    try:
        fleet = await SimulatorFleet.start(
            count=count,
            base_port=args.port,
            control_port=args.control_port,
            print_delay=args.print_delay,
            status_supported=not args.no_status,
        )
    except OSError as exc:
        raise SystemExit(f"pm sim: cannot listen: {exc}") from None
    try:
        for printer in fleet.printers:
            print(f"{printer.name} listening on {printer.address}", flush=True)
        print(f"Control server on {fleet.control_url}/printers", flush=True)
        await asyncio.Event().wait()
    finally:
        await fleet.stop()


def add_simctl_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``pm simctl``."""
    parser.add_argument(
        "--control",
        default=f"http://{HOST}:{DEFAULT_CONTROL_PORT}",
        help="URL of the simulator control server [%(default)s]",
    )
    commands = parser.add_subparsers(dest="simctl_command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="list the simulated printers")
    state = commands.add_parser("state", help="put a printer in a state")
    state.add_argument("printer_port", metavar="PORT", type=int)
    state.add_argument("new_state", metavar="STATE", help=" | ".join(PRINTER_STATES))
    receipts = commands.add_parser("receipts", help="show what a printer printed")
    receipts.add_argument("printer_port", metavar="PORT", type=int)
    clear = commands.add_parser("clear", help="forget a printer's receipts")
    clear.add_argument("printer_port", metavar="PORT", type=int)


class _SimctlError(Exception):
    pass


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = base.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code} {exc.reason}"
        raise _SimctlError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _SimctlError(
            f"no simulator control server at {base} ({reason}); start one with `pm sim`"
        ) from None
    except ValueError:
        raise _SimctlError(
            f"{url} did not answer JSON; is it a simulator control server?"
        ) from None


def run_simctl(args: argparse.Namespace) -> int:
    """``pm simctl``: talk to a running ``pm sim``. Returns the exit code."""
    base = str(args.control)
    try:
        if args.simctl_command == "list":
            printers = _call(base, "GET", "/printers")
            print(f"{'PORT':>6}  {'NAME':<16} {'STATE':<11} {'RECEIPTS':>8}")
            for p in printers:
                print(f"{p['port']:>6}  {p['name']:<16} {p['state']:<11} {p['receipts']:>8}")
        elif args.simctl_command == "state":
            if args.new_state not in PRINTER_STATES:
                raise _SimctlError(
                    f"STATE must be one of {', '.join(PRINTER_STATES)}, not {args.new_state!r}"
                )
            p = _call(
                base, "POST", f"/printers/{args.printer_port}/state", {"state": args.new_state}
            )
            print(f"{p['name']} (port {p['port']}) is now {p['state']}")
        elif args.simctl_command == "receipts":
            receipts = _call(base, "GET", f"/printers/{args.printer_port}/receipts")
            if not receipts:
                print(f"port {args.printer_port}: no receipts")
            for r in receipts:
                when = time.strftime("%H:%M:%S", time.localtime(r["finished_at"]))
                ending = "cut" if r["cut"] else "not cut"
                print(f"--- receipt {r['index']} at {when}, {r['bytes']} bytes, {ending} ---")
                print(r["text"])
        elif args.simctl_command == "clear":
            result = _call(base, "DELETE", f"/printers/{args.printer_port}/receipts")
            print(f"cleared {result['cleared']} receipt(s)")
        else:
            raise _SimctlError(f"unknown command {args.simctl_command!r}")
    except _SimctlError as exc:
        print(f"pm simctl: {exc}", file=sys.stderr)
        return 1
    return 0
