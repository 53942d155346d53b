"""Which command language a printer speaks, from what it says about itself.

* the IEEE 1284 device id of a USB printer (``CMD:STAR;`` or ``CMD:ESC/POS;``,
  with its ``MDL:``);
* the model name (USB product string, mDNS service name or TXT ``ty``/``product``,
  ``GS I``): Star's TSP100/TSP143 family (futurePRNT) takes only raster, mC-Print
  and mC-Label speak StarPRNT, other Star models (TSP650/700/800, SP700) Star Line.

None means "nothing says": the printer is taken for ESC/POS. An operator's choice
(``printer:configure {language}``) and ``?language=`` on the address win over all
of this.
"""

from __future__ import annotations

import re

from pm_core.protocol.languages import LANGUAGES

DEFAULT_LANGUAGE = "escpos"
#: Normalised model prefixes -> language; longest first wins.
MODEL_LANGUAGES: dict[str, str] = {
    "TSP1": "star_raster",  # TSP100, TSP113, TSP143 (futurePRNT: raster only)
    "MC-PRINT": "starprnt",
    "MCPRINT": "starprnt",
    "MCP": "starprnt",
    "MC-LABEL": "starprnt",
    "TSP6": "star_line",
    "TSP7": "star_line",
    "TSP8": "star_line",
    "SP7": "star_line",
    "TUP": "star_line",
    "FVP": "star_line",
    "SM-": "star_line",
}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s_();,]+", text.upper()) if w]


def language_for_model(model: str | None) -> str | None:
    """The language of a model name (``Star TSP143IIIU``, ``TSP654II``), or None
    when the name says nothing about it."""
    if not model:
        return None
    words = _words(model)
    for word in words:
        for prefix in sorted(MODEL_LANGUAGES, key=len, reverse=True):
            if word.startswith(prefix):
                return MODEL_LANGUAGES[prefix]
    if "STAR" in words:
        return "star_line"  # a Star printer of a model not listed: its default mode
    return None


def language_for_command_set(command_set: str | None, model: str | None = None) -> str | None:
    """The language of an IEEE 1284 ``CMD:`` field (with the ``MDL:`` to tell a
    raster-only Star model), or None when it says nothing we know."""
    if not command_set:
        return None
    commands = command_set.upper()
    if "STARPRNT" in commands:
        return "starprnt"
    if "STAR" in commands:
        by_model = language_for_model(model)
        return by_model if by_model and by_model != "escpos" else "star_line"
    if "ESC/POS" in commands or "ESCPOS" in commands:
        return "escpos"
    if "ZPL" in commands:
        return "zpl"
    return None


def check_language(name: str) -> str:
    """``name`` if it is a language; ValueError listing them otherwise."""
    if name not in LANGUAGES:
        raise ValueError(f"unknown printer language {name!r}; use one of {', '.join(LANGUAGES)}")
    return name
