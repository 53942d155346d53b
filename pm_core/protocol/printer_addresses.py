"""Printer addresses an operator gives the hub for an agent (``printer:add``): checked
at the hub before the agent is asked, and again by the agent
(``pm_agent.printer_uri``). Only the schemes the agent drives; nothing is contacted
here.

- ``tcp://HOST[:PORT]``: a host name or address, port 1-65535 (9100 if none), no
  user, path or query beyond the agent's options (``?profile=...``).
- ``usb://VID:PID[?serial=...]``: hex ids.
- ``serial:///dev/...`` (or ``serial://socket://HOST:PORT``, ``rfc2217://``).
- ``file:///dev/...``: a device node only. Over the wire a file address may not name
  an ordinary file (the agent would append print bytes to it); such printers are
  configured on the agent's own box.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from pm_core.protocol.validation import control_characters, invalid

#: The schemes the agent drives (``pm_agent.printer_uri`` parses them).
PRINTER_SCHEMES = ("tcp", "usb", "serial", "file")
#: Longest printer address accepted over the wire.
MAX_PRINTER_URI = 300
#: Options the agent reads from an address's query.
URI_OPTIONS = ("baudrate", "columns", "profile", "language", "text_mode", "serial")

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")
_HEX_ID = re.compile(r"^[0-9a-fA-F]{1,4}$")
_DEVICE = re.compile(r"^/dev/[A-Za-z0-9_./\-]+$")

USE = (
    "use tcp://HOST:PORT, usb://VID:PID, serial:///dev/ttyUSB0?baudrate=19200 "
    "or file:///dev/usb/lp0"
)


def check_printer_uri(value: object) -> str:
    """The address, stripped; raises ``invalid_payload`` saying what is wrong."""
    if not isinstance(value, str):
        raise invalid(f"uri must be a printer address: {USE}")
    uri = value.strip()
    if not uri:
        raise invalid(f"uri is empty: {USE}")
    if len(uri) > MAX_PRINTER_URI:
        raise invalid(f"uri is too long (at most {MAX_PRINTER_URI} characters)")
    if control_characters(uri) or any(c.isspace() for c in uri):
        raise invalid("uri may not hold spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise invalid(f"uri {uri!r} is not an address: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in PRINTER_SCHEMES or "://" not in uri:
        raise invalid(f"unsupported printer address {uri!r}: {USE}")
    if "@" in parts.netloc or parts.fragment:
        raise invalid(f"uri {uri!r}: no user name or #fragment in a printer address")
    _check_query(uri, parts.query)
    if scheme == "tcp":
        _check_tcp(uri, parts.netloc, parts.path)
    elif scheme == "usb":
        vid, sep, pid = (parts.netloc or parts.path.lstrip("/")).partition(":")
        if not sep or not _HEX_ID.match(vid) or not _HEX_ID.match(pid):
            raise invalid(f"uri {uri!r}: usb:// needs VID:PID in hex, e.g. usb://04b8:0202")
    elif scheme == "serial" and "://" in uri.split("://", 1)[1]:
        inner = uri.split("://", 1)[1].partition("?")[0]
        handler, _, rest = inner.partition("://")
        if handler.lower() not in ("socket", "rfc2217"):
            raise invalid(f"uri {uri!r}: use serial://socket://HOST:PORT or rfc2217://")
        _check_tcp(uri, rest, "")
    else:
        path = parts.path or parts.netloc
        if not _DEVICE.match(path) or "/../" in f"{path}/":
            raise invalid(
                f"uri {uri!r}: {scheme}:// takes a device under /dev, e.g. {scheme}:///dev/"
                + ("ttyUSB0" if scheme == "serial" else "usb/lp0")
            )
    return uri


def _check_tcp(uri: str, netloc: str, path: str) -> None:
    if path not in ("", "/"):
        raise invalid(f"uri {uri!r}: tcp:// takes HOST:PORT only, e.g. tcp://192.168.1.50:9100")
    host, _, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not host:
        host, port = netloc, ""
    if not _HOST.match(host):
        raise invalid(f"uri {uri!r}: needs a host, e.g. tcp://192.168.1.50:9100")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise invalid(f"uri {uri!r}: the port must be 1 to 65535")


def _check_query(uri: str, query: str) -> None:
    try:
        options = parse_qs(query, strict_parsing=bool(query), max_num_fields=len(URI_OPTIONS))
    except ValueError as exc:
        raise invalid(f"uri {uri!r}: bad options: {exc}") from None
    unknown = sorted(set(options) - set(URI_OPTIONS))
    if unknown:
        raise invalid(f"uri {uri!r}: unknown option {unknown[0]!r} ({', '.join(URI_OPTIONS)})")
