"""The small form that adds a printer (``A``): the agent it is reached through (one of
the connected ones), its address, a name and a station. ``ctrl+s`` adds, ``esc``
closes; what is wrong shows under the form and nothing is sent."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static

from pm_core.protocol.printer_addresses import MAX_PRINTER_URI
from pm_tui.dashboard import as_dashboard
from pm_tui.printer_admin import PrinterAdmin, PrinterDraft, PrinterDraftError, add_payload


class AddPrinterForm(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "add", "add"),
        Binding("escape", "cancel", "cancel"),
    ]
    DEFAULT_CSS = """
    AddPrinterForm {
        align: center middle;
    }
    AddPrinterForm .add-printer {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
    }
    AddPrinterForm .row {
        height: auto;
    }
    AddPrinterForm .label {
        width: 9;
        padding: 0 1 0 0;
    }
    AddPrinterForm Input {
        width: 1fr;
        border: none;
        height: 1;
        background: $boost;
    }
    AddPrinterForm Select {
        width: 1fr;
    }
    AddPrinterForm #printer-error {
        color: $error;
        text-style: bold;
        height: auto;
    }
    """

    def __init__(self, agents: list[tuple[str, int]]) -> None:
        super().__init__()
        self.agents = agents
        self.sending = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog add-printer"):
            yield Static(Text("Add a printer", style="bold"))
            with Horizontal(classes="row"):
                yield Static("Agent", classes="label")
                chosen = Select(
                    self.agents,
                    prompt="no agent connected" if not self.agents else "choose the agent",
                    id="printer-agent",
                )
                if len(self.agents) == 1:  # the only one: chosen
                    chosen.value = self.agents[0][1]
                yield chosen
            with Horizontal(classes="row"):
                yield Static("Address", classes="label")
                yield Input(
                    placeholder="tcp://192.168.1.50:9100, usb://04b8:0202, serial:///dev/ttyUSB0",
                    max_length=MAX_PRINTER_URI,
                    id="printer-uri",
                )
            with Horizontal(classes="row"):
                yield Static("Name", classes="label")
                yield Input(placeholder="optional, e.g. Bar", max_length=100, id="printer-name")
            with Horizontal(classes="row"):
                yield Static("Station", classes="label")
                yield Input(placeholder="optional, e.g. bar", max_length=64, id="printer-station")
            yield Static(id="printer-error")
            yield Static("ctrl+s: add · tab: next field · esc: close", classes="dim")

    def on_mount(self) -> None:
        first = "#printer-uri" if len(self.agents) == 1 else "#printer-agent"
        self.query_one(first).focus()
        if not self.agents:
            self._error("No agent is connected: start the agent on the printer's box first")

    def draft(self) -> PrinterDraft:
        chosen = self.query_one("#printer-agent", Select).value
        return PrinterDraft(
            agent_id=chosen if isinstance(chosen, int) else None,
            uri=self.query_one("#printer-uri", Input).value,
            name=self.query_one("#printer-name", Input).value,
            station=self.query_one("#printer-station", Input).value,
        )

    def _error(self, message: str) -> None:
        self.query_one("#printer-error", Static).update(Text(message))

    @on(Input.Submitted)
    async def _entered(self, event: Input.Submitted) -> None:
        if event.input.id == "printer-station":
            await self.action_add()
        else:
            self.focus_next()

    async def action_add(self) -> None:
        if self.sending:
            return
        try:
            payload = add_payload(self.draft())
        except PrinterDraftError as exc:
            self._error(str(exc))
            return
        self._error("adding… (the agent is reaching the printer)")
        self.sending = True
        try:
            added = await PrinterAdmin(as_dashboard(self.app)).add(payload)
        finally:
            self.sending = False
        if added:
            self.dismiss(True)
        else:
            self._error("the hub refused it (see the message); change it or esc")

    def action_cancel(self) -> None:
        self.dismiss(False)
