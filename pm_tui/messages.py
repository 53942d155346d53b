"""Messages the dashboard passes around (small classes, one module)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from pm_tui.hub_link import LinkState


class HubEvent(Message):
    """An event pushed by the hub (printer:update, job:update, ...)."""

    def __init__(self, event: str, data: Any) -> None:
        super().__init__()
        self.event = event
        self.data = data


class HubPulse(Message):
    """Hub events are waiting in the buffer. Bursts collapse into one pulse."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HubPulse)


class LinkChanged(Message):
    """The hub connection changed state."""

    def __init__(self, state: LinkState) -> None:
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinkChanged)
