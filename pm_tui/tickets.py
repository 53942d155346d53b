"""A ticket typed in the dashboard's small form (``n``): where it goes (a station or
a printer, by name), its lines, a title and copies, made into the ``job:submit``
payload (text blocks: every operator may print them) and sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pm_core.protocol import OpsEvent, ProtocolError
from pm_core.protocol.documents import MAX_TEXT_CHARS, validate_document
from pm_tui.dashboard import Dashboard
from pm_tui.data.source import error_message
from pm_tui.data.state import FleetState, job_record

#: Lines a typed ticket may have (a kitchen ticket, not a report).
MAX_LINES = 60
MAX_COPIES = 10


@dataclass(frozen=True)
class TicketDraft:
    """What the form holds, as typed."""

    target: str
    lines: str
    title: str = ""
    copies: str = "1"


class TicketError(ValueError):
    """What is wrong with a draft, in words for the form."""


def ticket_document(title: str, lines: list[str]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if title:
        blocks.append({"type": "text", "text": title, "bold": True, "align": "center", "width": 2})
        blocks.append({"type": "line"})
    blocks.extend({"type": "text", "text": line} for line in lines)
    blocks.append({"type": "cut"})
    return {"blocks": blocks}


def resolve_target(
    target: str, state: FleetState, branch_id: int | None
) -> tuple[dict[str, Any], str]:
    """``{"station": ...}`` or ``{"printer_id": ...}`` for a typed name (a station
    first, then a printer; case does not matter), and how to say it."""
    name = target.strip()
    if not name:
        raise TicketError("say where it prints: a station or a printer")
    wanted = name.lower()
    stations = {str(s.get("name")).lower(): s for s in state.stations if s.get("name")}
    for printer in state.printers.values():
        if printer.get("station"):
            stations.setdefault(str(printer["station"]).lower(), {"name": printer["station"]})
    if wanted in stations:
        payload: dict[str, Any] = {"station": wanted}
        if branch_id is not None:
            payload["branch_id"] = branch_id
        return payload, f"station {wanted}"
    printers = [
        p
        for p in state.printers.values()
        if str(p.get("name", "")).lower() == wanted and state.in_branch(p, branch_id)
    ]
    if len(printers) == 1:
        return {"printer_id": printers[0]["id"]}, str(printers[0]["name"])
    if len(printers) > 1:
        raise TicketError(f"{len(printers)} printers are called {name}: pick a branch first")
    raise TicketError(f"no station or printer called {name}")


def ticket_payload(
    draft: TicketDraft, state: FleetState, branch_id: int | None
) -> tuple[dict[str, Any], str]:
    """The ``job:submit`` payload for a draft, and where it goes (``TicketError`` if
    the draft cannot print)."""
    lines = draft.lines.rstrip("\n").split("\n") if draft.lines.strip() else []
    if not lines:
        raise TicketError("type at least one line")
    if len(lines) > MAX_LINES:
        raise TicketError(f"at most {MAX_LINES} lines ({len(lines)} typed)")
    if any(len(line) > MAX_TEXT_CHARS for line in lines) or len(draft.title) > 200:
        raise TicketError("a line is too long")
    try:
        copies = int(draft.copies.strip() or "1")
    except ValueError:
        raise TicketError("copies must be a number") from None
    if not 1 <= copies <= MAX_COPIES:
        raise TicketError(f"copies: 1 to {MAX_COPIES}")
    where, said = resolve_target(draft.target, state, branch_id)
    document = ticket_document(draft.title.strip(), lines)
    try:
        validate_document(document)  # the hub's own check, before asking it
    except ProtocolError as exc:
        raise TicketError(exc.message) from None
    return {**where, "document": document, "copies": copies}, said


async def submit_ticket(dashboard: Dashboard, payload: dict[str, Any], where: str) -> bool:
    """Send it; a toast says the job number (or why the hub refused it)."""
    ack = await dashboard.link.call(OpsEvent.JOB_SUBMIT, payload)
    if not ack.get("ok"):
        dashboard.notify(
            f"Ticket for {where} refused: {error_message(ack)}", severity="error", markup=False
        )
        return False
    job = job_record(ack["job"])
    dashboard.publish(dashboard.state.add_jobs([job]))
    copies = payload.get("copies", 1)
    printer = dashboard.state.printer_name(job.get("printer_id"))
    dashboard.notify(
        f"Ticket queued as job #{job['id']} on {printer}"
        + (f" ({copies} copies)" if copies > 1 else ""),
        markup=False,
    )
    return True
