"""Messages the dashboard passes around (small dataclasses, one module)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from pm_tui.hub_link import LinkState


@dataclass
class HubPulse(Message):
    """Hub events are waiting in the buffer. Bursts collapse into one pulse."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HubPulse)


@dataclass
class LinkChanged(Message):
    """The hub connection changed state."""

    state: LinkState

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinkChanged)
