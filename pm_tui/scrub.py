"""Everything the dashboard shows came from the hub, which took it from agents,
printers and branch hubs: a printer name carrying ``ESC ] 0;...BEL`` would retitle or
rewrite the operator's terminal. The hub link scrubs every string it receives (keys
too) before anything else sees it: each control character becomes its visible
picture (``␛``, ``␇``; ``�`` for C1 controls), so an attempt shows instead of acting.
Line feeds and tabs stay (ticket text has lines)."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC
    return "\u2421" if code == 0x7F else "\ufffd"


def scrub_text(text: str) -> str:
    return _CONTROL.sub(_picture, text) if _CONTROL.search(text) else text


def scrub(value: Any) -> Any:
    """``value`` with every string in it scrubbed (a new object only where needed)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
