"""A printer's command language (temporary copy until the text helper's lands).

``language`` on a printer (``printer:configure {printer_id, language}``, ``null``
for automatic) says which command set its tickets are made in.
"""

from __future__ import annotations

from pm_core.protocol.validation import invalid

LANGUAGES = ("escpos", "star_line", "starprnt", "star_raster", "zpl", "raw")


def check_language_field(value: object, key: str = "language") -> str | None:
    """A ``language`` field of a payload: one of :data:`LANGUAGES`, or None
    (automatic); raises the ``invalid_payload`` ProtocolError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or value.strip() not in LANGUAGES:
        raise invalid(f"{key} must be one of {', '.join(LANGUAGES)} or null")
    return value.strip()
