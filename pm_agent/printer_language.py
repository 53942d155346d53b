"""Which command language a printer speaks, from what it says about itself.

* the IEEE 1284 device id of a USB printer (``CMD:STAR;`` or ``CMD:ESC/POS;``,
  with its ``MDL:``);
* the model name (USB product string, mDNS service name or TXT ``ty``/``product``,
  ``GS I``), only where the model speaks nothing else: Star's TSP100/TSP143 family
  (futurePRNT) takes only raster. Other Star models (TSP650/700/800, SP700, mC-Print)
  can be switched to ESC/POS emulation, so their name alone decides nothing: the
  ``CMD:`` field says which mode the printer is in (``CMD:STAR`` Star Line,
  ``CMD:STARPRNT`` StarPRNT), else an operator does.

None means "nothing says": the printer is taken for ESC/POS. An operator's choice
(``printer:configure {language}``) and ``?language=`` on the address win over all
of this.
"""

from __future__ import annotations

import re

from pm_core.protocol.languages import LANGUAGES

DEFAULT_LANGUAGE = "escpos"
#: Normalised model prefixes of models that speak one language only -> that language.
MODEL_LANGUAGES: dict[str, str] = {
    "TSP1": "star_raster",  # TSP100, TSP113, TSP143 (futurePRNT: raster only)
}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s_();,]+", text.upper()) if w]


def language_for_model(model: str | None) -> str | None:
    """The language of a model name that speaks only one (``Star TSP143IIIU``:
    star_raster), or None when the name alone cannot tell (``TSP654II`` may be in
    ESC/POS emulation)."""
    if not model:
        return None
    for word in _words(model):
        for prefix in sorted(MODEL_LANGUAGES, key=len, reverse=True):
            if word.startswith(prefix):
                return MODEL_LANGUAGES[prefix]
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
        return language_for_model(model) or "star_line"
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
