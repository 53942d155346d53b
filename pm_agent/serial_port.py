"""ESC/POS printers on a serial line (RS-232, USB-serial adapters, USB CDC ACM
printers that show up as ``/dev/ttyACM0``) through pyserial.

``serial:///dev/ttyUSB0?baudrate=19200`` opens a device node;
``serial://socket://HOST:PORT`` and ``serial://rfc2217://HOST:PORT`` go through
pyserial's URL handlers (serial-over-LAN boxes, and the tests, which put the
simulated printer on the far side). URI options: ``baudrate`` (default 19200,
what most receipt printers ship with), ``bytesize`` (8), ``parity`` (N, E, O),
``stopbits`` (1, 2), ``flow`` (``none``, ``rtscts``, ``dsrdtr``, ``xonxoff``).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import serial

from pm_agent.printer_port import PrinterUnreachable
from pm_agent.stream_port import StreamPrinterPort

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 19200
#: Baud rates receipt printers ship with, most common first (discovery probes these).
COMMON_BAUDRATES = (19200, 9600, 38400, 115200)
FLOW_CONTROL = ("none", "rtscts", "dsrdtr", "xonxoff")


def serial_settings(options: dict[str, str]) -> dict[str, Any]:
    """pyserial keyword arguments from URI options; ValueError for bad values."""
    try:
        baudrate = int(options.get("baudrate", DEFAULT_BAUDRATE))
        bytesize = int(options.get("bytesize", 8))
        stopbits = float(options.get("stopbits", 1))
    except ValueError:
        raise ValueError("baudrate, bytesize and stopbits must be numbers") from None
    parity = options.get("parity", "N").upper()[:1]
    flow = options.get("flow", "none").lower()
    if parity not in ("N", "E", "O", "M", "S"):
        raise ValueError("parity must be N, E or O")
    if flow not in FLOW_CONTROL:
        raise ValueError(f"flow must be one of {', '.join(FLOW_CONTROL)}")
    return {
        "baudrate": baudrate,
        "bytesize": bytesize,
        "parity": parity,
        "stopbits": int(stopbits) if stopbits.is_integer() else stopbits,
        "rtscts": flow == "rtscts",
        "dsrdtr": flow == "dsrdtr",
        "xonxoff": flow == "xonxoff",
    }


def _explain(path: str, exc: BaseException) -> str:
    """A message a kitchen IT person can act on."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.EACCES or "Permission denied" in text:
        return (
            f"permission denied on {path}: add the agent's user to the 'dialout' group "
            "(sudo usermod -aG dialout USER, then log in again); see docs/printers.md"
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return f"{path} does not exist: is the printer (or its USB-serial adapter) plugged in?"
    if code == errno.EBUSY or "lock" in text.lower() or "busy" in text.lower():
        return (
            f"{path} is in use by another program (another agent, a getty, ModemManager?); "
            "see docs/printers.md"
        )
    return f"cannot open {path}: {text}"


class SerialPrinterPort(StreamPrinterPort):
    """An ESC/POS printer on a serial line."""

    garbage_hint = "wrong baud rate? The printer's self-test page shows the one it uses"

    def __init__(
        self,
        path: str,
        *,
        options: dict[str, str] | None = None,
        status_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        self.path = path
        self.settings = serial_settings(options or {})
        self.status_timeout = status_timeout
        self.description = f"serial://{path}"
        self._serial: serial.SerialBase | None = None

    @property
    def baudrate(self) -> int:
        return int(self.settings["baudrate"])

    def _open(self) -> None:
        kwargs: dict[str, Any] = dict(self.settings, timeout=0.05, write_timeout=5.0)
        try:
            if "://" in self.path:
                self._serial = serial.serial_for_url(self.path, **kwargs)
            else:
                self._serial = serial.Serial(self.path, exclusive=True, **kwargs)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PrinterUnreachable(f"{self.description}: {_explain(self.path, exc)}") from exc

    def _port(self) -> serial.SerialBase:
        if self._serial is None:
            raise ConnectionResetError("serial port is closed")
        return self._serial

    def _send(self, data: bytes, timeout: float) -> None:
        port = self._port()
        port.write_timeout = timeout
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise TimeoutError(
                f"the printer took no data for {timeout:.0f}s (flow control? paper?)"
            ) from exc
        except serial.SerialException as exc:
            raise ConnectionResetError(str(exc)) from exc

    def _recv(self, size: int, timeout: float) -> bytes:
        port = self._port()
        port.timeout = max(timeout, 0.001)
        try:
            return bytes(port.read(size))
        except serial.SerialException as exc:
            raise ConnectionResetError(str(exc)) from exc

    def _close_device(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            port.close()
