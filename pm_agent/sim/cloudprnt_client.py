"""A simulated Star CloudPRNT printer: it polls a hub's ``/cloudprnt`` like an
mC-Print or TSP100IV does, fetches the ticket as a PNG, "prints" it (the decoded
image lands in :attr:`SimulatedCloudPrntPrinter.receipts` like any simulated
ticket) and confirms it with ``DELETE ...&code=200 OK``.

Its :attr:`state` is what it reports (ASB ``status`` and ``statusCode``): paper out,
cover open, ...; ``offline`` stops it polling, as a printer switched off would.
:attr:`drop_next` makes it fetch that many tickets and never confirm them (a printer
that lost power mid-ticket), for the ``outcome_unknown`` path.

Used by the tests and by ``pm sim --cloudprnt URL --mac MAC --secret SECRET``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import time
from typing import Any

import aiohttp
from PIL import Image

from pm_agent.sim.printer import PRINTER_STATES
from pm_agent.sim.receipt import Receipt
from pm_core.protocol.star_asb import encode_asb_hex

log = logging.getLogger(__name__)

#: The ``statusCode`` a Star printer reports in each state.
STATUS_CODES = {
    "online": "200 OK",
    "paper_low": "210 Paper low",
    "paper_out": "410 Out of paper",
    "cover_open": "420 Cover open",
    "error": "400 Printer error",
}
#: Largest ticket image accepted (bytes of PNG).
MAX_TICKET_BYTES = 8 * 1024 * 1024


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value (the user name may hold no colon)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class SimulatedCloudPrntPrinter:
    """A CloudPRNT client that polls ``url`` every ``poll_interval`` seconds."""

    def __init__(
        self,
        url: str,
        *,
        mac: str,
        secret: str,
        name: str = "CloudPRNT",
        poll_interval: float = 1.0,
        user: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.mac = mac
        self.name = name
        self.poll_interval = poll_interval
        self.headers = {"Authorization": basic_auth(user or mac.replace(":", ""), secret)}
        self.state = "online"
        self.receipts: list[Receipt] = []
        self.drop_next = 0
        self.polls = 0
        self.last_answer: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._printed = asyncio.Condition()

    async def start(self) -> None:
        if self._task is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
            self._task = asyncio.create_task(self._run(), name=f"cloudprnt-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> SimulatedCloudPrntPrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def set_state(self, state: str) -> None:
        if state not in PRINTER_STATES:
            raise ValueError(f"state must be one of {', '.join(PRINTER_STATES)}")
        self.state = state

    async def wait_for_receipts(self, count: int, timeout: float = 10) -> list[Receipt]:
        try:
            async with asyncio.timeout(timeout):
                async with self._printed:
                    await self._printed.wait_for(lambda: len(self.receipts) >= count)
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: {len(self.receipts)} ticket(s) after {timeout}s, expected {count}"
            ) from None
        return list(self.receipts)

    async def _run(self) -> None:
        while True:
            if self.state != "offline":
                try:
                    await self.poll_once()
                    self.last_error = None
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    if str(exc) != self.last_error:
                        log.warning("CloudPRNT printer %s: %s", self.name, exc)
                    self.last_error = str(exc)
            await asyncio.sleep(self.poll_interval)

    async def poll_once(self) -> dict[str, Any]:
        """One poll, and the ticket it announces if any: fetched, printed, confirmed
        (or dropped)."""
        assert self._session is not None, "start() first"
        body = {
            "printerMAC": self.mac,
            "statusCode": STATUS_CODES.get(self.state, "200 OK"),
            "status": encode_asb_hex(self.state),
            "printingInProgress": False,
        }
        async with self._session.post(self.url, json=body, headers=self.headers) as response:
            if response.status != 200:
                raise ValueError(f"poll answered {response.status}: {await response.text()}")
            answer: dict[str, Any] = await response.json()
        self.polls += 1
        self.last_answer = answer
        if not answer.get("jobReady") or self.state not in ("online", "paper_low"):
            return answer
        if "image/png" not in (answer.get("mediaTypes") or []):
            raise ValueError(f"no media type this printer takes in {answer.get('mediaTypes')}")
        params = {"mac": self.mac, "type": "image/png"}
        if answer.get("jobToken"):
            params["token"] = str(answer["jobToken"])
        async with self._session.get(self.url, params=params, headers=self.headers) as response:
            if response.status != 200:
                return answer  # gone meanwhile (cancelled, taken by another printer)
            data = await response.content.read(MAX_TICKET_BYTES + 1)
        code = "200 OK"
        try:
            if len(data) > MAX_TICKET_BYTES:
                raise ValueError("ticket too large")
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                image = opened.copy()
        except (OSError, ValueError) as exc:
            log.warning("CloudPRNT printer %s: cannot decode the ticket: %s", self.name, exc)
            code = "511 Media decoding error"
        else:
            if self.drop_next > 0:
                self.drop_next -= 1
                log.info("CloudPRNT printer %s drops a ticket (never confirmed)", self.name)
                return answer
            await self._print(image, data)
        confirm = {**params, "code": code}
        confirm.pop("type", None)
        async with self._session.delete(self.url, params=confirm, headers=self.headers) as response:
            await response.read()
        return answer

    async def _print(self, image: Image.Image, data: bytes) -> None:
        async with self._printed:
            self.receipts.append(
                Receipt(
                    text=f"[PNG {image.width}x{image.height}]",
                    raw=data,
                    finished_at=time.time(),
                    cut=True,
                    images=[image],
                )
            )
            self._printed.notify_all()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mac": self.mac,
            "url": self.url,
            "state": self.state,
            "receipts": len(self.receipts),
            "polls": self.polls,
        }
