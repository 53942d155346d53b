"""A simulated ESC/POS network printer, for the demo and for every test.

:class:`SimulatedPrinter` is an asyncio TCP server on 127.0.0.1 that behaves
like a kitchen printer on port 9100: it decodes what it receives with
:class:`~pm_agent.escpos_stream.EscPosDecoder`, turns it into
:class:`~pm_agent.sim.receipt.Receipt` objects (a cut ends a receipt), answers
``DLE EOT 1..4`` real-time status queries and ``GS I n`` identity queries, and can
be put into the states of a real printer (offline, paper low/out, cover open, error).

With ``language="star_raster"`` or ``"star_line"`` it is a Star printer instead: it
reads Star Line text and Star raster pages (:class:`~pm_agent.star_stream.StarDecoder`;
a raster page lands in :attr:`Receipt.images`), answers ``ESC ACK SOH`` with its ASB
status (:func:`~pm_agent.star_status.encode_asb`) and ignores ``DLE EOT`` and ``GS I``,
as a Star printer in Star mode does.

With ``language="zpl"`` it is a Zebra label printer: each ``^XA ... ^XZ`` label is
a receipt (its ZPL as the text), ``~HS`` is answered at once with the host status of
its state (:func:`~pm_agent.zpl_status.encode_host_status`: paper out, head up for
cover open, ribbon out for error). With ``language="raw"`` it takes any bytes and
answers nothing; what a connection sent is one receipt when it closes. In both it
ignores ``DLE EOT`` and ``GS I``, and :attr:`SimulatedPrinter.received` keeps every
byte it was sent (in every language), so a test can tell what it was asked.

Status answers are sent in stream order: a query is answered only after every
receipt that came before it on the same connection has been printed, so
"send the job, then DLE EOT" works as a barrier. While the printer cannot
print (paper out, cover open, error) it still answers status queries, and the
receipts it receives wait in its buffer until the state returns to online or
paper_low. Offline means powered off: the port refuses connections, open
connections are dropped and whatever was not printed yet is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pm_agent.escpos_events import (
    Cut,
    Drawer,
    Event,
    IdentityRequest,
    StatusRequest,
)
from pm_agent.escpos_status import STATUSES, encode_state
from pm_agent.escpos_stream import (
    EscPosDecoder,
)
from pm_agent.sim.label_stream import Label, LabelStream, StatusQuery
from pm_agent.sim.receipt import Receipt, ReceiptBuilder
from pm_agent.star_status import encode_asb
from pm_agent.star_stream import RasterImage, StarDecoder, StarStatusRequest
from pm_agent.zpl_status import encode_host_status

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 9100
#: Every state a simulated printer can be put in.
PRINTER_STATES = STATUSES
#: States in which the printer prints what it receives.
PRINTING_STATES = frozenset({"online", "paper_low"})

#: ``GS I 1/2/3`` answers: model id, type id (bit 1: autocutter), version id.
MODEL_ID = 0x20
TYPE_ID = 0x02
VERSION_ID = 0x10
FIRMWARE = "1.0-SIM"
MAKER = "PRINTERMASTER"
DEFAULT_MODEL = "PM-SIM80"
READ_SIZE = 65536
#: The command languages a simulated printer can speak.
SIM_LANGUAGES = ("escpos", "star_raster", "star_line", "zpl", "raw")
#: Bytes :attr:`SimulatedPrinter.received` keeps (the newest), so a long demo does
#: not grow without end.
RECEIVED_LIMIT = 16 * 1024 * 1024


@dataclass
class _PrintJob:
    text: str
    raw: bytes
    cut: bool
    done: asyncio.Future[None]
    images: list[Any]


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter, profile: str | None, language: str) -> None:
        self.writer = writer
        self.language = language
        self.decoder = EscPosDecoder(profile)
        self.star = StarDecoder() if language.startswith("star") else None
        self.labels = LabelStream() if language == "zpl" else None
        self.raw = bytearray()  # a raw printer's bytes on this connection
        self.builder = ReceiptBuilder()
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
        language: str = "escpos",
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("simulated printers listen on loopback addresses (127.x.y.z) only")
        if language not in SIM_LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(SIM_LANGUAGES)}")
        self.language = language
        self.name = name
        self.port = port
        self.host = host
        # A fixed port is part of the serial: two simulators on one box (each with a
        # "Kitchen-1") are two printers, not one printer the hub would merge.
        seed = f"{name}:{port}" if port else name
        self.serial = serial or f"SIM{zlib.crc32(seed.encode()):08X}"
        self.model = model or DEFAULT_MODEL
        self.status_supported = status_supported
        self.print_delay = print_delay
        self.profile = profile
        self.state = "online"
        self.receipts: list[Receipt] = []
        self.status_queries = 0
        self.bytes_received = 0
        #: Every byte received, on every connection, in the order it came (the newest
        #: :data:`RECEIVED_LIMIT` bytes).
        self.received = bytearray()
        #: Cash drawer kicks received (the pin of each) and cuts (with or without
        #: anything printed before them).
        self.drawer_kicks: list[int] = []
        self.cuts = 0
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
        self.received.clear()
        self.drawer_kicks.clear()
        self.cuts = 0

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
                    Receipt(
                        text=job.text,
                        raw=job.raw,
                        finished_at=time.time(),
                        cut=job.cut,
                        images=job.images,
                    )
                )
                if not job.done.done():
                    job.done.set_result(None)
                cond.notify_all()

    async def _finish_receipt(self, conn: _Connection, *, cut: bool) -> None:
        builder = conn.builder
        conn.builder = ReceiptBuilder()
        if not builder.has_content:
            return
        await self._queue_paper(
            conn, builder.text(), bytes(builder.raw), cut=cut, images=list(builder.images)
        )

    async def _queue_paper(
        self,
        conn: _Connection,
        text: str,
        raw: bytes,
        *,
        cut: bool = False,
        images: list[Any] | None = None,
    ) -> None:
        """One receipt (or label) to the mechanism, printed when the state allows."""
        job = _PrintJob(
            text=text,
            raw=raw,
            cut=cut,
            done=asyncio.get_running_loop().create_future(),
            images=images or [],
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
        conn = _Connection(writer, self.profile, self.language)
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
                self._record(data)
                if conn.labels is not None:
                    await self._process_labels(conn, conn.labels.feed(data))
                elif conn.language == "raw":
                    conn.raw += data
                elif conn.star is not None:
                    await self._process_star(conn, conn.star.feed(data))
                else:
                    await self._process(conn, conn.decoder.feed_raw(data))
            if conn.labels is not None:
                await self._process_labels(conn, conn.labels.flush())
            elif conn.star is not None:
                await self._process_star(conn, conn.star.flush())
            elif conn.language != "raw":
                await self._process(conn, conn.decoder.flush_raw())
            if not conn.dropped:
                if conn.raw:
                    await self._queue_paper(conn, conn.raw.decode("latin-1"), bytes(conn.raw))
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

    def _record(self, data: bytes) -> None:
        self.bytes_received += len(data)
        self.received += data
        if len(self.received) > RECEIVED_LIMIT:
            del self.received[: len(self.received) - RECEIVED_LIMIT]

    async def _process_labels(self, conn: _Connection, events: Sequence[object]) -> None:
        for event in events:
            if conn.dropped:
                return
            if isinstance(event, StatusQuery):
                # A tilde command: answered at once, not after the labels before it.
                self.status_queries += 1
                if self.status_supported:
                    conn.writer.write(encode_host_status(self.state))
                    await conn.writer.drain()
            elif isinstance(event, Label):
                await self._queue_paper(conn, event.text, event.zpl, cut=event.ended)

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
                self.cuts += 1
                conn.builder.add(event, raw)
                await self._finish_receipt(conn, cut=True)
            elif isinstance(event, Drawer):
                self.drawer_kicks.append(event.pin)
                conn.builder.add(event, raw)
            else:
                conn.builder.add(event, raw)

    async def _process_star(self, conn: _Connection, pairs: Sequence[tuple[object, bytes]]) -> None:
        for event, raw in pairs:
            if conn.dropped:
                return
            if isinstance(event, StarStatusRequest):
                self.status_queries += 1
                if self.status_supported:
                    await self._barrier(conn)
                    conn.writer.write(encode_asb(self.state))
                    await conn.writer.drain()
            elif isinstance(event, RasterImage):
                conn.builder.add_raster(event.image, raw)
            elif isinstance(event, Cut):
                conn.builder.add(event, raw)
                await self._finish_receipt(conn, cut=True)
            else:
                conn.builder.add(event, raw)  # type: ignore[arg-type]

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
            "drawer_kicks": len(self.drawer_kicks),
            "cuts": self.cuts,
            "serial": self.serial,
            "model": self.model,
            "language": self.language,
        }
