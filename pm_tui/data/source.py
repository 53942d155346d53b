"""What the dashboard needs from its hub connection (HubLink, or SampleHub in tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pm_tui.hub_link import LinkState

EventSink = Callable[[str, Any], None]
StateSink = Callable[[LinkState], None]


class HubSource(Protocol):
    url: str
    state: LinkState

    def bind(self, *, on_event: EventSink, on_state: StateSink) -> None:
        """Say where hub events and link state changes go."""

    @property
    def connected(self) -> bool: ...

    async def run(self) -> None:
        """Connect and stay connected until cancelled (or the token is refused)."""

    async def call(
        self, event: str, payload: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        """Send a request; return its ack (an error ack when the hub cannot be asked)."""
        ...

    async def ping(self) -> float | None:
        """Round trip to the hub in milliseconds, or None."""
        ...

    async def close(self) -> None: ...


def unknown_event(ack: dict[str, Any]) -> bool:
    """True when the hub answered that it does not know this event (an older hub)."""
    error = ack.get("error") if not ack.get("ok") else None
    return (
        isinstance(error, dict)
        and error.get("code") == "invalid_payload"
        and "unknown event" in str(error.get("message", ""))
    )


def error_message(ack: dict[str, Any]) -> str:
    error = ack.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "failed")
    return "failed"
