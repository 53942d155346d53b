"""One printer as the agent drives it: a status poller and a print loop that takes
jobs from the spool in order, each doing device I/O on the printer's own thread
(so a stuck printer never holds up another)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pm_agent.capabilities import PrinterCapabilities, capabilities_from_options, check_profile
from pm_agent.discovery.arp import ARP_TABLE, mac_for_ip, mac_identity
from pm_agent.escpos_status import StatusReport
from pm_agent.language_render import is_star, render_for_language, star_test_page
from pm_agent.printer_identity import PrinterIdentity, read_identity
from pm_agent.printer_language import check_language
from pm_agent.printer_port import PrinterIOError, PrinterPort, PrinterUnreachable
from pm_agent.printer_uri import PrinterSpec
from pm_agent.render import render_test_page
from pm_agent.sent_preview import try_sent_preview
from pm_agent.spool import JobSpool, SpooledJob
from pm_agent.task_control import cancel_tasks
from pm_agent.zpl_label import zpl_test_label
from pm_core.logs import correlation, start_background
from pm_core.protocol import PROBLEM_PRINTER_STATUSES
from pm_core.protocol.errors import ErrorCode
from pm_core.protocol.languages import (
    DEFAULT_LANGUAGE,
    DEFAULT_TEXT_MODE,
    STATUS_DIALECTS,
    TEXT_MODES,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Longest wait between attempts at a job whose printer is not ready.
MAX_RETRY_DELAY = 10.0
#: How long the printer may take to confirm a job (status answer after the bytes).
CONFIRM_TIMEOUT = 60.0
#: The error code of a job that was sent but whose printing nobody can confirm.
OUTCOME_UNKNOWN = "outcome_unknown"
#: Pending jobs read from the spool at a time (each is re-checked when it starts).
PREFETCH = 16


@dataclass
class JobRun:
    """What one go at a job on the printer's thread ended in (``outcome``): ``waiting``
    (the printer cannot print now; nothing changed), ``gone`` (no longer pending),
    ``not_sent`` (unreachable; back to pending), ``render_error`` / ``outcome_unknown``
    (failed, written) or ``completed`` (written); the printer's answers before and
    after the ticket."""

    outcome: str
    before: StatusReport | None = None
    unreachable: PrinterUnreachable | None = None
    after: StatusReport | None = None
    error: str = ""


def outcome_unknown_message(printer: str, exc: PrinterIOError, *, what: str = "ticket") -> str:
    """What staff read on a job that may or may not have printed."""
    happened = exc.what.replace("ticket", what)
    return f"outcome unknown on {printer}: {happened}; check the printer and reprint if needed"


class PrinterWorker:
    def __init__(
        self,
        spec: PrinterSpec,
        port: PrinterPort,
        spool: JobSpool,
        *,
        on_status: Callable[[PrinterWorker], Awaitable[None]],
        on_outbox: Callable[[], None],
        poll_interval: float = 2.0,
        columns: int | None = None,
        on_change: Callable[[PrinterWorker], Awaitable[None]] | None = None,
        identity: str | None = None,
        mac: str | None = None,
        arp_table: Path = ARP_TABLE,
        model: str | None = None,
        profile: str | None = None,
        text_mode: str | None = None,
        language: str | None = None,
    ) -> None:
        self.spec = spec
        self.port = port
        self.spool = spool
        self.on_status = on_status
        self.on_outbox = on_outbox
        self.poll_interval = poll_interval
        #: Called when what ``describe()`` says changed (identity, capabilities,
        #: status support, address): the agent registers the printer again.
        self.on_change = on_change
        #: The model something else reported (USB IEEE 1284 id, mDNS TXT, what the
        #: printer said last time): the capabilities follow it until GS I tells better.
        self.model_hint = model
        #: The profile an operator chose (``printer:configure``); None: automatic.
        self.profile_override = profile
        #: The command language an operator chose (``printer:configure``); None: automatic.
        self.language_override = language
        #: How text goes out (``printer:configure``): ``auto`` (code pages where they
        #: hold it, else drawn) or ``raster`` (always drawn).
        #: Unless told, what its address says (``?text_mode=``, ``text_mode`` of a
        #: ``[[printers]]`` table in the config file).
        self.text_mode = text_mode or spec.options.get("text_mode") or DEFAULT_TEXT_MODE
        self.identity_info: PrinterIdentity | None = None  # None: not asked yet
        self.capabilities = self._capabilities()
        self._apply_language()
        self._columns_given = columns is not None
        self.columns = columns if columns is not None else self.capabilities.columns
        #: What the hub knows the printer by: its serial once it told it (GS I),
        #: else its MAC (ARP), else the configured address.
        self.identity = identity or spec.uri
        self.previous_identity: str | None = None
        #: Added by an operator through the hub (``printer:add``), not configured here.
        self.operator_added = False
        #: A network printer's MAC (ARP table): its identity when it tells no serial.
        self.mac = mac
        self.arp_table = arp_table
        #: Set after the first status poll (reachable or not), identity asked.
        self.first_contact = asyncio.Event()
        #: The hub's id for this printer: from registration, or (after a restart, until
        #: the hub confirms it) the id it had before, kept in the spool.
        self.printer_id: int | None = None
        #: The hub confirmed ``printer_id`` (``printer:discovered`` ack) since the start.
        self.registered = False
        self.status = "unknown"
        self.last_logged_status: str | None = None
        self.flags: dict[str, bool] = {}
        self.status_supported = True
        self.jobs_printed = 0
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"printer:{spec.name}"
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = False
        self._reported_at = 0.0
        self.heartbeat_interval = 10.0
        self._prefetched: collections.deque[SpooledJob] = collections.deque()
        #: Set on the loop, read on the printer's thread: stop the jobs in hand.
        self._cut_short = False
        self._running_max = 0  # the newest job handed to the printer's thread

    # -- plumbing ---------------------------------------------------------------------

    async def io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        # In the caller's context: log lines on the printer's thread keep the job's id.
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, context.run, fn, *args)

    def start(self) -> None:
        self._tasks = [
            # Each job's lines carry its own id (set per job); the loops carry none.
            start_background(self._poll_loop(), name=f"poll:{self.spec.name}"),
            start_background(self._print_loop(), name=f"print:{self.spec.name}"),
        ]

    async def stop(self) -> None:
        self._cut_short = True
        await cancel_tasks(self._tasks)  # re-cancels: wait_for may swallow one on 3.11
        await self.io(self.port.close)
        self._executor.shutdown(wait=False)

    def wake(self, job_id: int | None = None) -> None:
        """Look at the spool again; ``job_id``: a job just spooled (one older than those
        already read ahead, say redelivered after a reconnect, goes first)."""
        if job_id is None or (self._prefetched and job_id < self._prefetched[0].job_id):
            self._prefetched.clear()
        if job_id is None or (self._busy and job_id < self._running_max):
            self._cut_short = True  # the printer's thread stops after its current job
        self._wake.set()

    def describe(self) -> dict[str, Any]:
        """What the hub is told in ``printer:discovered``."""
        info = self.identity_info or PrinterIdentity()
        described: dict[str, Any] = {
            "name": self.spec.name,
            "address": self.spec.uri,
            "identity": self.identity,
            "kind": self.spec.kind,
            "station": self.spec.station,
            "status_supported": self.status_supported,
            "status": self.status,
            "flags": self.flags,
            "model": self.model,
            "serial": info.serial,
            "mac": self.mac,
            "capabilities": self.capabilities.to_json(),
        }
        if self.previous_identity and self.previous_identity != self.identity:
            described["previous_identity"] = self.previous_identity
        if self.operator_added:
            described["operator_added"] = True
        return described

    # -- identity and capabilities --------------------------------------------------------

    @property
    def model(self) -> str | None:
        """The model the printer told (GS I), else the one discovery reported."""
        told = self.identity_info.model if self.identity_info else None
        return told or self.model_hint

    def _capabilities(self) -> PrinterCapabilities:
        """An operator's profile, else ``?profile=``/``?columns=``, else the model's."""
        options = self.spec.options
        if self.profile_override:
            options = {**options, "profile": self.profile_override}
        if self.language_override:
            options = {**options, "language": self.language_override}
        return capabilities_from_options(options, model=self.model)

    @property
    def language(self) -> str:
        """The command language tickets are made in (escpos, star_raster, ...)."""
        return self.capabilities.language

    def _apply_language(self) -> None:
        """The port asks the status the way the printer's language does (a ``raw``
        printer is not asked at all)."""
        if hasattr(self.port, "status_dialect"):
            self.port.status_dialect = STATUS_DIALECTS[self.language]

    def _apply_capabilities(self) -> bool:
        """Recompute the capabilities; True when they changed."""
        capabilities = self._capabilities()
        changed = capabilities != self.capabilities
        self.capabilities = capabilities
        if not self._columns_given:
            self.columns = capabilities.columns
        self._apply_language()
        return changed

    def use_language(self, language: str | None) -> bool:
        """Use the operator's command ``language`` from now on (None: automatic).
        True when the capabilities changed; ValueError for an unknown language."""
        if language is not None:
            check_language(language)
        self.language_override = language
        if not self._apply_capabilities():
            return False
        log.info("printer %s now speaks %s", self.spec.name, self.language)
        return True

    def use_profile(self, profile: str | None) -> bool:
        """Use the operator's ``profile`` from now on (None: back to automatic): the
        next job is laid out for it. True when the capabilities changed (the hub must
        be told); ValueError for an unknown profile."""
        if profile is not None:
            check_profile(profile)
        self.profile_override = profile
        if not self._apply_capabilities():
            return False
        log.info("printer %s now uses profile %s", self.spec.name, self.capabilities.profile)
        return True

    def use_text_mode(self, text_mode: str | None) -> bool:
        """Lay text out in ``text_mode`` from the next job on (None: ``auto``); True
        when it changed. ValueError for an unknown mode."""
        mode = text_mode or DEFAULT_TEXT_MODE
        if mode not in TEXT_MODES:
            raise ValueError(f"text_mode must be one of {', '.join(TEXT_MODES)}")
        changed, self.text_mode = mode != self.text_mode, mode
        if changed:
            log.info("printer %s now prints text in %s mode", self.spec.name, mode)
        return changed

    async def identify(self) -> bool:
        """Ask ``GS I`` once the printer answers: identity, model, capabilities.
        True when the change was reported (the printer registered again)."""
        info = PrinterIdentity()
        # GS I is an ESC/POS question: a Star, label or raw printer could print it as
        # text or take it for the start of a command.
        if hasattr(self.port, "query_identity") and self.language == DEFAULT_LANGUAGE:
            try:
                info = await self.io(read_identity, self.port)
            except PrinterUnreachable as exc:
                log.debug("identity of %s not read yet: %s", self.spec.name, exc)
                return False  # asked again at the next contact
        self.identity_info = info
        if info.serial is None and self.spec.scheme == "tcp" and self.spec.host:
            found = await asyncio.to_thread(mac_for_ip, self.spec.host, table=self.arp_table)
            self.mac = found or self.mac
        if self.spec.options.get("identity") == "uri":
            identity = self.spec.uri  # the user says the serial is not unique
        elif info.serial:
            identity = f"serial:{info.serial}"
        elif self.mac:
            identity = mac_identity(self.mac, self.spec.port)
        else:
            identity = self.spec.uri
        changed = self._apply_capabilities()
        if identity != self.identity:
            changed = True
            log.info("printer %s is %s (was %s)", self.spec.name, identity, self.identity)
            # The hub renames the record when it was known by its address until now;
            # another serial at this address is another printer with its own record.
            self.previous_identity, self.identity = self.identity, identity
        if changed or info.answered:
            await self._changed()
            return True
        return False

    async def relocate(self, spec: PrinterSpec, port: PrinterPort) -> None:
        """The printer answers at another address now (DHCP): drive it there."""
        old = self.port
        log.info("printer %s moved from %s to %s", self.spec.name, self.spec.uri, spec.uri)
        await self.io(old.close)
        self.spec, self.port = spec, port
        self._apply_language()
        await self._changed()

    async def _changed(self) -> None:
        if self.on_change is not None:
            try:
                await self.on_change(self)
            except Exception:
                log.exception("reporting the change of %s failed", self.spec.name)

    @property
    def ready(self) -> bool:
        return self.status not in PROBLEM_PRINTER_STATUSES

    # -- status -------------------------------------------------------------------------

    async def refresh_status(self) -> str:
        """Ask the printer; report a change. Returns the status."""
        try:
            report: StatusReport | None = await self.io(self.port.query_status)
        except PrinterUnreachable as exc:
            return await self._apply_status(None, exc)
        return await self._apply_status(report, None)

    async def _apply_status(
        self, report: StatusReport | None, unreachable: PrinterUnreachable | None
    ) -> str:
        """What the printer answered to its status query (``report``; None: it does
        not answer status queries, or is never asked) or that it could not be
        reached: the hub hears of a change (or a heartbeat), a first answer asks who
        it is. Returns the status."""
        supported_before = self.status_supported
        reachable = False
        if unreachable is not None:
            status, flags = "offline", {"unreachable": True}
            if self.status != "offline":
                log.warning("printer %s unreachable: %s", self.spec.name, unreachable)
        else:
            reachable = True
            if report is None:
                # Reachable but silent to its status query (or never asked, a raw
                # printer): say so instead of pretending online.
                self.status_supported = False
                status, flags = "unknown", {"status_unsupported": True}
            else:
                self.status_supported = True
                status = report.status
                flags = {k: v for k, v in report.flags.items() if v}
        now = time.monotonic()
        if (status, flags) != (self.status, self.flags) or (
            now - self._reported_at >= self.heartbeat_interval
        ):
            # A change, or a heartbeat so the hub knows the printer is still there.
            self.status, self.flags = status, flags
            self._reported_at = now
            await self.on_status(self)
        reported = False
        # A printer that cannot print now (paper, cover) may not answer GS I yet.
        first_answer = reachable and self.identity_info is None and not self._busy
        if first_answer and (report is None or report.can_print):
            reported = await self.identify()
        if self.status_supported != supported_before and not reported:
            await self._changed()  # the hub shows status_supported from registration
        self.first_contact.set()
        return status

    async def _poll_loop(self) -> None:
        while True:
            if not self._busy:
                try:
                    await self.refresh_status()
                except Exception:
                    log.exception("status poll of %s failed", self.spec.name)
            await asyncio.sleep(self.poll_interval)

    # -- printing -----------------------------------------------------------------------

    async def _print_loop(self) -> None:
        delay = 0.5
        while True:
            if not self._prefetched and self.printer_id:
                self._prefetched.extend(await self.spool.pending(self.printer_id, PREFETCH))
            if not self._prefetched:
                await self._wake.wait()
                self._wake.clear()
                continue
            jobs = list(self._prefetched)
            self._prefetched.clear()
            self._running_max = jobs[-1].job_id
            retry = await self._process(jobs)
            if retry:  # the job waits in the spool, first in line
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass
                self._wake.clear()
                delay = min(delay * 2, MAX_RETRY_DELAY)
            else:
                delay = 0.5

    async def _process(self, jobs: list[SpooledJob]) -> bool:
        """Print these jobs in order, until one cannot be; True: "not now, try again
        later". They run one after the other on the printer's thread, the event loop
        hearing of each afterwards (a loop turn between jobs cost as long as a job)."""
        self._busy = True
        self._cut_short = False
        try:
            runs = await self.io(self._run_jobs, jobs, asyncio.get_running_loop())
        finally:
            self._busy = False
        retry = False
        for job, run in runs:
            with correlation(job.correlation_id):
                retry = await self._after_run(job, run)
        return retry

    def _run_jobs(
        self, jobs: list[SpooledJob], loop: asyncio.AbstractEventLoop
    ) -> list[tuple[SpooledJob, JobRun]]:
        runs: list[tuple[SpooledJob, JobRun]] = []
        for job in jobs:
            if self._cut_short:
                break  # an older job arrived, or the worker stops: the rest stay pending
            with correlation(job.correlation_id):
                try:
                    run = self._run_job(job, loop)
                except Exception as exc:
                    log.exception("job %s on %s failed unexpectedly", job.job_id, self.spec.name)
                    run = JobRun("internal", error=str(exc))
                    try:
                        self.spool.finish_now(
                            job.job_id,
                            "failed",
                            error_code="internal",
                            error_message="the agent hit an internal error printing this job",
                            only_from=("pending", "printing"),
                        )
                    except Exception:  # the spool is gone (shutdown): a restart recovers it
                        log.warning("job %s: its failure was not written", job.job_id)
                        runs.append((job, run))
                        break
            runs.append((job, run))
            if run.outcome not in ("completed", "gone", "expired", "render_error"):
                break  # the printer needs a look (or a pause) before the next one
        return runs

    def _run_job(self, job: SpooledJob, loop: asyncio.AbstractEventLoop) -> JobRun:
        """On the printer's thread, the whole job in one step (no event-loop turn between
        its parts, each spool write still committed before the next part): the printer
        asked whether it can print, the job marked printing, the ticket laid out and
        sent, the printer's answer after it, the outcome written."""
        job_id = job.job_id
        if job.expires_at is not None and job.expires_at <= time.time():
            self.spool.finish_now(
                job_id,
                "expired",
                error_code="expired",
                error_message=f"not printed: waited past its expiry on {self.spec.name}",
                only_from=("pending",),
            )
            return JobRun("expired")
        try:
            before = self.port.query_status()
        except PrinterUnreachable as exc:
            return JobRun("waiting", unreachable=exc)
        if before is not None and before.status in PROBLEM_PRINTER_STATUSES:
            return JobRun("waiting", before=before)
        run = JobRun("gone", before=before)
        started = self.spool.start_printing_now(job_id)
        if started is None:
            return run  # cancelled or moved meanwhile
        log.debug("job %s printing on %s", job_id, self.spec.name)
        loop.call_soon_threadsafe(self.on_outbox)  # the hub hears "printing" now
        try:
            one_copy, copies = self._render(started.payload)
        except Exception as exc:
            run.outcome, run.error = "render_error", str(exc)
            self.spool.finish_now(
                job_id,
                "failed",
                error_code="render_error",
                error_message=f"could not lay out the document: {exc}",
            )
            return run
        data = one_copy * copies
        try:
            run.after = self.port.write(data, CONFIRM_TIMEOUT)
        except PrinterUnreachable as exc:
            run.outcome, run.error = "not_sent", str(exc)
            self.spool.back_to_pending_now(job_id)
            return run
        except PrinterIOError as exc:
            # Sent (all or part), then the link broke: it may be on paper already.
            # Sending it again could give the kitchen a second ticket, so it ends
            # failed and says so; staff reprint it if it is missing.
            run.outcome, run.error = OUTCOME_UNKNOWN, str(exc)
            self.spool.finish_now(
                job_id,
                "failed",
                error_code=OUTCOME_UNKNOWN,
                error_message=outcome_unknown_message(self.spec.name, exc),
                sent_preview=self._sent_preview(one_copy, copies),
            )
            return run
        # Not waited for: the next job's check and start go ahead, and its "printing"
        # commits with (or after) this one. The hub hears of it once it is committed.
        done = self.spool.finish_later(
            job_id, "completed", sent_preview=self._sent_preview(one_copy, copies)
        )
        done.add_done_callback(functools.partial(self._on_commit, loop, job_id))
        run.outcome = "completed"
        return run

    def _on_commit(
        self, loop: asyncio.AbstractEventLoop, job_id: int, done: concurrent.futures.Future[Any]
    ) -> None:
        try:
            loop.call_soon_threadsafe(self._finished, job_id, done)
        except RuntimeError:  # the loop is gone (shutdown): the outbox is read at start
            pass

    def _finished(self, job_id: int, done: concurrent.futures.Future[Any]) -> None:
        if done.exception() is not None:
            log.error("job %s: its outcome was not written: %s", job_id, done.exception())
            return
        self.on_outbox()

    async def _after_run(self, job: SpooledJob, run: JobRun) -> bool:
        """Back on the event loop: report what the job run learnt; True: try again later."""
        if run.outcome in ("expired", "internal"):
            if run.outcome == "expired":
                log.info("job %s expired before %s could print it", job.job_id, self.spec.name)
            self.on_outbox()
            return False
        if run.outcome == "waiting":
            status = await self._apply_status(run.before, run.unreachable)
            log.debug("job %s waits: %s is %s", job.job_id, self.spec.name, status)
            return True
        await self._apply_status(run.before, None)
        if run.outcome == "gone":
            return False
        if run.outcome == "not_sent":
            log.warning(
                "job %s on %s: nothing sent (%s); will retry", job.job_id, self.spec.name, run.error
            )
            await self.refresh_status()
            return True
        if run.outcome == "render_error":
            self.on_outbox()
            log.warning("job %s cannot be laid out: %s", job.job_id, run.error)
            return False
        if run.outcome == OUTCOME_UNKNOWN:
            self.on_outbox()
            log.error("job %s on %s: %s; not resent", job.job_id, self.spec.name, run.error)
            await self.refresh_status()
            return False
        log.debug("job %s printed on %s", job.job_id, self.spec.name)
        self.jobs_printed += 1
        after = run.after
        if after is not None:
            flags: dict[str, bool] = {k: v for k, v in after.flags.items() if v}
            if (after.status, flags) != (self.status, self.flags):
                self.status, self.flags = after.status, flags
                await self.on_status(self)
        return False

    def _render(self, payload: dict[str, Any]) -> tuple[bytes, int]:
        """One copy's bytes and how many copies to send."""
        document = payload.get("document") or {}
        data = render_for_language(
            document,
            language=self.language,
            columns=self.columns,
            dots=self.capabilities.paper_width_dots,
            profile=self.capabilities.profile,
            header=payload.get("header"),
            cutter=self.identity_info.has_cutter if self.identity_info else None,
            text_mode=self.text_mode,
        )
        copies = int(payload.get("copies") or 1)
        return data, max(1, min(copies, 10))

    def _sent_preview(self, data: bytes, copies: int) -> dict[str, Any] | None:
        """What the printer was sent, read back from the bytes (for the dashboard)."""
        return try_sent_preview(
            data, language=self.language, profile=self.capabilities.profile, copies=copies
        )

    async def print_test_page(self) -> dict[str, Any]:
        """The test page for ``printer:test``: ok, or an error saying why not."""
        started = time.monotonic()
        self._busy = True
        try:
            status = await self.refresh_status()
            if status in PROBLEM_PRINTER_STATUSES:
                return {
                    "ok": False,
                    "error": {"code": status, "message": f"printer is {status.replace('_', ' ')}"},
                }
            if self.language == "raw":
                # Its command language is unknown here: any page would be a guess.
                return {
                    "ok": False,
                    "error": {
                        "code": ErrorCode.CONFLICT,
                        "message": f"{self.spec.name} is a raw printer: it prints only "
                        "raw_base64 jobs in its own language, so there is no test page",
                    },
                }
            if self.language == "zpl":
                data = zpl_test_label(
                    printer_name=self.spec.name,
                    address=self.spec.uri,
                    dots=self.capabilities.paper_width_dots,
                )
            elif is_star(self.language):
                data = star_test_page(
                    printer_name=self.spec.name,
                    address=self.spec.uri,
                    language=self.language,
                    columns=self.columns,
                    dots=self.capabilities.paper_width_dots,
                )
            else:
                data = render_test_page(
                    printer_name=self.spec.name, address=self.spec.uri, columns=self.columns
                )
            try:
                await self.io(self.port.write, data, 30.0)
            except PrinterUnreachable as exc:
                return {"ok": False, "error": {"code": "offline", "message": str(exc)}}
            except PrinterIOError as exc:
                message = outcome_unknown_message(self.spec.name, exc, what="test page")
                return {"ok": False, "error": {"code": OUTCOME_UNKNOWN, "message": message}}
            return {"ok": True, "duration_ms": round((time.monotonic() - started) * 1000, 2)}
        finally:
            self._busy = False
