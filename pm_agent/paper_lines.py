"""Decoded printer events as lines of paper: what the simulated printer's receipts
(:mod:`pm_agent.sim.receipt`) and the agent's sent preview
(:mod:`pm_agent.sent_preview`) both read.

:class:`PaperLines` has one line per line feed, text decoded as the printer decodes
it (code page or double-byte), barcodes as ``[BARCODE CODE128 data]``, QR codes as
``[QR data]``; pictures go through :meth:`PaperLines.picture`, which a subclass
draws its own way.
"""

from __future__ import annotations

from pm_agent.escpos_events import Barcode, Image, LineFeed, QRCode, Text
from pm_agent.escpos_events import Feed as FeedEvent


class PaperLines:
    """The lines printed so far, from events fed one by one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line: list[str] = []
        self.has_content = False

    def add_event(self, event: object) -> None:
        """One decoded event (those that put nothing on paper are ignored)."""
        if isinstance(event, Text):
            self.line.append(event.text)
            self.has_content = True
        elif isinstance(event, LineFeed):
            self._newline()
            self.has_content = True
        elif isinstance(event, FeedEvent):
            if event.lines == 0:
                if self.line:
                    self._newline()
            else:
                self._newline()
                self.lines.extend([""] * (event.lines - 1))
        elif isinstance(event, Barcode):
            self.block(f"[BARCODE {event.kind} {event.data}]")
        elif isinstance(event, QRCode):
            self.block(f"[QR {event.data}]")
        elif isinstance(event, Image):
            self.picture(event)

    def picture(self, event: Image) -> None:
        """An ESC/POS bit image (its size only, here)."""
        self.block(f"[IMAGE {event.width}x{event.height}]")

    def _newline(self) -> None:
        self.lines.append("".join(self.line))
        self.line = []

    def block(self, text: str) -> None:
        """A line of its own (the text waiting on the current line is printed first)."""
        if self.line:
            self._newline()
        self.lines.append(text)
        self.has_content = True

    def all_lines(self) -> list[str]:
        """Every line, the one not yet fed included, trailing blank lines dropped."""
        lines = [*self.lines, "".join(self.line)] if self.line else list(self.lines)
        while lines and not lines[-1].strip():
            lines.pop()  # the feed before the cut
        return lines

    def text(self) -> str:
        return "\n".join(self.all_lines())
