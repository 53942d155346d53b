"""The small form that prints a typed ticket (``n``): where (a station or a printer,
suggested as you type), a title, the lines, copies. ``ctrl+s`` prints, ``esc`` closes;
what is wrong shows under the form and nothing is sent."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static, TextArea

from pm_tui.dashboard import as_dashboard
from pm_tui.tickets import TicketDraft, TicketError, submit_ticket, ticket_payload


class TicketForm(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "print", "print"),
        Binding("escape", "cancel", "cancel"),
    ]
    DEFAULT_CSS = """
    TicketForm {
        align: center middle;
    }
    TicketForm .ticket {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
    }
    TicketForm .row {
        height: auto;
    }
    TicketForm .label {
        width: 9;
        padding: 0 1 0 0;
    }
    TicketForm Input {
        width: 1fr;
        border: none;
        height: 1;
        background: $boost;
    }
    TicketForm #ticket-copies {
        width: 6;
    }
    TicketForm TextArea {
        height: 6;
        min-height: 3;
        border: none;
    }
    TicketForm #ticket-error {
        color: $error;
        text-style: bold;
        height: auto;
    }
    """

    def __init__(self, *, target: str = "", names: list[str] | None = None) -> None:
        super().__init__()
        self.target = target
        self.names = names or []
        self.sending = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog ticket"):
            yield Static(Text("Print a ticket", style="bold"))
            with Horizontal(classes="row"):
                yield Static("To", classes="label")
                yield Input(
                    value=self.target,
                    placeholder="station or printer",
                    suggester=SuggestFromList(self.names, case_sensitive=False),
                    id="ticket-target",
                )
            with Horizontal(classes="row"):
                yield Static("Title", classes="label")
                yield Input(placeholder="optional, printed large", id="ticket-title")
            yield Static("Lines", classes="label")
            yield TextArea(id="ticket-lines", soft_wrap=True, show_line_numbers=False)
            with Horizontal(classes="row"):
                yield Static("Copies", classes="label")
                yield Input(value="1", type="integer", max_length=2, id="ticket-copies")
            yield Static(id="ticket-error")
            yield Static("ctrl+s: print · tab: next field · esc: close", classes="dim")

    def on_mount(self) -> None:
        first = "#ticket-lines" if self.target else "#ticket-target"
        self.query_one(first).focus()

    def draft(self) -> TicketDraft:
        return TicketDraft(
            target=self.query_one("#ticket-target", Input).value,
            title=self.query_one("#ticket-title", Input).value,
            lines=self.query_one("#ticket-lines", TextArea).text,
            copies=self.query_one("#ticket-copies", Input).value,
        )

    def _error(self, message: str) -> None:
        self.query_one("#ticket-error", Static).update(Text(message))

    @on(Input.Submitted)
    async def _entered(self, event: Input.Submitted) -> None:
        if event.input.id == "ticket-copies":
            await self.action_print()
        else:
            self.focus_next()

    async def action_print(self) -> None:
        if self.sending:
            return
        app = as_dashboard(self.app)
        try:
            payload, where = ticket_payload(self.draft(), app.state, app.branch_filter)
        except TicketError as exc:
            self._error(str(exc))
            return
        self._error("")
        self.sending = True
        try:
            sent = await submit_ticket(app, payload, where)
        finally:
            self.sending = False
        if sent:
            self.dismiss(True)
        else:
            self._error("the hub refused it (see the message); change it or esc")

    def action_cancel(self) -> None:
        self.dismiss(False)


def form_names(state: Any, branch_id: int | None) -> list[str]:
    """Stations and printers to suggest, stations first."""
    stations = sorted(
        {str(s["name"]) for s in state.stations if s.get("name")}
        | {str(p["station"]) for p in state.printers.values() if p.get("station")}
    )
    printers = sorted(
        str(p["name"]) for p in state.printers.values() if state.in_branch(p, branch_id)
    )
    return stations + [p for p in printers if p not in stations]
