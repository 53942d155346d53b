"""Small modal screens: help, a start-up notice, yes/no, and choosing a printer's
station."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from pm_core.protocol.records import PrinterRecord
from pm_tui.legend import legend_text

HELP = """\
[b]PrinterMaster dashboard[/b]: everything works from the keyboard.

[b]Anywhere[/b]
  1-6        Printers, Jobs, Alerts, Agents, Branches, Logs
  ? or F1    this help            ctrl+p  palette: printers, jobs, actions
  ctrl+r     reload from the hub  q       quit
  esc        back / close / clear the filter

[b]Printers[/b]  (problems sort first; the selected printer shows underneath)
  /          filter: name, station, status, address, [i]problem[/i], [i]paused[/i]
  o          sort: problems, name, station, seen, queue (or click a header)
  enter      printer detail: status history, waiting tickets and why,
             recent jobs; c cancels every waiting ticket, b moves them to a backup
  t          test print          s       send a test receipt (a small job)
  p          pause (asks) / resume  m    move to another station
  n          print a typed ticket (a station or printer, lines, copies)
  e          rename the printer (managers and admins)
  A          add a printer by its address, through a connected agent (managers)
  D or del   remove the printer (asks; refused while tickets wait: cancel or
             move them first) · also in the detail
  detail:    a activity chart / status history · l the printer's log lines

[b]Jobs[/b]  (stuck tickets first, each saying why it waits; then the newest)
  /          filter as you type: status:failed printer:Kitchen-1 station:bar
             since:30m until:10:30 and any words
  s          status: all, active, failed, completed, cancelled
  enter      event trail and the ticket: what the printer was sent, read
             back from its bytes (else the document) · v switches the two
  c          cancel (asks first)  r       reprint (asks first)
  space      mark rows; c then cancels every marked job
  l          the job's log lines  n       print a typed ticket

[b]Alerts[/b]   a acknowledge (the marked ones: space marks) · A every open one
         o open only / all · enter opens the printer
[b]Agents[/b]   latency (last hour), loss, uptime, reconnects, spool · r refresh
[b]Branches[/b] enter shows only that branch everywhere; the first row shows all
[b]Logs[/b]     the hub's lines, live (managers, admins) · v level · p this printer
         o this job · x clear · enter opens the job or printer

Status words are always spelled out (ONLINE, PAPER OUT, OFFLINE...), so the
dashboard reads the same in a monochrome terminal.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "close"),
    ]

    def __init__(self, notice: str | None = None) -> None:
        super().__init__()
        #: What the dashboard was started with to say (the demo's URLs and commands).
        self.notice = notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            if self.notice:
                yield Static(Text(self.notice), id="help-notice")
            yield Static(HELP)
            yield Static(legend_text(), id="legend")

    def action_close(self) -> None:
        self.dismiss(None)


class NoticeDialog(ModalScreen[None]):
    """What the dashboard was started with to say, whole (the demo: its URL, token file
    and the exact ``pm simctl`` and ``curl`` lines): too long for a one-line toast. Any
    key closes it; the help (``?``) shows it again."""

    def __init__(self, notice: str) -> None:
        super().__init__()
        self.notice = notice

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="notice", classes="dialog"):
            yield Static(Text(self.notice), id="notice-text")
            yield Static("any key: close · ? help shows this again", classes="dim")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss(None)

    def on_click(self, event: events.Click) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "yes", "yes"),
        Binding("n,escape", "no", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Static(Text(self.question, style="bold"))
            yield Static("y / enter: yes    n / esc: no", classes="dim")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class StationDialog(ModalScreen[str | None]):
    """Type a station (existing ones are suggested and listed); empty means none."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, printer: PrinterRecord, stations: list[str]) -> None:
        super().__init__()
        self.printer = printer
        self.stations = stations

    def compose(self) -> ComposeResult:
        current = self.printer.get("station") or "no station"
        with Vertical(classes="dialog station"):
            yield Static(
                Text.assemble(
                    "Move ", (str(self.printer.get("name")), "bold"), f" (now: {current}) to:"
                )
            )
            yield Input(
                value=str(self.printer.get("station") or ""),
                placeholder="station name (empty: no station)",
                suggester=SuggestFromList(self.stations, case_sensitive=False),
                id="station-input",
            )
            if self.stations:
                yield OptionList(*[Option(s, id=s) for s in self.stations], id="station-list")
            yield Static("enter: move · tab: pick from the list · esc: cancel", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#station-input", Input).focus()

    @on(Input.Submitted, "#station-input")
    def _typed(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    @on(OptionList.OptionSelected, "#station-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id or ""))

    def action_cancel(self) -> None:
        self.dismiss(None)
