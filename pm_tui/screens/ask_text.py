"""A one-line question (a printer's new name): enter answers, esc cancels."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class AskText(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    AskText {
        align: center middle;
    }
    AskText .ask {
        width: 60;
        max-width: 100%;
    }
    """

    def __init__(self, question: str, value: str = "", *, max_length: int = 100) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog ask"):
            yield Static(Text(self.question, style="bold"))
            yield Input(value=self.value, max_length=self.max_length, id="ask-input")
            yield Static("enter: save · esc: cancel", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#ask-input", Input).focus()

    @on(Input.Submitted, "#ask-input")
    def _answered(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
