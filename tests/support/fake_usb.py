"""A fake pyusb backend: USB devices at the device boundary only.

pyusb itself (``usb.core.find``, ``Device``, ``usb.util``) runs for real on top of
:class:`FakeBackend`, which answers descriptor reads, string and IEEE 1284
requests, claims, kernel-driver calls and bulk transfers like libusb would. A
:class:`FakeUsbPrinter` forwards its bulk OUT endpoint to a simulated printer
over TCP on 127.0.0.1 and reads its bulk IN endpoint from there, so status, GS I
and receipts are the simulator's own.
"""

from __future__ import annotations

import array
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import usb.backend
import usb.core

EP_OUT = 0x01
EP_IN = 0x82
BULK = 0x02


@dataclass
class _Descriptor:
    fields: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class FakeUsbDevice:
    """Descriptors and behaviour of one device on the fake bus."""

    vendor_id: int
    product_id: int
    interface_class: int = 0x07
    device_class: int = 0x00
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    ieee1284_id: str | None = None
    bulk: bool = True
    #: errno raised by open / claim, like libusb does for a device the user may not
    #: use (EACCES) or one another driver or program holds (EBUSY).
    open_errno: int | None = None
    claim_errno: int | None = None
    kernel_driver: bool = False
    far_side: tuple[str, int] | None = None  #: a simulated printer's address
    bus: int = 1
    address: int = 1
    plugged: bool = True
    detached: int = 0
    attached: int = 0
    claimed: set[int] = field(default_factory=set)
    written: bytearray = field(default_factory=bytearray)
    #: Called with each bulk OUT transfer once the device took it (e.g. to unplug it).
    after_write: Callable[[bytes], None] | None = None
    _sock: socket.socket | None = None

    def strings(self) -> dict[int, str]:
        return {
            i: s
            for i, s in ((1, self.manufacturer), (2, self.product), (3, self.serial_number))
            if s
        }

    # -- the far side ------------------------------------------------------------------------

    def link(self) -> socket.socket | None:
        if not self.plugged:
            raise usb.core.USBError("No such device", errno.ENODEV, errno.ENODEV)
        if self.far_side is None:
            return None
        if self._sock is None:
            self._sock = socket.create_connection(self.far_side, timeout=2)
        return self._sock

    def unplug(self) -> None:
        self.plugged = False
        self.unplug_link()

    def plug(self) -> None:
        self.plugged = True

    def unplug_link(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class FakeBackend(usb.backend.IBackend):
    """Just enough of libusb for pyusb and the agent."""

    def __init__(self, *devices: FakeUsbDevice) -> None:
        self.devices = list(devices)
        self.configured: dict[int, int] = {}

    # -- descriptors -----------------------------------------------------------------------

    def enumerate_devices(self) -> Any:
        return iter([d for d in self.devices if d.plugged])

    def get_device_descriptor(self, dev: FakeUsbDevice) -> Any:
        strings = dev.strings()
        return _Descriptor(
            {
                "bLength": 18,
                "bDescriptorType": 1,
                "bcdUSB": 0x0200,
                "bDeviceClass": dev.device_class,
                "bDeviceSubClass": 0,
                "bDeviceProtocol": 0,
                "bMaxPacketSize0": 64,
                "idVendor": dev.vendor_id,
                "idProduct": dev.product_id,
                "bcdDevice": 0x0100,
                "iManufacturer": 1 if 1 in strings else 0,
                "iProduct": 2 if 2 in strings else 0,
                "iSerialNumber": 3 if 3 in strings else 0,
                "bNumConfigurations": 1,
                "address": dev.address,
                "bus": dev.bus,
                "port_number": 1,
                "port_numbers": (1,),
                "speed": 3,
            }
        )

    def get_configuration_descriptor(self, dev: FakeUsbDevice, config: int) -> Any:
        if config != 0:
            raise IndexError(config)
        return _Descriptor(
            {
                "bLength": 9,
                "bDescriptorType": 2,
                "wTotalLength": 32,
                "bNumInterfaces": 1,
                "bConfigurationValue": 1,
                "iConfiguration": 0,
                "bmAttributes": 0xC0,
                "bMaxPower": 50,
                "extra_descriptors": [],
            }
        )

    def get_interface_descriptor(self, dev: FakeUsbDevice, intf: int, alt: int, config: int) -> Any:
        if intf != 0 or alt != 0:
            raise IndexError((intf, alt))
        return _Descriptor(
            {
                "bLength": 9,
                "bDescriptorType": 4,
                "bInterfaceNumber": 0,
                "bAlternateSetting": 0,
                "bNumEndpoints": 2 if dev.bulk else 0,
                "bInterfaceClass": dev.interface_class,
                "bInterfaceSubClass": 1,
                "bInterfaceProtocol": 2,
                "iInterface": 0,
                "extra_descriptors": [],
            }
        )

    def get_endpoint_descriptor(
        self, dev: FakeUsbDevice, ep: int, intf: int, alt: int, config: int
    ) -> Any:
        if not dev.bulk or ep > 1:
            raise IndexError(ep)
        return _Descriptor(
            {
                "bLength": 7,
                "bDescriptorType": 5,
                "bEndpointAddress": EP_OUT if ep == 0 else EP_IN,
                "bmAttributes": BULK,
                "wMaxPacketSize": 64,
                "bInterval": 0,
                "bRefresh": 0,
                "bSynchAddress": 0,
                "extra_descriptors": [],
            }
        )

    # -- handles -------------------------------------------------------------------------------

    def open_device(self, dev: FakeUsbDevice) -> FakeUsbDevice:
        if not dev.plugged:
            raise usb.core.USBError("No such device", errno.ENODEV, errno.ENODEV)
        if dev.open_errno is not None:
            raise usb.core.USBError(
                "Access denied (insufficient permissions)"
                if dev.open_errno == errno.EACCES
                else "Resource busy",
                dev.open_errno,
                dev.open_errno,
            )
        return dev

    def close_device(self, handle: FakeUsbDevice) -> None:
        handle.unplug_link()

    def get_configuration(self, handle: FakeUsbDevice) -> int:
        return self.configured.get(id(handle), 1)  # the kernel configured it at plug-in

    def set_configuration(self, handle: FakeUsbDevice, config_value: int) -> None:
        self.configured[id(handle)] = config_value

    def set_interface_altsetting(self, handle: FakeUsbDevice, intf: int, alt: int) -> None:
        return None

    def claim_interface(self, handle: FakeUsbDevice, intf: int) -> None:
        if handle.claim_errno is not None:
            raise usb.core.USBError("Resource busy", handle.claim_errno, handle.claim_errno)
        if handle.kernel_driver:
            raise usb.core.USBError("Resource busy", errno.EBUSY, errno.EBUSY)
        handle.claimed.add(intf)

    def release_interface(self, handle: FakeUsbDevice, intf: int) -> None:
        handle.claimed.discard(intf)

    def is_kernel_driver_active(self, handle: FakeUsbDevice, intf: int) -> bool:
        return handle.kernel_driver

    def detach_kernel_driver(self, handle: FakeUsbDevice, intf: int) -> None:
        handle.kernel_driver = False
        handle.detached += 1

    def attach_kernel_driver(self, handle: FakeUsbDevice, intf: int) -> None:
        handle.kernel_driver = True
        handle.attached += 1

    # -- transfers ------------------------------------------------------------------------------

    def ctrl_transfer(
        self,
        handle: FakeUsbDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        if bmRequestType == 0x80 and bRequest == 0x06 and wValue >> 8 == 3:
            index = wValue & 0xFF
            if index == 0:
                payload = bytes([4, 3, 0x09, 0x04])  # English (US)
            else:
                text = handle.strings().get(index)
                if text is None:
                    raise usb.core.USBError("Pipe error", errno.EPIPE, errno.EPIPE)
                encoded = text.encode("utf-16-le")
                payload = bytes([2 + len(encoded), 3]) + encoded
        elif bmRequestType == 0xA1 and bRequest == 0 and handle.ieee1284_id is not None:
            raw = handle.ieee1284_id.encode()
            payload = (len(raw) + 2).to_bytes(2, "big") + raw
        else:
            raise usb.core.USBError("Pipe error", errno.EPIPE, errno.EPIPE)
        count = min(len(payload), len(data))
        data[:count] = array.array("B", payload[:count])
        return count

    def bulk_write(self, handle: FakeUsbDevice, ep: int, intf: int, data: Any, timeout: int) -> int:
        raw = bytes(data)
        link = handle.link()
        handle.written += raw
        if link is not None:
            try:
                link.sendall(raw)
            except OSError as exc:
                raise usb.core.USBError("No such device", errno.ENODEV, errno.ENODEV) from exc
        if handle.after_write is not None:
            handle.after_write(raw)
        return len(raw)

    def bulk_read(self, handle: FakeUsbDevice, ep: int, intf: int, buff: Any, timeout: int) -> int:
        link = handle.link()
        if link is None:
            raise usb.core.USBTimeoutError("Operation timed out", errno.ETIMEDOUT, errno.ETIMEDOUT)
        link.settimeout(max(timeout, 1) / 1000)
        try:
            chunk = link.recv(len(buff))
        except TimeoutError:
            raise usb.core.USBTimeoutError(
                "Operation timed out", errno.ETIMEDOUT, errno.ETIMEDOUT
            ) from None
        if not chunk:
            raise usb.core.USBError("No such device", errno.ENODEV, errno.ENODEV)
        buff[: len(chunk)] = array.array("B", chunk)
        return len(chunk)
