"""A Star CloudPRNT server: printers that poll the hub instead of an agent driving them.

The printer (mC-Print, TSP100IV, TSP650II with an IFBD-HI01X card ...) is set to the
hub's URL ``http(s)://HUB:3001/cloudprnt`` with HTTP basic auth (the secret
``pm printer cloudprnt add`` printed). Then, every poll interval:

1. it POSTs its status (``printerMAC``, ``statusCode``, ASB ``status``): the printer
   record takes that status the way an agent's report would (the dashboard shows it,
   alerts and station failover follow); the answer says ``jobReady`` with the media
   types the hub renders (``image/png`` at the printer's width) when a job waits;
2. it GETs the job (``?mac=...&type=image/png&token=...``): the job becomes
   ``printing`` (committed before the first byte leaves) and the ticket is drawn by
   the ticket renderer off the event loop;
3. it DELETEs it with its result ``code``: 2xx (or ``OK``) ends it ``completed``,
   anything else ``failed``. That DELETE is what completes the job.

A job fetched and never confirmed within ``cloudprnt_confirm_timeout_s`` ends
``failed`` with ``outcome_unknown`` and is never offered again (the printer may have
printed it); a hub restart does the same to a job it finds fetched. A printer that
stops polling for ``cloudprnt_offline_after_s`` shows ``offline``.

Hostile input: bodies over 16 KB are refused (413), a MAC must look like one (400),
an unknown MAC or a wrong secret is 401 (and counts as a failed login of that
address; a request with no credentials at all is 401 without counting), and each
printer may make ``cloudprnt_rate_limit`` requests a second (429).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import io
import json
import logging
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from pm_core.database import Database
from pm_core.logs import correlation
from pm_core.protocol import PROBLEM_PRINTER_STATUSES, job_correlation_id
from pm_core.protocol.documents import validate_document
from pm_core.protocol.star_asb import decode_asb_hex, status_of_code
from pm_core.sent_preview import bounded_preview, image_lines
from pm_core.ticket_image import ticket_image
from pm_hub.active_jobs import ActiveJobs
from pm_hub.admission import Admission
from pm_hub.config import HubSettings
from pm_hub.dispatch import JobDispatcher
from pm_hub.live_state import LiveState, PrinterRow
from pm_hub.printer_changes import PrinterChanges
from pm_hub.rate_limit import RateLimiter
from pm_hub.store import cloudprnt as cloudprnt_store
from pm_hub.store import jobs as job_store
from pm_hub.store import printers as printer_store

log = logging.getLogger(__name__)

MEDIA_PNG = "image/png"
MEDIA_TYPES = [MEDIA_PNG]
#: Largest POST body a printer may send.
MAX_BODY_BYTES = 16 * 1024
MAC_PATTERN = re.compile(r"^[0-9a-f]{2}([:.-]?[0-9a-f]{2}){5}$")
#: How long an enrollment read from the database is trusted (a new or removed
#: enrollment by ``pm printer cloudprnt`` is seen within this).
ENROLLMENT_TTL_S = 10.0
#: Seconds between two looks for unconfirmed tickets and silent printers.
SWEEP_INTERVAL_S = 1.0


class CloudPrntError(Exception):
    """Answered with ``status`` and ``message`` (no traceback, nothing changed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def normalise_mac(value: object) -> str:
    """``00:11:62:0A:0B:0C`` (or with dots, dashes, nothing between) as
    ``00:11:62:0a:0b:0c``; CloudPrntError 400 for anything else."""
    if not isinstance(value, str) or len(value) > 32:
        raise CloudPrntError(400, "a MAC address like 00:11:62:0a:0b:0c is required")
    text = value.strip().lower()
    if not MAC_PATTERN.match(text):
        raise CloudPrntError(400, "a MAC address like 00:11:62:0a:0b:0c is required")
    digits = re.sub(r"[^0-9a-f]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def new_secret() -> str:
    return "cp_" + secrets.token_urlsafe(18)


@dataclass
class Fetched:
    """A ticket the printer GOT and has not confirmed yet."""

    job_id: int
    token: str
    at: float
    png: bytes


@dataclass
class Poller:
    """What the hub knows of one CloudPRNT printer while it runs."""

    mac: str
    printer_id: int
    secret_hash: str
    dots: int
    read_at: float
    last_poll: float | None = None
    #: The job offered in the last poll's ``jobReady`` (its token).
    offer: tuple[int, str] | None = None
    fetched: Fetched | None = None
    #: Jobs this printer fetched: never offered again, whatever happens.
    served: set[int] = field(default_factory=set)


def render_png(
    document: dict[str, Any], *, dots: int, header: str | None
) -> tuple[bytes, dict[str, Any]]:
    """The ticket as a PNG as wide as the paper, and its sent preview (the thumbnail
    of that image, ``pm_core.sent_preview``); blocking: run it off the loop."""
    doc = validate_document(document)
    if "raw_base64" in doc:
        raise ValueError("a CloudPRNT printer takes drawn tickets; raw bytes cannot be sent")
    blocks = [b for b in doc["blocks"] if b["type"] not in ("cut", "drawer")]
    if not blocks:
        raise ValueError(
            "nothing to print: a CloudPRNT printer takes an image, which cannot open a drawer"
        )
    image = ticket_image({"blocks": blocks}, dots=dots, header=header).convert("1")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    png = out.getvalue()
    return png, bounded_preview(image_lines(image), sent_bytes=len(png), language="cloudprnt")


class CloudPrntServer:
    def __init__(
        self,
        settings: HubSettings,
        *,
        db: Database,
        state: LiveState,
        jobs: ActiveJobs,
        changes: PrinterChanges,
        dispatcher: JobDispatcher,
        admission: Admission,
    ) -> None:
        self.settings = settings
        self.db = db
        self.state = state
        self.jobs = jobs
        self.changes = changes
        self.dispatcher = dispatcher
        self.admission = admission
        self.requests = RateLimiter(
            settings.cloudprnt_rate_limit, settings.cloudprnt_rate_limit * 4
        )
        self.pollers: dict[str, Poller] = {}
        self._unknown: dict[str, float] = {}  # MACs not enrolled, when last looked up
        self._sweeper: asyncio.Task[None] | None = None
        self.started_at = time.monotonic()
        self._enrollments_read = time.monotonic()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """At hub start: a ticket a CloudPRNT printer had fetched before the restart
        may have printed; it ends ``outcome_unknown`` instead of being served again."""
        self.started_at = time.monotonic()
        for row in list(self.state.printers.values()):
            if row.get("kind") != "cloudprnt":
                continue
            for job in self.jobs.waiting_on(row["id"]):
                if job.status == "printing":
                    await self._unknown_outcome(job.id, row, "the hub restarted before the "
                                                "printer confirmed the ticket")  # fmt: skip
        await self.load_enrollments()
        self._sweeper = asyncio.create_task(self._sweep(), name="cloudprnt-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    # -- who is asking ------------------------------------------------------------------

    async def authenticate(self, mac_value: object, authorization: str, remote: str) -> Poller:
        """The enrolled printer with this MAC whose secret is in ``authorization``
        (HTTP basic; the user name is not checked). 401 otherwise, 429 when the
        address failed too often or the printer asks too often."""
        address = f"cloudprnt:{remote}"
        waiting = self.admission.login_wait(address)
        if waiting is not None:
            raise CloudPrntError(429, waiting)
        mac = normalise_mac(mac_value)
        if not authorization:
            # No credentials (a printer whose secret is not set yet, or a client
            # waiting for HTTP's challenge) guessed nothing: not a failed login, or
            # the printer would stay locked out for a while once its secret is set.
            raise CloudPrntError(401, "credentials required")
        secret = _basic_password(authorization)
        poller = await self._poller(mac) if secret is not None else None
        if (
            poller is None
            or secret is None
            or not hmac.compare_digest(cloudprnt_store.hash_secret(secret), poller.secret_hash)
        ):
            self.admission.logins.failed(address)
            raise CloudPrntError(401, "unknown printer or wrong secret")
        self.admission.logins.succeeded(address)
        if not self.requests.allow(mac):
            raise CloudPrntError(429, "polling too often; slow down")
        return poller

    async def _poller(self, mac: str) -> Poller | None:
        now = time.monotonic()
        poller = self.pollers.get(mac)
        if poller is not None and now - poller.read_at < ENROLLMENT_TTL_S:
            return poller
        if poller is None and now - self._unknown.get(mac, -1e9) < 1.0:
            return None  # looked up a moment ago: not enrolled (spares the database)
        found = await self.db.read(lambda d: cloudprnt_store.enrolled(d, mac))
        if found is None or found["branch_id"] != self.state.branch_id:
            self.pollers.pop(mac, None)
            if len(self._unknown) > 10_000:
                self._unknown.clear()
            self._unknown[mac] = now
            return None
        if poller is None or poller.printer_id != found["printer_id"]:
            poller = Poller(
                mac=mac,
                printer_id=found["printer_id"],
                secret_hash=found["secret_hash"],
                dots=int(found["dots"]),
                read_at=now,
            )
            self.pollers[mac] = poller
        poller.secret_hash, poller.dots, poller.read_at = found["secret_hash"], found["dots"], now
        if found["printer_id"] not in self.state.printers:
            # Enrolled from the command line while the hub ran: it joins the live rows.
            await self.changes.changed(found["printer"])
        return poller

    # -- the three requests ---------------------------------------------------------------

    async def poll(self, poller: Poller, body: Any) -> dict[str, Any]:
        """POST: the printer's status in, ``jobReady`` out."""
        if not isinstance(body, dict):
            raise CloudPrntError(400, "the body must be a JSON object")
        if "printerMAC" in body and normalise_mac(body["printerMAC"]) != poller.mac:
            raise CloudPrntError(400, "printerMAC is not the MAC asked for")
        poller.last_poll = time.monotonic()
        status, flags = _status_of(body)
        row = await self._set_status(poller, status, flags)
        answer: dict[str, Any] = {"jobReady": False}
        job_id = self._next_job(poller, row)
        if job_id is not None:
            token = secrets.token_urlsafe(12)
            poller.offer = (job_id, token)
            answer = {
                "jobReady": True,
                "mediaTypes": MEDIA_TYPES,
                "jobToken": token,
                "deleteMethod": "DELETE",
            }
        return answer

    def _next_job(self, poller: Poller, row: PrinterRow | None) -> int | None:
        """The oldest waiting job, when the printer can print, is not paused and has no
        ticket out unconfirmed (one at a time keeps the order). A ticket it fetched is
        never offered again: a printer that lost it (switched off mid-ticket) might
        have printed it, so it ends ``outcome_unknown`` instead."""
        if row is None or row["paused"] or row["status"] in PROBLEM_PRINTER_STATUSES:
            return None
        if poller.fetched is not None:
            return None
        for job in self.jobs.waiting_on(poller.printer_id):
            if job.status == "queued" and job.id not in poller.served:
                return job.id
        return None

    async def fetch(self, poller: Poller, media_type: str, token: str | None) -> bytes:
        """GET: the ticket as a PNG; the job is ``printing`` from here on."""
        if media_type != MEDIA_PNG:
            raise CloudPrntError(415, f"only {MEDIA_PNG} is served")
        fetched = poller.fetched
        if fetched is not None and token is not None and token == fetched.token:
            # The same download asked again (its answer lost on the way): GET has no
            # side effects in CloudPRNT. Without the token it is not served again.
            return fetched.png
        if poller.offer is None or (token is not None and token != poller.offer[1]):
            raise CloudPrntError(404, "no job for this printer")
        job_id, offered_token = poller.offer
        job = self.jobs.active.get(job_id)
        row = self.state.printers.get(poller.printer_id)
        if job is None or job.status != "queued" or row is None:
            poller.offer = None
            raise CloudPrntError(404, "no job for this printer")
        document = await self.db.read(lambda d: job_store.get_job(d, job_id))
        if document is None:
            raise CloudPrntError(404, "no job for this printer")
        header = _failover_header(self.state, document)
        with correlation(job_correlation_id(job_id, document["created_at"])):
            try:
                png, preview = await asyncio.to_thread(
                    render_png, json.loads(document["document"]), dots=poller.dots, header=header
                )
            except Exception as exc:
                log.warning("job %s cannot be drawn for %s: %s", job_id, row["name"], exc)
                poller.offer = None
                await self.dispatcher.move(
                    job_id,
                    "failed",
                    actor=f"cloudprnt:{poller.mac}",
                    error_code="render_error",
                    error_message=f"could not lay out the document: {exc}",
                )
                raise CloudPrntError(404, "no job for this printer") from None
            moved = await self.dispatcher.move(
                job_id,
                "printing",
                actor=f"cloudprnt:{poller.mac}",
                reason="fetched by the printer",
                sent_preview=preview,
            )
            if moved is None:  # cancelled or moved meanwhile
                poller.offer = None
                raise CloudPrntError(404, "no job for this printer")
            poller.served.add(job_id)
            poller.fetched = Fetched(job_id, offered_token, time.monotonic(), png)
            poller.offer = None
            log.info("job %s fetched by CloudPRNT printer %s", job_id, row["name"])
        return png

    async def confirm(self, poller: Poller, code: str, token: str | None) -> None:
        """DELETE: the printer's result for the ticket it fetched ends the job."""
        fetched = poller.fetched
        if fetched is None or (token is not None and token != fetched.token):
            raise CloudPrntError(404, "no fetched job to confirm")
        poller.fetched = None
        actor = f"cloudprnt:{poller.mac}"
        code = status_code_text(code)
        if code.upper() == "OK" or code[:1] == "2":
            await self.dispatcher.move(fetched.job_id, "completed", actor=actor, reason="printed")
            return
        await self.dispatcher.move(
            fetched.job_id,
            "failed",
            actor=actor,
            error_code="printer_error",
            error_message=f"the printer could not print the ticket: {code or 'no code'}",
        )

    # -- status and the sweeper -------------------------------------------------------------

    async def _set_status(
        self, poller: Poller, status: str, flags: dict[str, bool]
    ) -> PrinterRow | None:
        row = self.state.printers.get(poller.printer_id)
        if row is None:
            return None
        now = time.time()
        flags_json = json.dumps({k: v for k, v in flags.items() if v}, sort_keys=True)
        was = row["status"]
        updated, _ = await self.changes.status_reported(self.db, row, status, flags_json, now)
        if status != was:
            log.info("CloudPRNT printer %s is %s", row["name"], status)
        return updated

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep()
            except Exception:
                log.exception("CloudPRNT sweep failed")

    async def load_enrollments(self) -> None:
        """Printers enrolled from the command line while the hub runs join the live
        rows (and so the dashboard) without waiting for their first poll."""
        enrolled = await self.db.read(cloudprnt_store.list_enrolled)
        missing = [e["printer_id"] for e in enrolled if e["printer_id"] not in self.state.printers]
        for printer_id in missing:
            row = await self.db.read(
                functools.partial(printer_store.get_printer, printer_id=printer_id)
            )
            if row is not None and row["branch_id"] == self.state.branch_id:
                await self.changes.changed(row)

    async def sweep(self) -> None:
        """Unconfirmed tickets end ``outcome_unknown``; silent printers go offline;
        new enrollments are picked up (every few seconds)."""
        now = time.monotonic()
        if now - self._enrollments_read >= ENROLLMENT_TTL_S:
            self._enrollments_read = now
            await self.load_enrollments()
        for poller in list(self.pollers.values()):
            # Jobs it fetched stay barred while they are active; finished ones are
            # forgotten (the set would otherwise grow with every ticket printed).
            poller.served.intersection_update(self.jobs.active)
            fetched = poller.fetched
            row = self.state.printers.get(poller.printer_id)
            if fetched is not None and now - fetched.at > self.settings.cloudprnt_confirm_timeout_s:
                poller.fetched = None
                timeout = self.settings.cloudprnt_confirm_timeout_s
                await self._unknown_outcome(
                    fetched.job_id,
                    row,
                    f"the printer fetched the ticket and did not confirm it within {timeout:.0f} s",
                )
        silent_after = self.settings.cloudprnt_offline_after_s
        for row in list(self.state.printers.values()):
            if row.get("kind") != "cloudprnt" or row["status"] == "offline":
                continue
            polling = self.pollers.get((row.get("mac") or "").lower())
            last = polling.last_poll if polling is not None and polling.last_poll else None
            if now - (last if last is not None else self.started_at) > silent_after:
                await self._silent(row)

    async def _silent(self, row: PrinterRow) -> None:
        now = time.time()
        flags_json = json.dumps({"not_polling": True}, sort_keys=True)
        log.warning("CloudPRNT printer %s stopped polling: offline", row["name"])
        await self.changes.status_reported(self.db, row, "offline", flags_json, now, seen=False)

    async def _unknown_outcome(self, job_id: int, row: PrinterRow | None, what: str) -> None:
        name = row["name"] if row is not None else "the printer"
        await self.dispatcher.move(
            job_id,
            "failed",
            actor="hub",
            error_code="outcome_unknown",
            error_message=f"outcome unknown on {name}: {what}; check the printer and "
            "reprint if needed",
        )


def _basic_password(header: str) -> str | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and 0 < len(password) <= 200 else None


def _status_of(body: dict[str, Any]) -> tuple[str, dict[str, bool]]:
    """The printer status in a poll: its ASB bytes when sent, else its statusCode."""
    asb = body.get("status")
    if isinstance(asb, str) and asb.strip():
        try:
            return decode_asb_hex(asb[:200])
        except ValueError:
            pass
    code = body.get("statusCode")
    if isinstance(code, str):
        return status_of_code(status_code_text(code))
    return "unknown", {}


def status_code_text(code: str) -> str:
    """A CloudPRNT status or result code as text: Star printers send it URL-encoded
    (``"200%20OK"`` in a poll's JSON, sometimes encoded twice in a DELETE's query);
    ``"200 OK"`` either way (at most 100 characters)."""
    text = code[:300]
    for _ in range(2):
        if "%" not in text:
            break
        text = urllib.parse.unquote(text)
    return text.replace("+", " ").strip()[:100]


def _failover_header(state: LiveState, job: dict[str, Any]) -> str | None:
    primary = job.get("failover_from")
    if primary is None:
        return None
    printer = state.printers.get(primary)
    return f"BACKUP FROM {printer['name'] if printer else f'printer {primary}'}"
