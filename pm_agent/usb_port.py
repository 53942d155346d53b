"""ESC/POS printers on USB through pyusb (libusb).

``usb://04b8:0202`` is the first device with that vendor and product id;
``usb://04b8:0202?serial=ABC123`` picks one of several identical printers by
its USB serial number; ``?interface=N`` names the interface when the printer
has more than one. The kernel's ``usblp`` driver is detached from the interface
first (it would hold it otherwise) and given back when the port is closed.

"Access denied" and "Resource busy" end as :class:`PrinterUnreachable` with a
message that says what to do (the udev rule and the rest are in
``docs/printers.md``).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import usb.core
import usb.util

from pm_agent.printer_port import PrinterUnreachable
from pm_agent.stream_port import StreamPrinterPort

log = logging.getLogger(__name__)

PRINTER_CLASS = 0x07
WRITE_CHUNK = 4096

UDEV_HINT = (
    "give the agent's user access with a udev rule: "
    'SUBSYSTEM=="usb", ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}", '
    'MODE="0660", GROUP="lp" in /etc/udev/rules.d/60-printermaster.rules, then '
    "`sudo udevadm control --reload-rules && sudo udevadm trigger`, add the user to "
    "group lp and re-plug the printer (docs/printers.md)"
)
BUSY_HINT = (
    "another program holds the printer: CUPS or another PrinterMaster agent "
    "(stop it, or remove the printer from CUPS), or the usblp kernel driver could "
    "not be detached (run the agent as a user that may, or blacklist usblp: "
    "docs/printers.md)"
)


def usb_error_text(exc: BaseException, vid: int, pid: int) -> str:
    """What a kitchen IT person should do about a pyusb error."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    ids = {"vid": f"{vid:04x}", "pid": f"{pid:04x}"}
    if code == errno.EACCES or "Access denied" in text or "insufficient permissions" in text:
        return "access denied: " + UDEV_HINT.format(**ids)
    if code == errno.EBUSY or "Resource busy" in text:
        return "resource busy: " + BUSY_HINT
    if code in (errno.ENODEV, errno.ENOENT) or "No such device" in text:
        return "the printer was unplugged or switched off"
    return text


