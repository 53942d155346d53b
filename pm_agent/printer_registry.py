"""The printers this agent drives and what the hub knows them by.

Each printer gets a :class:`~pm_agent.printer_worker.PrinterWorker`. The hub hears of
it through ``printer:discovered`` (again whenever its identity, address, capabilities
or status support change) and answers with its printer id; status changes go out as
``printer:status``.

A restarted agent does not wait for the hub to print what is already in its spool:
each printer takes up the hub printer id it last had (kept in the spool by identity)
at once, and the results wait in the outbox until the hub is back. What the agent
learned about each address (identity, model, serial, the profile an operator chose)
is kept in the identity cache, so a printer that is off at the next start is still
registered under the identity it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pm_agent.hub_connection import HubConnection
from pm_agent.identity_cache import IdentityCache
from pm_agent.open_port import open_port
from pm_agent.printer_port import PrinterPort
from pm_agent.printer_uri import PrinterSpec
from pm_agent.printer_worker import PrinterWorker
from pm_agent.spool import JobSpool
from pm_core.protocol import AgentEvent
from pm_core.protocol.errors import error_of

log = logging.getLogger(__name__)

#: What makes a printer registration stale: registered again when one changes.
REGISTRATION_KEYS = ("identity", "address", "capabilities", "status_supported", "model")


class PrinterRegistry:
    def __init__(
        self,
        *,
        spool: JobSpool,
        connection: HubConnection,
        identities: IdentityCache,
        on_outbox: Callable[[], None],
        poll_interval: float,
        identify_wait: float,
        arp_table: Path,
        usb_backend: Any = None,
        knows_all_printers: bool = True,
    ) -> None:
        self.spool = spool
        #: Whether the workers are every printer this agent drives (no discovery that may
        #: add more later): then the hub is told, and retires the ones dropped.
        self.knows_all_printers = knows_all_printers
        self.connection = connection
        self.identities = identities
        self.on_outbox = on_outbox
        self.poll_interval = poll_interval
        #: How long registration waits for the printers' first answer (identity).
        self.identify_wait = identify_wait
        #: Where network printers' MACs are looked up (tests give a file of their own).
        self.arp_table = arp_table
        self.usb_backend = usb_backend
        self.workers: list[PrinterWorker] = []
        self.by_printer_id: dict[int, PrinterWorker] = {}
        #: Printer identity -> the hub printer id it had (from the spool, kept current).
        self._known_printer_ids: dict[str, int] = {}
        self._register_lock = asyncio.Lock()
        #: Called with a printer an operator added whose registration the hub refuses
        #: because an operator removed it meanwhile (``pm_agent.added_printers``).
        self.on_removed_at_hub: Callable[[PrinterWorker], Coroutine[Any, Any, None]] | None = None
        self._forgetting: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """What the agent knew before it stopped: identities and the hub's ids."""
        await asyncio.to_thread(self.identities.load)
        self._known_printer_ids = await self.spool.known_printer_ids()

    # -- adding printers ------------------------------------------------------------------

    def add_worker(
        self,
        spec: PrinterSpec,
        port: PrinterPort | None = None,
        identity: str | None = None,
        *,
        mac: str | None = None,
        model: str | None = None,
        operator_added: bool = False,
    ) -> PrinterWorker:
        """Start driving ``spec`` (registered with the hub by the caller);
        ``operator_added``: an operator added it through the hub (``printer:add``)."""
        worker = PrinterWorker(
            spec,
            port or open_port(spec, usb_backend=self.usb_backend),
            self.spool,
            on_status=self.report_status,
            on_outbox=self.on_outbox,
            poll_interval=self.poll_interval,
            on_change=self.printer_changed,
            identity=identity or self.identities.identity(spec.uri),
            mac=mac,
            arp_table=self.arp_table,
            model=model or self.identities.model(spec.uri),
            profile=self.identities.profile(spec.uri),
            language=self.identities.language(spec.uri),
            text_mode=self.identities.text_mode(spec.uri),
        )
        worker.operator_added = operator_added
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
        operator_added: bool = False,
    ) -> PrinterWorker:
        """Drive one more printer (found by discovery, or added at run time); ``model``
        is what discovery learned of it (USB IEEE 1284 id, mDNS TXT record)."""
        worker = self.add_worker(
            spec, port, identity, mac=mac, model=model, operator_added=operator_added
        )
        log.info("added printer %s (%s)", spec.name, spec.uri)
        if self.connection.connected:
            await self._wait_first_contact([worker])
            await self.register(worker)
        return worker

    async def drop_worker(self, worker: PrinterWorker) -> None:
        """Stop driving a printer (an operator removed one added at run time)."""
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.printer_id is not None and self.by_printer_id.get(worker.printer_id) is worker:
            del self.by_printer_id[worker.printer_id]
        await worker.stop()

    def serial_paths(self) -> list[str]:
        """The serial ports printers are driven on (serial discovery leaves them alone)."""
        return [str(w.spec.path) for w in self.workers if w.spec.scheme == "serial"]

    def usb_ids(self) -> list[str]:
        return [str(w.spec.path) for w in self.workers if w.spec.scheme == "usb"]

    # -- registration at the hub ------------------------------------------------------------

    async def register_all(self) -> None:
        """After a (re)connect: every printer, once each has had a moment to answer."""
        await self._wait_first_contact(self.workers)
        for worker in list(self.workers):
            if not self.connection.connected:
                return
            await self.register(worker)
        if self.knows_all_printers:
            await self.tell_registered()

    async def tell_registered(self) -> None:
        """Tell the hub which printers this agent drives now (by hub id): the others it
        had for this agent were dropped from the configuration, and the hub retires
        them instead of showing them offline for ever."""
        ids = sorted({w.printer_id for w in self.workers if w.printer_id is not None})
        if self.connection.stopping or not self.connection.connected:
            return  # the next connect tells it again
        try:
            ack = await self.connection.call(
                AgentEvent.PRINTERS_REGISTERED, {"printer_ids": ids}, timeout=10
            )
        except Exception as exc:
            # Stopping, or the link dropped mid-call: the next connect tells it again.
            lost = self.connection.stopping or not self.connection.connected
            (log.debug if lost else log.warning)(
                "could not tell the hub which printers this agent drives: %s", exc
            )
            return
        if isinstance(ack, dict) and ack.get("ok") and ack.get("retired"):
            log.info("the hub retired printers %s (no longer driven here)", ack["retired"])

    async def _wait_first_contact(self, workers: list[PrinterWorker]) -> None:
        """Give each printer a moment to answer (and tell its serial) so it is
        registered under its real identity, not first under its address."""
        waits = [w.first_contact.wait() for w in workers if not w.first_contact.is_set()]
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), self.identify_wait)
            except TimeoutError:
                pass

    async def register(self, worker: PrinterWorker) -> None:
        """``printer:discovered`` for one printer (again when its identity, address
        or capabilities changed, also while the registration was under way)."""
        async with self._register_lock:
            for _ in range(3):
                if not self.connection.connected:
                    return
                description = worker.describe()
                if not await self._register_once(worker, description):
                    return
                now = worker.describe()
                if all(now.get(k) == description.get(k) for k in REGISTRATION_KEYS):
                    return

    async def _register_once(self, worker: PrinterWorker, description: dict[str, Any]) -> bool:
        try:
            ack = await self.connection.call(AgentEvent.PRINTER_DISCOVERED, description, timeout=10)
        except Exception as exc:
            log.warning("could not register %s: %s", worker.spec.name, exc)
            return False
        if not (isinstance(ack, dict) and ack.get("ok")):
            log.error("hub refused printer %s: %s", worker.spec.name, ack)
            details = error_of(ack).get("details")
            removed = isinstance(details, dict) and details.get("removed_by")
            if removed and worker.operator_added and self.on_removed_at_hub is not None:
                # Its own task: this may run on the worker's poll task, which dropping
                # the worker cancels.
                task = asyncio.create_task(self.on_removed_at_hub(worker))
                self._forgetting.add(task)
                task.add_done_callback(self._forgetting.discard)
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
        capabilities makes :meth:`register` report the printer again."""
        if not isinstance(record, dict):
            return
        if "text_mode" in record:
            mode = record["text_mode"]
            try:
                if worker.use_text_mode(mode if isinstance(mode, str) else None):
                    await self.remember(worker)
            except ValueError as exc:
                log.warning("text mode for %s from the hub not used: %s", worker.spec.name, exc)
        changed = False
        if "language_override" in record:
            language = record["language_override"]
            if language != worker.language_override:
                try:
                    worker.use_language(language if isinstance(language, str) else None)
                    changed = True
                    log.info(
                        "printer %s: language %s chosen by an operator", worker.spec.name, language
                    )
                except ValueError as exc:
                    log.warning("language for %s from the hub not used: %s", worker.spec.name, exc)
        if "profile_override" not in record:
            if changed:
                await self.remember(worker)
            return
        profile = record["profile_override"]
        if profile == worker.profile_override:
            if changed:
                await self.remember(worker)
            return
        try:
            worker.use_profile(profile if isinstance(profile, str) else None)
        except ValueError as exc:
            log.warning("profile for %s from the hub not used: %s", worker.spec.name, exc)
            return
        log.info("printer %s: profile %s chosen by an operator", worker.spec.name, profile)
        await self.remember(worker)

    # -- changes ------------------------------------------------------------------------------

    async def remember(self, worker: PrinterWorker) -> None:
        """Keep what the agent learned about the printer at this address (identity,
        model, serial) and the profile an operator chose, for the next start."""
        info = worker.identity_info
        entry = {
            "identity": worker.identity,
            "model": worker.model,
            "serial": info.serial if info else None,
            "profile": worker.profile_override,
            "language": worker.language_override,
            "text_mode": worker.text_mode,
        }
        if self.identities.remember(worker.spec.uri, entry):
            try:
                await asyncio.to_thread(self.identities.save)
            except OSError as exc:
                log.warning("could not save printer identities: %s", exc)

    async def printer_changed(self, worker: PrinterWorker) -> None:
        """What the hub knows of ``worker`` changed (identity, capabilities, address,
        status support): remember it and register the printer again."""
        await self.remember(worker)
        renamed = worker.previous_identity in (None, worker.spec.uri)
        if not worker.registered and (worker.printer_id is None or not renamed):
            # Not confirmed by the hub yet: the id follows the identity. (Learning the
            # serial of the printer known by its address keeps the hub record; another
            # serial at this address is another printer, with its own record and jobs.)
            self._resume_known_id(worker)
        if worker.printer_id is not None and self.connection.connected:
            await self.register(worker)

    async def report_status(self, worker: PrinterWorker) -> None:
        """``printer:status`` for a change (or a heartbeat) of one printer's status."""
        if worker.status != worker.last_logged_status:
            log.info("printer %s is %s", worker.spec.name, worker.status)
            worker.last_logged_status = worker.status
        if worker.printer_id is None or not self.connection.connected:
            return
        try:
            await self.connection.emit(
                AgentEvent.PRINTER_STATUS,
                {"printer_id": worker.printer_id, "status": worker.status, "flags": worker.flags},
            )
        except Exception as exc:
            log.debug("status report for %s not sent: %s", worker.spec.name, exc)
        if worker.ready:
            worker.wake()
