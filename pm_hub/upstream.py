"""A branch hub's link to its company hub (``--upstream URL --upstream-token T``).

The branch never waits for it: changes go into the outbox (``pm_hub.store.outbox``)
with the write that makes them, and this link delivers them when it can:

1. connect to ``/branch`` with the branch token; ``branch:hello`` says which outbox
   stream this is and learns the last sequence number the company hub applied
   (entries up to it are deleted here: they arrived, even if an ack was lost);
2. send a snapshot (printers, agents, alerts not cleared, unfinished and recent
   jobs) so the company's mirror is right whatever happened before;
3. send the outbox in order, in batches; each batch is acknowledged with the last
   sequence number applied, and what was acknowledged is deleted;
4. when idle, a heartbeat every ``heartbeat_interval`` seconds (how much is still
   owed, and which printers were seen).

A lost link or a restart of either side starts again at 1; the company hub skips
what it already applied, so nothing is applied twice. The link also answers the
company hub's ``ops:request``: operator actions on this branch's printers and jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import socketio

from pm_core.database import Database
from pm_core.protocol import BranchEvent, ErrorCode, Namespace, OpsEvent, ProtocolError
from pm_core.protocol.validation import get_str, require_object
from pm_core.tls import client_context, socketio_options
from pm_hub.auth import ROLES, Principal
from pm_hub.config import HubSettings
from pm_hub.handlers import guarded
from pm_hub.live_state import LiveState
from pm_hub.metrics import HubMetrics
from pm_hub.operator_actions import OperatorActions, hub_version
from pm_hub.store import outbox

log = logging.getLogger(__name__)

NS = Namespace.BRANCH
#: Records per snapshot message.
SNAPSHOT_CHUNK = 100
#: Seconds to wait for the company hub to acknowledge a message.
CALL_TIMEOUT = 30.0
#: Seconds between a change being announced and reading the outbox for it.
WAKE_DELAY = 0.05


class UpstreamError(Exception):
    """The company hub answered with an error, or the link broke mid-request."""


@dataclass
class UpstreamStatus:
    """How the link to the company hub is doing, as ``whoami`` and ``/healthz`` say it."""

    url: str
    #: ``connecting``, ``connected``, ``refused`` or ``offline``.
    state: str = "connecting"
    #: Why, in words.
    message: str = ""

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "message": self.message}


class UpstreamLink:
    def __init__(
        self,
        settings: HubSettings,
        *,
        status: UpstreamStatus,
        db: Database,
        live: LiveState,
        metrics: HubMetrics,
        operations: OperatorActions,
        trim_interval: float = 10.0,
    ) -> None:
        assert settings.upstream_url
        self.status = status
        self.db = db
        self.live = live
        self.metrics = metrics
        self.operations = operations
        self.url = settings.upstream_url.rstrip("/")
        self.token = settings.upstream_token or ""
        #: TLS to the company hub (https://): the system's CAs, or upstream_ca_file.
        self.tls = (
            client_context(settings.upstream_ca_file) if self.url.startswith("https://") else None
        )
        self.batch_size = max(1, settings.upstream_batch_size)
        self.outbox_limit = max(100, settings.upstream_outbox_limit)
        self.heartbeat_interval = settings.upstream_heartbeat_s
        self.max_delay = settings.upstream_retry_max_s
        self.trim_interval = trim_interval
        self.stream_id = ""
        #: The last sequence number the company hub acknowledged.
        self.acked_seq = 0
        #: Entries the company hub acknowledged since start (not repeats).
        self.delivered = 0
        self.connected_at: float | None = None
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sio: socketio.AsyncClient | None = None
        self._seen_sent: dict[int, float] = {}
        self._refused: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.stream_id = await self.db.write(outbox.stream_id)
        self._tasks = [
            asyncio.create_task(self._run(), name="upstream-link"),
            asyncio.create_task(self._trim_loop(), name="upstream-trim"),
        ]
        log.info("syncing to the company hub at %s (outbox stream %s)", self.url, self.stream_id)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        sio, self._sio = self._sio, None
        if sio is not None:
            await _quietly_disconnect(sio)

    def poke(self) -> None:
        """Something was written to the outbox: send it without waiting for the poll."""
        self._wake.set()

    # -- the link -------------------------------------------------------------------------

    def _client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(
            reconnection=False,
            logger=False,
            engineio_logger=False,
            # The process stops on SIGINT/SIGTERM itself (pm_core.event_loop); the
            # client's own SIGINT handler would stop the event loop under it.
            handle_sigint=False,
            **socketio_options(self.url, self.tls),
        )

        @sio.on("connect_error", namespace=NS)
        async def connect_error(data: Any = None) -> None:
            if isinstance(data, dict):
                inner: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
                if data.get("message") == ErrorCode.AUTH_FAILED:
                    self._refused = str(inner.get("message") or "token refused")

        @sio.on("disconnect", namespace=NS)
        async def disconnect(reason: Any = None) -> None:
            self._lost.set()

        handler = guarded(
            BranchEvent.OPS_REQUEST,
            lambda _sid, payload: self._ops_request(payload),
        )

        async def on_request(data: Any = None) -> dict[str, Any]:
            result: dict[str, Any] = await handler("upstream", data)
            return result

        sio.on(BranchEvent.OPS_REQUEST, on_request, namespace=NS)
        return sio

    async def _run(self) -> None:
        delay = min(1.0, self.max_delay)
        while True:
            self._refused = None
            self._lost.clear()
            sio = self._client()
            try:
                await sio.connect(
                    self.url,
                    namespaces=[NS],
                    auth={"token": self.token},
                    transports=["websocket"],
                    wait_timeout=10,
                )
            except asyncio.CancelledError:
                await _quietly_disconnect(sio)  # stopped while connecting: close its session
                raise
            except (socketio.exceptions.ConnectionError, ValueError, OSError) as exc:
                await _quietly_disconnect(sio)
                if self._refused is not None:
                    self._set(
                        "refused", f"the company hub refused the branch token: {self._refused}"
                    )
                    log.error("%s; retrying in %.0f s", self.status.message, self.max_delay)
                    await asyncio.sleep(self.max_delay)
                    continue
                if self.status.state != "offline":
                    log.warning(
                        "company hub %s unreachable (%s); changes wait in the outbox", self.url, exc
                    )
                self._set("offline", f"cannot reach {self.url}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
                continue
            delay = min(1.0, self.max_delay)
            self._sio = sio
            try:
                await self._session(sio)
            except UpstreamError as exc:
                log.warning("link to the company hub broke: %s", exc)
            except Exception:
                log.exception("link to the company hub failed")
            finally:
                self._sio = None
                self.connected_at = None
                await _quietly_disconnect(sio)
            self._set("offline", "lost the company hub")
            await asyncio.sleep(delay)

    def _set(self, state: str, message: str) -> None:
        self.status.state, self.status.message = state, message

    async def _call(
        self, sio: socketio.AsyncClient, event: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Send and wait for the company hub's ack; UpstreamError if the link breaks or
        the answer is an error."""
        if self._lost.is_set():
            raise UpstreamError("disconnected")
        self.metrics.count_out(NS, event)
        call = asyncio.ensure_future(sio.call(event, payload, namespace=NS, timeout=CALL_TIMEOUT))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({call, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if call not in done:
            call.cancel()
            raise UpstreamError(f"disconnected during {event}")
        try:
            ack = call.result()
        except Exception as exc:
            raise UpstreamError(f"{event}: {exc!r}") from None
        if not isinstance(ack, dict) or not ack.get("ok"):
            error = ack.get("error") if isinstance(ack, dict) else None
            raise UpstreamError(f"{event} refused: {error}")
        return ack

    async def _session(self, sio: socketio.AsyncClient) -> None:
        hello = await self._call(
            sio,
            BranchEvent.HELLO,
            {"stream_id": self.stream_id, "name": self.live.branch_name, "version": hub_version()},
        )
        last_seq = int(hello.get("last_seq") or 0)
        await self.db.write(lambda d: outbox.delete_through(d, last_seq))
        self.acked_seq = last_seq
        self.connected_at = time.time()
        self._seen_sent = {}
        log.info(
            "connected to the company hub as branch %s; it has applied up to %d",
            hello.get("branch_id"),
            last_seq,
        )
        await self._send_snapshot(sio)
        self._set("connected", f"connected to {self.url}")
        heartbeat_at = 0.0
        while not self._lost.is_set():
            self._wake.clear()
            batch = await self.db.read(self._batch_reader(self.acked_seq))
            if batch["entries"]:
                await self._send_batch(sio, batch)
                continue
            now = time.monotonic()
            if now - heartbeat_at >= self.heartbeat_interval:
                await self._heartbeat(sio)
                heartbeat_at = now
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                continue
            # Woken by a broadcast: let the writer commit it (printer status is written
            # behind) and let a burst gather into one batch.
            await asyncio.sleep(WAKE_DELAY)

    def _batch_reader(self, after: int) -> Any:
        size = self.batch_size
        return lambda d: outbox.read_batch(d, after, size)

    async def _send_snapshot(self, sio: socketio.AsyncClient) -> None:
        snap = await self.db.read(outbox.read_snapshot)
        for kind, key in (
            ("agent", "agents"),
            ("printer", "printers"),
            ("alert", "alerts"),
            ("job", "jobs"),
        ):
            records = snap[key]
            chunks = [
                records[i : i + SNAPSHOT_CHUNK] for i in range(0, len(records), SNAPSHOT_CHUNK)
            ]
            chunks = chunks or [[]]
            for i, chunk in enumerate(chunks):
                await self._call(
                    sio,
                    BranchEvent.SNAPSHOT,
                    {
                        "seq": snap["seq"],
                        "kind": kind,
                        "records": chunk,
                        "last": i == len(chunks) - 1,
                        "complete": snap["complete"],
                    },
                )
        log.info(
            "snapshot sent: %d printers, %d jobs, %d alerts, %d agents (outbox at %d)",
            len(snap["printers"]),
            len(snap["jobs"]),
            len(snap["alerts"]),
            len(snap["agents"]),
            snap["seq"],
        )

    async def _send_batch(self, sio: socketio.AsyncClient, batch: dict[str, Any]) -> None:
        entries = [
            {"seq": e["seq"], "kind": e["kind"], "id": e["id"], "record": e["record"]}
            for e in batch["entries"]
        ]
        oldest_at = batch["oldest_at"]
        ack = await self._call(
            sio,
            BranchEvent.CHANGES,
            {
                "entries": entries,
                "remaining": batch["remaining"],
                "oldest_age_s": max(0.0, time.time() - oldest_at) if oldest_at else 0.0,
            },
        )
        acked = ack.get("acked_seq")
        if not isinstance(acked, int) or acked < entries[0]["seq"] - 1:
            raise UpstreamError(f"malformed acknowledgement {ack!r}")
        await self.db.write(lambda d: outbox.delete_through(d, acked))
        self.delivered += int(ack.get("applied") or 0)
        self.acked_seq = max(self.acked_seq, acked)

    async def _heartbeat(self, sio: socketio.AsyncClient) -> None:
        after = self.acked_seq
        count, oldest = await self.db.read(lambda d: outbox.pending(d, after))
        seen = {}
        for printer_id, row in self.live.printers.items():
            last_seen = row.get("last_seen")
            if last_seen and self._seen_sent.get(printer_id) != last_seen:
                seen[str(printer_id)] = last_seen
                self._seen_sent[printer_id] = last_seen
        await self._call(
            sio,
            BranchEvent.HEARTBEAT,
            {
                "pending": count,
                "oldest_age_s": max(0.0, time.time() - oldest) if oldest else 0.0,
                "seen": seen,
            },
        )

    async def _trim_loop(self) -> None:
        while True:
            await asyncio.sleep(self.trim_interval)
            try:
                dropped = await self.db.write(lambda d: outbox.trim(d, self.outbox_limit))
            except Exception:
                log.exception("trimming the upstream outbox failed")
                continue
            if dropped:
                log.warning(
                    "upstream outbox over %d entries: dropped the %d oldest (the snapshot "
                    "on reconnect still brings the company hub up to date)",
                    self.outbox_limit,
                    dropped,
                )

    # -- requests from the company hub -------------------------------------------------------

    async def _ops_request(self, payload: Any) -> dict[str, Any]:
        data = require_object(payload, allowed=("event", "payload", "sub", "role"))
        event = get_str(data, "event", required=True, max_length=40)
        sub = get_str(data, "sub", required=True, max_length=100)
        role = get_str(data, "role", required=True, choices=[r for r in ROLES if r != "branch"])
        assert event is not None and sub is not None and role is not None
        principal = Principal(
            sub=f"company:{sub}", role=role, company_id=self.live.company_id, branch_ids=None
        )
        request = data.get("payload")
        if event == OpsEvent.PRINTER_TEST:
            sio = self._sio

            async def send_result(result: dict[str, Any]) -> None:
                if sio is not None:
                    try:
                        self.metrics.count_out(NS, BranchEvent.TEST_COMPLETED)
                        await sio.emit(BranchEvent.TEST_COMPLETED, result, namespace=NS)
                    except Exception:
                        log.warning("could not send a test print result upstream")

            ack, _pending = await self.operations.test_printer(
                principal, request, on_result=send_result
            )
            return ack
        operation = self._operations().get(event)
        if operation is None:
            raise ProtocolError(ErrorCode.INVALID_PAYLOAD, f"{event} cannot be forwarded")
        log.info("company hub asks %s for %s", event, sub)
        result: dict[str, Any] = await operation(principal, request)
        return result

    def _operations(self) -> dict[str, Any]:
        ops = self.operations
        return {
            OpsEvent.PRINTER_GET: ops.get_printer,
            OpsEvent.PRINTER_CONFIGURE: ops.configure_printer,
            OpsEvent.JOB_SUBMIT: ops.submit_job,
            OpsEvent.JOB_GET: ops.get_job,
            OpsEvent.JOB_CANCEL: ops.cancel_job,
            OpsEvent.JOB_REPRINT: ops.reprint_job,
            OpsEvent.STATION_CONFIGURE: ops.configure_station,
            OpsEvent.ALERT_ACK: ops.ack_alert,
        }


async def _quietly_disconnect(sio: socketio.AsyncClient) -> None:
    try:
        await sio.disconnect()
    except Exception:
        pass
