"""The agent: connects to the hub on ``/agent``, registers its printers, takes jobs
into the spool, prints them, and reports back through the spool's outbox.

It reconnects with backoff whenever the hub goes away and then registers its
printers again; the hub answers by redelivering whatever is unfinished.

A restarted agent does not wait for the hub to print what is already in its
spool: each printer takes up the hub printer id it last had (kept in the spool
by identity) at once, and the results wait in the outbox until the hub is back.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import secrets
import time
from pathlib import Path
from typing import Any

import socketio

from pm_agent.discovery import Discovery, DiscoveryConfig, FoundPrinter
from pm_agent.discovery.arp import ARP_TABLE
from pm_agent.identity_cache import FILE_NAME as IDENTITY_FILE
from pm_agent.identity_cache import IdentityCache
from pm_agent.link_health import LinkHealth
from pm_agent.open_port import open_port
from pm_agent.printer_port import PrinterPort
from pm_agent.printer_uri import PrinterSpec, parse_printer_spec
from pm_agent.printer_worker import PrinterWorker
from pm_agent.spool import JobSpool
from pm_agent.task_control import cancel_tasks
from pm_core.logs import correlation, wire_correlation_id
from pm_core.protocol import AgentEvent, ErrorCode, HubEvent, Namespace, error_ack, ok_ack

log = logging.getLogger(__name__)

NS = Namespace.AGENT
#: What makes a printer registration stale: registered again when one changes.
REGISTRATION_KEYS = ("identity", "address", "capabilities", "status_supported", "model")
VERSION = "0.1.0"
#: Finished jobs are remembered this long (redeliveries are answered, not printed).
SPOOL_RETENTION_S = 7 * 86400.0
#: How often the spool forgets finished jobs older than the retention.
PRUNE_INTERVAL_S = 3600.0


class AgentAuthError(Exception):
    """The hub refused this agent's license key or device id."""


def load_device_id(data_dir: Path) -> str:
    """A stable id for this machine's agent, created once in the data dir."""
    path = data_dir / "agent-device-id"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = f"{platform.node() or 'agent'}-{secrets.token_hex(6)}"
    path.write_text(value + "\n")
    return value


