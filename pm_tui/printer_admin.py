"""Adding and removing printers from the dashboard (managers and admins).

- Remove (``D``/``delete`` on the Printers tab and in a printer's detail): asks first,
  saying the printer's name and what happens; the hub refuses while tickets wait for
  it, and the toast says what to do (cancel or move them first).
- Add (``A``, the palette): a small form (``pm_tui.screens.printer_form``) names the
  agent, the address, a name and a station; the hub asks that agent to drive it
  (``printer:add``), and the new printer's row comes like any other's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pm_core.protocol import OpsEvent, ProtocolError
from pm_core.protocol.errors import error_of
from pm_core.protocol.printer_addresses import check_printer_uri
from pm_tui.dashboard import Dashboard
from pm_tui.data.source import error_message
from pm_tui.data.state import FleetState
from pm_tui.formatting import plural

Done = Callable[[], None]


@dataclass(frozen=True)
class PrinterDraft:
    """What the add-printer form holds, as typed."""

    agent_id: int | None
    uri: str
    name: str = ""
    station: str = ""


class PrinterDraftError(ValueError):
    """What is wrong with a draft, in words for the form."""


def connected_agents(state: FleetState, branch_id: int | None) -> list[tuple[str, int]]:
    """``(label, agent id)`` of the agents a printer can be added through, by name."""
    agents = [
        a
        for a in state.agents.values()
        if a.get("connected") and (branch_id is None or a.get("branch_id") == branch_id)
    ]
    return [
        (f"{a.get('name') or 'agent'} (#{a['id']})", int(a["id"]))
        for a in sorted(agents, key=lambda a: (str(a.get("name")), a["id"]))
    ]


def add_payload(draft: PrinterDraft) -> dict[str, Any]:
    """The ``printer:add`` payload, checked as the hub checks it."""
    if draft.agent_id is None:
        raise PrinterDraftError("choose the agent on the box the printer is reached from")
    try:
        uri = check_printer_uri(draft.uri)
    except ProtocolError as exc:
        raise PrinterDraftError(exc.message) from None
    payload: dict[str, Any] = {"agent_id": draft.agent_id, "uri": uri}
    if draft.name.strip():
        payload["name"] = draft.name.strip()
    if draft.station.strip():
        payload["station"] = draft.station.strip().lower()
    return payload


class PrinterAdmin:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def add(self, payload: dict[str, Any]) -> bool:
        """Ask the hub; a toast says the new printer (or why it was refused)."""
        app = self.dashboard
        ack = await app.link.call(OpsEvent.PRINTER_ADD, payload)
        if not ack.get("ok"):
            app.notify(
                f"Printer {payload['uri']} not added: {error_message(ack)}",
                severity="error",
                markup=False,
            )
            return False
        printer = ack["printer"]
        app.publish(app.state.put_printer(printer))
        station = f" at station {printer['station']}" if printer.get("station") else ""
        app.notify(
            f"Added {printer['name']}{station} ({printer.get('status', 'unknown')})", markup=False
        )
        return True

    async def remove(self, printer_id: int | None, *, then: Done | None = None) -> None:
        """Ask first, then ``printer:remove``; ``then`` runs once it is gone."""
        app = self.dashboard
        printer = app.state.printers.get(printer_id) if printer_id is not None else None
        if printer is None:
            app.notify("Select a printer first", severity="warning")
            return
        name = str(printer.get("name") or f"#{printer['id']}")

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            ack = await app.link.call(OpsEvent.PRINTER_REMOVE, {"printer_id": printer["id"]})
            if not ack.get("ok"):
                app.notify(refusal(name, ack), severity="error", markup=False, timeout=10)
                return
            app.notify(f"{name} removed", markup=False)
            if then is not None:
                then()

        app.confirm(
            f"Remove printer {name}? The hub stops serving it: its row goes, its alerts "
            "are cleared, and it stays removed (its agent may not register it again).",
            confirmed,
        )


def refusal(name: str, ack: dict[str, Any]) -> str:
    """Why the hub refused to remove ``name``, and what to do."""
    error = error_of(ack)
    details = error.get("details")
    waiting = details.get("waiting") if isinstance(details, dict) else None
    if error.get("code") == "conflict" and isinstance(waiting, int):
        return (
            f"{name} not removed: {plural(waiting, 'ticket')} waiting for it. Cancel them "
            "or move them to another printer first (enter, then c or b in its detail)."
        )
    return f"{name} not removed: {error_message(ack)}"