class UsbPrinterPort(StreamPrinterPort):
    """An ESC/POS printer on USB (bulk OUT for data, bulk IN for answers)."""

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        *,
        serial_number: str | None = None,
        interface: int | None = None,
        backend: Any = None,
        status_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.serial_number = serial_number
        self.interface_number = interface
        self.backend = backend
        self.status_timeout = status_timeout
        self.description = f"usb://{vendor_id:04x}:{product_id:04x}" + (
            f"?serial={serial_number}" if serial_number else ""
        )
        self._device: Any = None
        self._interface: Any = None
        self._ep_out: Any = None
        self._ep_in: Any = None
        self._detached = False
        self._pending = b""

    @classmethod
    def from_spec(cls, spec: Any, *, backend: Any = None) -> UsbPrinterPort:
        vid, _, pid = str(spec.path).partition(":")
        interface = spec.options.get("interface")
        return cls(
            int(vid, 16),
            int(pid, 16),
            serial_number=spec.options.get("serial"),
            interface=int(interface) if interface and interface.isdigit() else None,
            backend=backend,
        )

    # -- opening -----------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> PrinterUnreachable:
        text = usb_error_text(exc, self.vendor_id, self.product_id)
        return PrinterUnreachable(f"{self.description}: {text}")

    def _find(self) -> Any:
        problems: list[usb.core.USBError] = []

        def matches(dev: Any) -> bool:
            if self.serial_number is None:
                return True
            try:
                langids = usb.util.get_langids(dev)  # raises when the device cannot be opened
                if not langids or not dev.iSerialNumber:
                    return False
                serial = usb.util.get_string(dev, dev.iSerialNumber, langids[0])
                return bool(serial == self.serial_number)
            except usb.core.USBError as exc:
                problems.append(exc)  # reading the serial needs access to the device
                return False
            except ValueError:
                return False

        try:
            device = usb.core.find(
                idVendor=self.vendor_id,
                idProduct=self.product_id,
                backend=self.backend,
                custom_match=matches,
            )
        except usb.core.NoBackendError as exc:
            raise PrinterUnreachable(
                f"{self.description}: no USB library found: install libusb-1.0 "
                "(apt install libusb-1.0-0)"
            ) from exc
        except usb.core.USBError as exc:
            raise self._unreachable(exc) from exc
        if device is None and problems:
            raise self._unreachable(problems[0])
        if device is None:
            raise PrinterUnreachable(
                f"{self.description}: no such USB device plugged in (`lsusb` lists what is)"
            )
        return device

    def _pick_interface(self, config: Any) -> Any:
        interfaces = list(config)
        if self.interface_number is not None:
            for intf in interfaces:
                if intf.bInterfaceNumber == self.interface_number:
                    return intf
            raise PrinterUnreachable(
                f"{self.description}: no interface {self.interface_number} on this device"
            )
        with_out = [i for i in interfaces if _endpoint(i, usb.util.ENDPOINT_OUT) is not None]
        for intf in with_out:
            if intf.bInterfaceClass == PRINTER_CLASS:
                return intf
        if with_out:
            return with_out[0]
        raise PrinterUnreachable(f"{self.description}: the device has no bulk OUT endpoint")

    def _open(self) -> None:
        device = self._find()
        try:
            try:
                config = device.get_active_configuration()
            except usb.core.USBError:
                device.set_configuration()
                config = device.get_active_configuration()
            intf = self._pick_interface(config)
            number = intf.bInterfaceNumber
            try:
                if device.is_kernel_driver_active(number):
                    device.detach_kernel_driver(number)
                    self._detached = True
                    log.info("%s: detached the kernel driver", self.description)
            except NotImplementedError:
                pass  # not on this platform (Windows, macOS): nothing to detach
            usb.util.claim_interface(device, number)
        except usb.core.USBError as exc:
            self._release(device)
            raise self._unreachable(exc) from exc
        except PrinterUnreachable:
            self._release(device)
            raise
        self._device = device
        self._interface = intf
        self._ep_out = _endpoint(intf, usb.util.ENDPOINT_OUT)
        self._ep_in = _endpoint(intf, usb.util.ENDPOINT_IN)
        if self._ep_in is None:
            log.warning("%s has no bulk IN endpoint: no status answers", self.description)
        log.info("%s open (interface %d)", self.description, number)

    def _release(self, device: Any) -> None:
        try:
            usb.util.dispose_resources(device)
        except usb.core.USBError:
            pass

    # -- I/O -----------------------------------------------------------------------------

    def _send(self, data: bytes, timeout: float) -> None:
        if self._device is None:
            raise ConnectionResetError("USB device is closed")
        view = memoryview(data)
        try:
            while view:
                written = self._ep_out.write(view[:WRITE_CHUNK].tobytes(), int(timeout * 1000))
                view = view[max(int(written), 1) :]
        except usb.core.USBTimeoutError as exc:
            raise TimeoutError(f"the printer took no data for {timeout:.0f}s") from exc
        except usb.core.USBError as exc:
            raise ConnectionResetError(
                usb_error_text(exc, self.vendor_id, self.product_id)
            ) from exc

    def _recv(self, size: int, timeout: float) -> bytes:
        if self._device is None:
            raise ConnectionResetError("USB device is closed")
        if self._pending:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            return chunk
        if self._ep_in is None:
            return b""
        packet = max(int(self._ep_in.wMaxPacketSize), 1)
        try:
            # A bulk IN read must ask for whole packets or libusb reports an overflow.
            data = self._ep_in.read(max(packet, size), max(int(timeout * 1000), 1))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise ConnectionResetError(
                usb_error_text(exc, self.vendor_id, self.product_id)
            ) from exc
        received = bytes(data)
        self._pending = received[size:]
        return received[:size]

    def _close_device(self) -> None:
        device, self._device = self._device, None
        self._pending = b""
        if device is None:
            return
        number = self._interface.bInterfaceNumber if self._interface is not None else None
        try:
            if number is not None:
                usb.util.release_interface(device, number)
            if self._detached and number is not None:
                device.attach_kernel_driver(number)
        except (usb.core.USBError, NotImplementedError) as exc:
            log.debug("%s: giving the interface back: %s", self.description, exc)
        finally:
            self._detached = False
            self._release(device)


def _endpoint(intf: Any, direction: int) -> Any:
    return usb.util.find_descriptor(
        intf,
        custom_match=lambda ep: (
            usb.util.endpoint_direction(ep.bEndpointAddress) == direction
            and usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK
        ),
    )