class Agent:
    def __init__(
        self,
        *,
        hub_url: str,
        license_key: str,
        data_dir: Path,
        printers: list[PrinterSpec],
        device_id: str | None = None,
        name: str | None = None,
        poll_interval: float = 2.0,
        ping_interval: float = 15.0,
        ping_timeout: float = 5.0,
        report_interval: float = 300.0,
        spool_synchronous: str = "FULL",
        spool_retention: float = SPOOL_RETENTION_S,
        prune_interval: float = PRUNE_INTERVAL_S,
        ports: dict[str, PrinterPort] | None = None,
        discovery: DiscoveryConfig | None = None,
        identify_wait: float = 4.0,
        arp_table: Path | None = None,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.license_key = license_key
        self.data_dir = data_dir
        self.device_id = device_id or load_device_id(data_dir)
        self.name = name or platform.node() or "agent"
        self.poll_interval = poll_interval
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.report_interval = report_interval
        self.spool = JobSpool(
            data_dir / "agent-spool.sqlite",
            synchronous=spool_synchronous,
            retention=spool_retention,
        )
        self.prune_interval = prune_interval
        self.health = LinkHealth()
        self.sio = socketio.AsyncClient(
            reconnection=True,
            reconnection_attempts=0,
            reconnection_delay=0.5,
            reconnection_delay_max=10,
            randomization_factor=0.3,
            logger=False,
            engineio_logger=False,
        )
        self.workers: list[PrinterWorker] = []
        self.by_printer_id: dict[int, PrinterWorker] = {}
        #: Printer identity -> the hub printer id it had (from the spool, kept current).
        self._known_printer_ids: dict[str, int] = {}
        self._specs = printers
        self._ports = ports or {}
        self._outbox_wake = asyncio.Event()
        self._registered = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._last_connect_error: Any = None
        self._stopping = False
        #: Printers found by ``discovery`` are added while the agent runs.
        self.discovery_config = discovery
        self.discovery: Discovery | None = None
        #: How long registration waits for the printers' first answer (identity).
        self.identify_wait = identify_wait
        self._identities = IdentityCache(data_dir / IDENTITY_FILE)
        self._register_lock = asyncio.Lock()
        self._usb_backend = discovery.usb_backend if discovery is not None else None
        #: Where network printers' MACs are looked up (tests give a file of their own).
        self.arp_table = arp_table or (discovery.arp_table if discovery else ARP_TABLE)
        self._setup_handlers()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return NS in self.sio.namespaces

    async def start(self) -> None:
        """Open the spool, start the printer workers, connect (retrying until it works)."""
        await asyncio.to_thread(self.spool.open)
        recovered = await self.spool.recover_interrupted()
        for job in recovered:
            log.warning("job %s was interrupted while printing; marked failed", job.job_id)
        await asyncio.to_thread(self._identities.load)
        self._known_printer_ids = await self.spool.known_printer_ids()
        for spec in self._specs:
            self._add_worker(spec, self._ports.get(spec.uri))
        self._tasks = [
            asyncio.create_task(self._outbox_loop(), name="agent:outbox"),
            asyncio.create_task(self._ping_loop(), name="agent:ping"),
            asyncio.create_task(self._report_loop(), name="agent:report"),
            asyncio.create_task(self._expiry_loop(), name="agent:expiry"),
            asyncio.create_task(self._prune_loop(), name="agent:prune"),
        ]
        config = self.discovery_config
        if config is not None and config.enabled:
            self.discovery = Discovery(
                config.sources(serial_in_use=self._serial_paths, usb_in_use=self._usb_ids),
                interval=config.interval,
                on_found=self.adopt_found,
            )
            self.discovery.start()
        await self._connect_first()

    async def stop(self) -> None:
        self._stopping = True
        if self.discovery is not None:
            await self.discovery.stop()
        await cancel_tasks(self._tasks)  # re-cancels: wait_for may swallow one on 3.11
        try:
            await self.sio.disconnect()
        except Exception:
            pass
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        await asyncio.to_thread(self.spool.close)

    async def _reconnect_later(self) -> None:
        await asyncio.sleep(0.5)
        # python-socketio retries by itself when the transport dropped; only step
        # in when it gave up (a clean close from the hub).
        if self.connected or self._stopping or getattr(self.sio, "_reconnect_task", None):
            return
        try:
            await self._connect_first()
        except AgentAuthError as exc:
            log.error("%s; not retrying", exc)

    async def _connect_first(self) -> None:
        delay = 0.5
        while True:
            if self._stopping:
                return
            try:
                await self.sio.connect(
                    self.hub_url,
                    namespaces=[NS],
                    auth={
                        "license_key": self.license_key,
                        "device_id": self.device_id,
                        "name": self.name,
                        "version": VERSION,
                        "hostname": platform.node(),
                    },
                    transports=["websocket"],
                    wait_timeout=10,
                )
                return
            except ValueError as exc:
                # "not in a disconnected state": the old transport is still closing,
                # or python-socketio's own reconnection is under way.
                if getattr(self.sio, "_reconnect_task", None) or self.connected:
                    return
                log.debug("connect deferred: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)
            except socketio.exceptions.ConnectionError as exc:
                error = self._last_connect_error
                if isinstance(error, dict) and (
                    error.get("message") == ErrorCode.AUTH_FAILED
                    or (error.get("data") or {}).get("code") == ErrorCode.AUTH_FAILED
                ):
                    detail = (error.get("data") or {}).get("message", "refused")
                    raise AgentAuthError(f"hub refused this agent: {detail}") from exc
                log.warning(
                    "cannot reach hub at %s (%s); retrying in %.1fs", self.hub_url, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

    # -- socket events -----------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _setup_handlers(self) -> None:
        sio = self.sio

        @sio.on("connect", namespace=NS)
        async def on_connect() -> None:
            if self.health.ever_connected:
                self.health.reconnects += 1
            self.health.ever_connected = True
            self.health.connected_since = time.time()
            log.info("connected to hub %s", self.hub_url)
            self._spawn(self._after_connect())

        @sio.on("disconnect", namespace=NS)
        async def on_disconnect(reason: Any = None) -> None:
            self._registered.clear()
            self.health.connected_since = None
            if self._stopping:
                return
            log.warning("disconnected from hub (%s); reconnecting", reason)
            if reason == sio.reason.SERVER_DISCONNECT:
                # The hub closed us on purpose (shutdown, restart): python-socketio
                # does not retry those, so the agent does.
                self._spawn(self._reconnect_later())

        @sio.on("connect_error", namespace=NS)
        async def on_connect_error(data: Any = None) -> None:
            self._last_connect_error = data

        @sio.on(HubEvent.PRINT_JOB, namespace=NS)
        async def on_print_job(data: Any = None) -> dict[str, Any]:
            with correlation(wire_correlation_id(data)):
                return await self._accept_job(data)

        @sio.on(HubEvent.PRINTER_TEST, namespace=NS)
        async def on_printer_test(data: Any = None) -> dict[str, Any]:
            if not isinstance(data, dict) or not isinstance(data.get("correlation_id"), str):
                return error_ack(ErrorCode.INVALID_PAYLOAD, "correlation_id is required")
            worker = self.by_printer_id.get(data.get("printer_id"))  # type: ignore[arg-type]
            if worker is None:
                return error_ack(ErrorCode.NOT_FOUND, "this agent has no such printer")
            with correlation(wire_correlation_id(data)):
                log.debug("test print on %s", worker.spec.name)
                self._spawn(self._run_test(worker, data["correlation_id"]))
            return ok_ack()

        @sio.on(HubEvent.JOB_CANCEL, namespace=NS)
        async def on_job_cancel(data: Any = None) -> dict[str, Any]:
            if not isinstance(data, dict) or not isinstance(data.get("job_id"), int):
                return error_ack(ErrorCode.INVALID_PAYLOAD, "job_id is required")
            with correlation(wire_correlation_id(data)):
                return await self._cancel_job(data)

        @sio.on(HubEvent.PRINTER_CONFIGURE, namespace=NS)
        async def on_printer_configure(data: Any = None) -> dict[str, Any]:
            return await self._configure_printer(data)

        @sio.on(HubEvent.JOB_RELEASE, namespace=NS)
        async def on_job_release(data: Any = None) -> dict[str, Any]:
            if not isinstance(data, dict) or not isinstance(data.get("job_id"), int):
                return error_ack(ErrorCode.INVALID_PAYLOAD, "job_id is required")
            with correlation(wire_correlation_id(data)):
                released = await self.spool.release(data["job_id"])
                current = await self.spool.get(data["job_id"])
                if released:
                    log.info("job %s handed back to the hub", data["job_id"])
            return ok_ack(released=released, status=current.state if current else "unknown")

    async def _configure_printer(self, data: Any) -> dict[str, Any]:
        """``printer:configure {printer_id, profile}`` from the hub: an operator chose
        the printer's capability profile (None: automatic again)."""
        if not isinstance(data, dict) or not isinstance(data.get("printer_id"), int):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "printer_id is required")
        profile = data.get("profile")
        if profile is not None and not isinstance(profile, str):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "profile must be a name or null")
        worker = self.by_printer_id.get(data["printer_id"])
        if worker is None:
            return error_ack(ErrorCode.NOT_FOUND, "this agent has no such printer")
        try:
            changed = worker.use_profile(profile)
        except ValueError as exc:
            return error_ack(ErrorCode.INVALID_PAYLOAD, str(exc))
        if changed:
            self._spawn(self._printer_changed(worker))
        return ok_ack(capabilities=worker.capabilities.to_json())

    async def _cancel_job(self, data: dict[str, Any]) -> dict[str, Any]:
        """``job:cancel``: only a job that has not started printing is cancelled."""
        job = await self.spool.finish(
            data["job_id"],
            "cancelled",
            error_code="cancelled",
            error_message=str(data.get("reason") or "cancelled by an operator")[:300],
            only_from=("pending",),
        )
        if job is not None:
            self._outbox_wake.set()
            log.info("job %s cancelled before printing", data["job_id"])
            return ok_ack(cancelled=True, status="cancelled")
        current = await self.spool.get(data["job_id"])
        return ok_ack(cancelled=False, status=current.state if current else "unknown")

    async def _after_connect(self) -> None:
        await self._flush_outbox()
        await self._register_printers()

    async def _register_printers(self) -> None:
        await self._wait_first_contact(self.workers)
        for worker in list(self.workers):
            if not self.connected:
                return
            await self._register(worker)
        self._registered.set()

    async def _wait_first_contact(self, workers: list[PrinterWorker]) -> None:
        """Give each printer a moment to answer (and tell its serial) so it is
        registered under its real identity, not first under its address."""
        waits = [w.first_contact.wait() for w in workers if not w.first_contact.is_set()]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), self.identify_wait)
            except TimeoutError:
                pass

    async def _register(self, worker: PrinterWorker) -> None:
        """``printer:discovered`` for one printer (again when its identity, address
        or capabilities changed, also while the registration was under way)."""
        async with self._register_lock:
            for _ in range(3):
                if not self.connected:
                    return
                description = worker.describe()
                if not await self._register_once(worker, description):
                    return
                now = worker.describe()
                if all(now.get(k) == description.get(k) for k in REGISTRATION_KEYS):
                    return

    async def _register_once(self, worker: PrinterWorker, description: dict[str, Any]) -> bool:
        try:
            ack = await self.sio.call(
                AgentEvent.PRINTER_DISCOVERED, description, namespace=NS, timeout=10
            )
        except Exception as exc:
            log.warning("could not register %s: %s", worker.spec.name, exc)
            return False
        if not (isinstance(ack, dict) and ack.get("ok")):
            log.error("hub refused printer %s: %s", worker.spec.name, ack)
            return False
        printer_id = int(ack["printer_id"])
        old_id = worker.printer_id
        if old_id not in (None, printer_id) and self.by_printer_id.get(old_id) is worker:
            del self.by_printer_id[old_id]
        worker.printer_id = printer_id
        worker.registered = True
        self.by_printer_id[printer_id] = worker
        await self._take_operator_profile(worker, ack.get("printer"))
        if worker.previous_identity == description.get("previous_identity"):
            worker.previous_identity = None
        await self._remember_printer_id(str(description.get("identity")), printer_id)
        worker.wake()
        return True

    async def _remember_printer_id(self, identity: str, printer_id: int) -> None:
        """Keep the hub's id for this printer in the spool, for a restart without the hub."""
        if self._known_printer_ids.get(identity) == printer_id:
            return
        for other in [k for k, v in self._known_printer_ids.items() if v == printer_id]:
            del self._known_printer_ids[other]
        self._known_printer_ids[identity] = printer_id
        try:
            await self.spool.remember_printer_id(identity, printer_id)
        except Exception:
            log.exception("could not keep the hub id of printer %s", identity)

    def _resume_known_id(self, worker: PrinterWorker) -> None:
        """Before the hub has confirmed the printer: take up the id it had at the hub
        (from the spool), so its spooled jobs print while the hub is away."""
        printer_id = self._known_printer_ids.get(worker.identity)
        if printer_id is not None and self.by_printer_id.get(printer_id) not in (None, worker):
            printer_id = None  # another printer here has that id now
        old_id = worker.printer_id
        if printer_id == old_id:
            return
        if old_id is not None and self.by_printer_id.get(old_id) is worker:
            del self.by_printer_id[old_id]
        worker.printer_id = printer_id
        if printer_id is not None:
            self.by_printer_id[printer_id] = worker
            log.info(
                "printer %s resumes its spooled jobs as hub printer %s",
                worker.spec.name,
                printer_id,
            )
            worker.wake()

    async def _take_operator_profile(self, worker: PrinterWorker, record: Any) -> None:
        """The hub's record of the printer carries the profile an operator chose (set
        while this agent was away, or before it restarted): use it. A change of the
        capabilities makes :meth:`_register` report the printer again."""
        if not isinstance(record, dict) or "profile_override" not in record:
            return
        profile = record["profile_override"]
        if profile == worker.profile_override:
            return
        try:
            worker.use_profile(profile if isinstance(profile, str) else None)
        except ValueError as exc:
            log.warning("profile for %s from the hub not used: %s", worker.spec.name, exc)
            return
        log.info("printer %s: profile %s chosen by an operator", worker.spec.name, profile)
        await self._remember(worker)

    # -- printers ----------------------------------------------------------------------

    def _add_worker(
        self,
        spec: PrinterSpec,
        port: PrinterPort | None = None,
        identity: str | None = None,
        *,
        mac: str | None = None,
        model: str | None = None,
    ) -> PrinterWorker:
        worker = PrinterWorker(
            spec,
            port or open_port(spec, usb_backend=self._usb_backend),
            self.spool,
            on_status=self._report_status,
            on_outbox=self._outbox_wake.set,
            poll_interval=self.poll_interval,
            on_change=self._printer_changed,
            identity=identity or self._identities.identity(spec.uri),
            mac=mac,
            arp_table=self.arp_table,
            model=model or self._identities.model(spec.uri),
            profile=self._identities.profile(spec.uri),
        )
        self.workers.append(worker)
        self._resume_known_id(worker)
        worker.start()
        return worker

    async def add_printer(
        self,
        spec: PrinterSpec,
        port: PrinterPort | None = None,
        identity: str | None = None,
        *,
        mac: str | None = None,
        model: str | None = None,
    ) -> PrinterWorker:
        """Drive one more printer (found by discovery, or added at run time); ``model``
        is what discovery learned of it (USB IEEE 1284 id, mDNS TXT record)."""
        worker = self._add_worker(spec, port, identity, mac=mac, model=model)
        log.info("added printer %s (%s)", spec.name, spec.uri)
        if self.connected:
            await self._wait_first_contact([worker])
            await self._register(worker)
        return worker

    async def _remember(self, worker: PrinterWorker) -> None:
        """Keep what the agent learned about the printer at this address (identity,
        model, serial) and the profile an operator chose, for the next start."""
        info = worker.identity_info
        entry = {
            "identity": worker.identity,
            "model": worker.model,
            "serial": info.serial if info else None,
            "profile": worker.profile_override,
        }
        if self._identities.remember(worker.spec.uri, entry):
            try:
                await asyncio.to_thread(self._identities.save)
            except OSError as exc:
                log.warning("could not save printer identities: %s", exc)

    async def _printer_changed(self, worker: PrinterWorker) -> None:
        await self._remember(worker)
        renamed = worker.previous_identity in (None, worker.spec.uri)
        if not worker.registered and (worker.printer_id is None or not renamed):
            # Not confirmed by the hub yet: the id follows the identity. (Learning the
            # serial of the printer known by its address keeps the hub record; another
            # serial at this address is another printer, with its own record and jobs.)
            self._resume_known_id(worker)
        if worker.printer_id is not None and self.connected:
            await self._register(worker)

    def _serial_paths(self) -> list[str]:
        return [str(w.spec.path) for w in self.workers if w.spec.scheme == "serial"]

    def _usb_ids(self) -> list[str]:
        return [str(w.spec.path) for w in self.workers if w.spec.scheme == "usb"]

    def worker_for(self, found: FoundPrinter) -> PrinterWorker | None:
        """The worker already driving a found printer: same address, or the same
        identity (serial, or MAC and port), wherever it is now."""
        for worker in self.workers:
            if worker.spec.uri == found.uri or worker.spec.uri in found.details.get("also_at", ()):
                return worker
            if found.kind == "usb" and worker.spec.scheme == "usb":
                spec = parse_printer_spec(found.uri)
                ours, theirs = worker.spec.options.get("serial"), spec.options.get("serial")
                if spec.path == worker.spec.path and (not ours or not theirs or ours == theirs):
                    return worker  # the same VID:PID, told apart by serial only when both have one
        if found.known_by_itself:
            for worker in self.workers:
                if worker.identity == found.identity:
                    return worker
        if found.mac:
            for worker in self.workers:
                if worker.mac == found.mac and worker.spec.port == found.port:
                    return worker  # told its serial to us, but not to the probe
        return None

    async def adopt_found(self, found: list[FoundPrinter]) -> None:
        """What discovery found: new printers get a worker; a known printer (same
        serial, or same MAC and port) that answers at a new address while its old
        one is unreachable is driven at the new one and keeps its hub record."""
        for printer in found:
            if not printer.confirmed or self._stopping:
                continue
            worker = self.worker_for(printer)
            if worker is None:
                try:
                    spec = printer.spec()
                except ValueError as exc:
                    log.warning("cannot use found printer %s: %s", printer.uri, exc)
                    continue
                await self.add_printer(
                    spec,
                    identity=printer.identity if printer.known_by_itself else None,
                    mac=printer.mac,
                    model=printer.model,
                )
            elif worker.spec.uri != printer.uri and worker.status == "offline":
                if worker.spec.scheme != "tcp" or not printer.uri.startswith("tcp://"):
                    continue
                new = printer.spec()
                moved = PrinterSpec(
                    uri=new.uri,
                    scheme=new.scheme,
                    name=worker.spec.name,
                    station=worker.spec.station,
                    host=new.host,
                    port=new.port,
                    options=worker.spec.options,
                )
                await worker.relocate(moved, open_port(moved))

    async def _report_status(self, worker: PrinterWorker) -> None:
        if worker.status != worker.last_logged_status:
            log.info("printer %s is %s", worker.spec.name, worker.status)
            worker.last_logged_status = worker.status
        if worker.printer_id is None or not self.connected:
            return
        try:
            await self.sio.emit(
                AgentEvent.PRINTER_STATUS,
                {"printer_id": worker.printer_id, "status": worker.status, "flags": worker.flags},
                namespace=NS,
            )
        except Exception as exc:
            log.debug("status report for %s not sent: %s", worker.spec.name, exc)
        if worker.ready:
            worker.wake()

    async def _accept_job(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("job"), dict):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "job is required")
        job = data["job"]
        job_id, printer_id = job.get("id"), job.get("printer_id")
        if not isinstance(job_id, int) or not isinstance(printer_id, int):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "job.id and job.printer_id are required")
        if not isinstance(job.get("document"), dict):
            return error_ack(ErrorCode.INVALID_PAYLOAD, "job.document is required")
        worker = self.by_printer_id.get(printer_id)
        if worker is None:
            return error_ack(ErrorCode.NOT_FOUND, f"this agent has no printer {printer_id}")
        cid = wire_correlation_id(data)
        if cid is not None:
            job = {**job, "correlation_id": cid}  # kept in the spool: later lines carry it
        spooled, new = await self.spool.accept(job)
        if new:
            log.debug("job %s accepted into the spool for %s", job_id, worker.spec.name)
            worker.wake(spooled.job_id)
        elif spooled.state in ("completed", "failed", "expired", "cancelled"):
            # Already done: answer with the outcome so the hub can close the job.
            log.debug("job %s delivered again; already %s", job_id, spooled.state)
            outcome = spooled.result_payload()
            outcome["ok"] = True  # the delivery is fine; "status" carries the outcome
            return outcome
        else:
            log.debug("job %s delivered again; already in the spool", job_id)
        return ok_ack(status="dispatched" if spooled.state == "pending" else spooled.state)

    async def _run_test(self, worker: PrinterWorker, correlation_id: str) -> None:
        try:
            result = await worker.print_test_page()
        except Exception as exc:
            log.exception("[%s] test print failed", correlation_id)
            result = {"ok": False, "error": {"code": "internal", "message": str(exc)}}
        result.update(correlation_id=correlation_id, printer_id=worker.printer_id)
        try:
            await self.sio.emit(AgentEvent.PRINTER_TEST_RESULT, result, namespace=NS)
        except Exception as exc:
            log.warning("[%s] test result not delivered: %s", correlation_id, exc)

    # -- outbox ------------------------------------------------------------------------

    async def _outbox_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._outbox_wake.wait(), 5.0)
            except TimeoutError:
                pass
            self._outbox_wake.clear()
            if self.connected:
                try:
                    await self._flush_outbox()
                except Exception:
                    log.exception("outbox flush failed")

    async def _flush_outbox(self) -> None:
        loop = asyncio.get_running_loop()
        while self.connected:
            items = await self.spool.outbox(limit=200)
            if not items:
                return
            futures: list[asyncio.Future[Any]] = []
            for item in items:
                fut: asyncio.Future[Any] = loop.create_future()

                def settle(*args: Any, f: asyncio.Future[Any] = fut) -> None:
                    if not f.done():
                        f.set_result(args[0] if args else None)

                await self.sio.emit(item.event, item.payload, namespace=NS, callback=settle)
                futures.append(fut)
            done, _ = await asyncio.wait(futures, timeout=15)
            delivered = []
            for item, fut in zip(items, futures, strict=True):
                if fut not in done:
                    continue
                ack = fut.result()
                if isinstance(ack, dict) and (
                    ack.get("ok")
                    or (ack.get("error") or {}).get("code")
                    in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.INVALID_PAYLOAD)
                ):
                    if not ack.get("ok"):
                        log.warning("hub refused %s %s: %s", item.event, item.payload, ack)
                    delivered.append(item.id)
            await self.spool.outbox_done(delivered)
            if len(delivered) < len(items):
                return  # the rest waits for the next round (timeout or disconnect)

    # -- health ------------------------------------------------------------------------

    async def ping(self) -> float | None:
        """One ``health:ping``; it carries the previous ping's outcome (its latency, or
        ``last_lost``) so the hub keeps one sample per ping. An ack later than
        ``ping_timeout`` counts as lost."""
        started = time.perf_counter()
        payload = {
            "t": time.time(),
            **self.health.previous_outcome(),
            "packet_loss": self.health.packet_loss,
        }
        try:
            await self.sio.call(
                AgentEvent.HEALTH_PING, payload, namespace=NS, timeout=self.ping_timeout
            )
        except Exception:
            self.health.record(None)
            return None
        latency = (time.perf_counter() - started) * 1000
        self.health.record(latency)
        return latency

    async def _ping_loop(self) -> None:
        # A ping goes out right after each (re)connect, so a dashboard has a figure at
        # once, then one every ping_interval.
        while True:
            if self.connected:
                await self.ping()
                await asyncio.sleep(self.ping_interval)
            else:
                await asyncio.sleep(min(self.ping_interval, 0.5))

    async def health_report(self) -> dict[str, Any]:
        """What ``desktop:health:report`` carries."""
        depths = await self.spool.pending_counts()
        report = self.health.summary()
        report.update(
            spool_depth=sum(depths.values()),
            printers=len(self.workers),
            printers_ready=sum(1 for w in self.workers if w.ready),
            version=VERSION,
            device_id=self.device_id,
        )
        return report

    async def _report_loop(self) -> None:
        # The first report follows soon after start (spool depth, uptime), then one per interval.
        delay = min(self.report_interval, 5.0)
        while True:
            await asyncio.sleep(delay)
            delay = self.report_interval
            if not self.connected:
                continue
            try:
                report = await self.health_report()
                await self.sio.call(AgentEvent.HEALTH_REPORT, report, namespace=NS, timeout=10)
            except Exception as exc:
                log.warning("health report not delivered: %s", exc)

    async def _prune_loop(self) -> None:
        """Forget finished jobs past the retention: at start, then every ``prune_interval``."""
        while True:
            try:
                pruned = await self.spool.prune()
                if pruned:
                    log.info("spool: forgot %d finished jobs older than the retention", pruned)
            except Exception:
                log.exception("spool pruning failed")
            await asyncio.sleep(self.prune_interval)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                if await self.spool.expire_due():
                    self._outbox_wake.set()
            except Exception:
                log.exception("spool expiry failed")
