"""The port for a printer address: :func:`open_port` turns a
:class:`~pm_agent.printer_uri.PrinterSpec` into the :class:`PrinterPort` that
talks to it (TCP, USB, serial or a file)."""

from __future__ import annotations

from typing import Any

from pm_agent.file_port import FilePrinterPort
from pm_agent.printer_port import PrinterPort
from pm_agent.printer_uri import PrinterSpec
from pm_agent.tcp_port import TcpPrinterPort


def open_port(spec: PrinterSpec, *, usb_backend: Any = None) -> PrinterPort:
    """The port for ``spec`` (nothing is opened yet: each port connects on first use,
    on the printer's worker thread). ``usb_backend``: a pyusb backend (default:
    libusb, found by pyusb)."""
    if spec.scheme == "tcp":
        return TcpPrinterPort(str(spec.host), spec.port or 9100)
    if spec.scheme == "file":
        return FilePrinterPort(str(spec.path))
    # pyusb and pyserial are loaded only for an agent that has such a printer.
    if spec.scheme == "usb":
        from pm_agent.usb_port import UsbPrinterPort

        return UsbPrinterPort.from_spec(spec, backend=usb_backend)
    if spec.scheme == "serial":
        from pm_agent.serial_port import SerialPrinterPort

        return SerialPrinterPort(str(spec.path), options=spec.options)
    raise ValueError(f"{spec.uri}: {spec.scheme} printers are not supported")
