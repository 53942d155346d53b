"""A printer's command language, how its text is printed and how it is asked its
status.

``language`` says which renderer makes the bytes for a printer:

* ``escpos``: ESC/POS through python-escpos (the default; Epson and most others)
* ``star_line``: Star Line mode (Star's own commands, text)
* ``starprnt``: StarPRNT mode (newer Star models)
* ``star_raster``: Star raster only (the TSP100/143 family takes nothing else)
* ``zpl``: a Zebra label printer; only ``raw_base64`` documents, sent as they are
* ``raw``: anything else; only ``raw_base64`` documents, sent as they are

The language also picks the status query (:data:`STATUS_DIALECTS`): ``DLE EOT 1-4``
for ``escpos``, Star's ``ESC ACK SOH`` for the Star languages, ``~HS`` for ``zpl``,
and nothing at all for ``raw`` (the agent only sees whether the connection works).

``text_mode`` says how text blocks go out on an ``escpos`` printer: ``auto`` (as
text in the printer's code pages where they hold the characters, else as an image)
or ``raster`` (always as an image, for printers whose code pages cannot be trusted).
"""

from __future__ import annotations

from pm_core.protocol.validation import invalid

LANGUAGES = ("escpos", "star_line", "starprnt", "star_raster", "zpl", "raw")
DEFAULT_LANGUAGE = "escpos"
#: Languages whose printers take only bytes made elsewhere (``raw_base64``), sent as
#: they are: no ESC/POS init, feed or cut around them.
PASS_THROUGH_LANGUAGES = frozenset({"zpl", "raw"})
#: Languages of Star printers (14b's renderers).
STAR_LANGUAGES = frozenset({"star_line", "starprnt", "star_raster"})

#: How a printer of each language is asked its status: ``escpos`` (DLE EOT 1-4),
#: ``star`` (ESC ACK SOH, Star's ASB), ``zpl`` (``~HS``), ``none`` (never asked).
STATUS_DIALECTS: dict[str, str] = {
    "escpos": "escpos",
    "star_line": "star",
    "starprnt": "star",
    "star_raster": "star",
    "zpl": "zpl",
    "raw": "none",
}

TEXT_MODES = ("auto", "raster")
DEFAULT_TEXT_MODE = "auto"


def check_language_field(value: object, key: str = "language") -> str | None:
    """A ``language`` field of a payload: one of :data:`LANGUAGES`, or None (automatic:
    from the printer's identity, else ``escpos``); raises the ``invalid_payload``
    ProtocolError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or value.strip() not in LANGUAGES:
        raise invalid(f"{key} must be one of {', '.join(LANGUAGES)} or null")
    return value.strip()


def check_text_mode_field(value: object, key: str = "text_mode") -> str | None:
    """A ``text_mode`` field: ``auto``, ``raster``, or None (the default, ``auto``);
    raises the ``invalid_payload`` ProtocolError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or value.strip() not in TEXT_MODES:
        raise invalid(f"{key} must be one of {', '.join(TEXT_MODES)} or null")
    return value.strip()
