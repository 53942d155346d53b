"""What a simulated Zebra label printer reads: ZPL labels (``^XA ... ^XZ``) and the
``~HS`` status query between or inside them.

:class:`LabelStream` takes the bytes of one connection as they come, in chunks cut
anywhere, and gives back, in stream order, :class:`StatusQuery` for each ``~HS``
and :class:`Label` for each label ended by ``^XZ``. ZPL commands are read without
regard to case, like a Zebra printer does. Changed command prefixes (``~CC``,
``~CT``) are not followed: the simulator speaks the default ``^`` and ``~``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(rb"~HS|\^XZ", re.IGNORECASE)
#: Ends of a chunk that may be the start of a token cut by the chunk boundary.
_PARTIAL = re.compile(rb"(~H?|\^X?)\Z", re.IGNORECASE)


@dataclass(frozen=True)
class StatusQuery:
    """``~HS``: the printer answers its host status at once."""


@dataclass(frozen=True)
class Label:
    """One label's ZPL, up to and with its ``^XZ`` (``ended`` False: the connection
    closed before it)."""

    zpl: bytes
    ended: bool = True

    @property
    def text(self) -> str:
        return self.zpl.decode("latin-1")


class LabelStream:
    """Splits one connection's bytes into labels and status queries."""

    def __init__(self) -> None:
        self._label = bytearray()
        self._tail = b""

    def feed(self, data: bytes) -> list[StatusQuery | Label]:
        buffer = self._tail + data
        partial = _PARTIAL.search(buffer)
        cut = partial.start() if partial else len(buffer)
        buffer, self._tail = buffer[:cut], buffer[cut:]
        events: list[StatusQuery | Label] = []
        position = 0
        for match in _TOKEN.finditer(buffer):
            self._label += buffer[position : match.start()]
            position = match.end()
            if match.group().upper() == b"~HS":
                events.append(StatusQuery())
            else:
                self._label += match.group()
                events.append(Label(bytes(self._label)))
                self._label.clear()
        self._label += buffer[position:]
        return events

    def flush(self) -> list[StatusQuery | Label]:
        """The connection closed: what is left, as an unended label."""
        rest = bytes(self._label) + self._tail
        self._label.clear()
        self._tail = b""
        return [Label(rest, ended=False)] if rest.strip() else []
