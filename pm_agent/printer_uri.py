"""Printer addresses as URIs: ``tcp://HOST:PORT``, ``usb://VID:PID``,
``serial:///dev/ttyUSB0?baudrate=19200``, ``file:///path``.

A configured printer may carry a name and a station: ``Kitchen-1=tcp://10.0.0.5:9100``
or ``tcp://10.0.0.5:9100#kitchen``... see :func:`parse_printer_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from pm_agent.capabilities import check_profile
from pm_agent.printer_language import check_language
from pm_core.protocol.languages import TEXT_MODES
from pm_core.protocol.printer_addresses import PRINTER_SCHEMES

SCHEMES = PRINTER_SCHEMES


@dataclass(frozen=True)
class PrinterSpec:
    """A printer the user told the agent about."""

    uri: str
    scheme: str
    name: str
    station: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return {"tcp": "network", "usb": "usb", "serial": "serial", "file": "file"}[self.scheme]


def parse_printer_uri(
    uri: str, *, name: str | None = None, station: str | None = None
) -> PrinterSpec:
    """Parse and check one URI; raises ValueError with a message a user can act on."""
    uri = uri.strip()
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"unsupported printer address {uri!r}: use tcp://HOST:PORT, usb://VID:PID, "
            "serial:///dev/ttyUSB0?baudrate=19200 or file:///path"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"{uri!r}: tcp:// needs a host, e.g. tcp://192.168.1.50:9100")
        try:
            port = parts.port or 9100
        except ValueError:
            raise ValueError(f"{uri!r}: bad port") from None
        canonical = f"tcp://{parts.hostname}:{port}"
        _check_options(uri, options)
        return PrinterSpec(
            uri=canonical,
            scheme=scheme,
            name=name or f"{parts.hostname}:{port}",
            station=station,
            host=parts.hostname,
            port=port,
            options=options,
        )
    if scheme == "usb":
        ident = (parts.netloc or parts.path.lstrip("/")).lower()
        vid, sep, pid = ident.partition(":")
        try:
            int(vid, 16)
            int(pid, 16)
        except ValueError:
            raise ValueError(
                f"{uri!r}: usb:// needs VID:PID in hex, e.g. usb://04b8:0202"
            ) from None
        if not sep:
            raise ValueError(f"{uri!r}: usb:// needs VID:PID in hex, e.g. usb://04b8:0202")
        _check_options(uri, options)
        canonical = f"usb://{vid}:{pid}"
        if "serial" in options:
            # Two identical USB printers differ only by their USB serial number.
            canonical += f"?serial={options['serial']}"
        return PrinterSpec(
            uri=canonical,
            scheme=scheme,
            name=name or f"USB {vid}:{pid}",
            station=station,
            path=ident,
            options=options,
        )
    if scheme == "serial" and "://" in uri.split("://", 1)[1]:
        return _pyserial_url_spec(uri, name=name, station=station)
    path = parts.path or parts.netloc
    if not path:
        raise ValueError(f"{uri!r}: {scheme}:// needs a path, e.g. {scheme}:///dev/ttyUSB0")
    canonical = f"{scheme}://{path}" + (f"?{parts.query}" if parts.query else "")
    _check_options(uri, options)
    return PrinterSpec(
        uri=canonical,
        scheme=scheme,
        name=name or path.rsplit("/", 1)[-1],
        station=station,
        path=path,
        options=options,
    )


def _pyserial_url_spec(uri: str, *, name: str | None, station: str | None) -> PrinterSpec:
    """``serial://socket://HOST:PORT`` or ``serial://rfc2217://HOST:PORT``: a serial
    line reached through one of pyserial's URL handlers (serial-over-LAN boxes,
    tests with the simulated printer on the far side)."""
    inner, _, query = uri.split("://", 1)[1].partition("?")
    handler, _, rest = inner.partition("://")
    if handler.lower() not in ("socket", "rfc2217", "loop") or not rest:
        raise ValueError(
            f"{uri!r}: use serial:///dev/ttyUSB0, serial://socket://HOST:PORT "
            "or serial://rfc2217://HOST:PORT"
        )
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    _check_options(uri, options)
    return PrinterSpec(
        uri=f"serial://{inner}" + (f"?{query}" if query else ""),
        scheme="serial",
        name=name or rest,
        station=station,
        path=inner,
        options=options,
    )


def _check_options(uri: str, options: dict[str, str]) -> None:
    for key in ("baudrate", "columns"):
        if key in options and not options[key].isdigit():
            raise ValueError(f"{uri!r}: {key} must be a number")
    if "profile" in options:
        check_profile(options["profile"])
    if "language" in options:
        check_language(options["language"])
    if "text_mode" in options and options["text_mode"] not in TEXT_MODES:
        raise ValueError(f"{uri!r}: text_mode must be one of {', '.join(TEXT_MODES)}")


def parse_printer_spec(text: str) -> PrinterSpec:
    """``[NAME=]URI[#STATION]``: ``Kitchen-1=tcp://127.0.0.1:9101#kitchen``."""
    name = station = None
    body = text.strip()
    if "#" in body:
        body, station = body.rsplit("#", 1)
        station = station.strip().lower() or None
    if "=" in body.split("://", 1)[0]:
        name, body = body.split("=", 1)
        name = name.strip() or None
    return parse_printer_uri(body, name=name, station=station)
