"""Find USB receipt printers through pyusb.

A device is a candidate when it has a printer-class interface (0x07) or comes
from a maker of POS printers (:mod:`pm_agent.discovery.usb_vendors`). Office
printers (PCL/PostScript) are left out by vendor and by the command set of
their IEEE 1284 device id. Descriptors are read without claiming anything; the
serial-number string and the 1284 id need the device opened and are skipped,
with a hint, when the agent's user may not (udev rule in docs/printers.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from pm_agent.discovery.found import FoundPrinter
from pm_agent.discovery.usb_vendors import OFFICE_VENDORS, THERMAL_VENDORS
from pm_agent.printer_language import language_for_command_set, language_for_model
from pm_agent.usb_port import PRINTER_CLASS, usb_error_text

log = logging.getLogger(__name__)

#: USB printer class request GET_DEVICE_ID (IEEE 1284 device id).
GET_DEVICE_ID = 0
ESC_POS_COMMANDS = ("ESC", "POS", "STAR")


def parse_1284_id(raw: bytes) -> dict[str, str]:
    """``MFG:EPSON;CMD:ESC/POS;MDL:TM-T88V;`` -> ``{"MFG": "EPSON", ...}`` (long keys
    like ``MANUFACTURER`` and ``COMMAND SET`` folded to the short ones)."""
    text = raw.decode("latin-1", "replace")
    fields: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition(":")
        if sep:
            key = key.strip().upper()
            key = {"MANUFACTURER": "MFG", "COMMAND SET": "CMD", "MODEL": "MDL"}.get(key, key)
            fields[key] = value.strip()
    return fields


class UsbSource:
    """USB printers: printer class or a known POS printer maker."""

    name = "usb"

    def __init__(self, *, backend: Any = None, in_use: Callable[[], Iterable[str]] = tuple) -> None:
        self.backend = backend
        #: ``vid:pid`` of devices the agent drives already: not opened again.
        self.in_use = in_use

    async def discover(self) -> list[FoundPrinter]:
        return await asyncio.to_thread(self.scan)

    def scan(self) -> list[FoundPrinter]:
        """Blocking: list the USB bus."""
        import usb.core

        try:
            devices = list(usb.core.find(find_all=True, backend=self.backend))
        except usb.core.NoBackendError:
            log.warning("USB discovery needs libusb-1.0 (apt install libusb-1.0-0); skipped")
            return []
        except usb.core.USBError as exc:
            log.warning("USB discovery failed: %s", exc)
            return []
        found = []
        busy = {str(v).lower() for v in self.in_use()}
        for device in devices:
            if f"{int(device.idVendor):04x}:{int(device.idProduct):04x}" in busy:
                continue
            try:
                printer = self._candidate(device)
            except Exception as exc:  # one odd device must not end the scan
                log.debug("USB device %s skipped: %s", device, exc)
                continue
            if printer is not None:
                found.append(printer)
        log.info("USB: %d printer(s)", len(found))
        return found

    def _candidate(self, device: Any) -> FoundPrinter | None:
        import usb.core
        import usb.util

        vid, pid = int(device.idVendor), int(device.idProduct)
        vendor = THERMAL_VENDORS.get(vid)
        printer_interfaces = [
            (config, intf)
            for config in device
            for intf in config
            if intf.bInterfaceClass == PRINTER_CLASS or device.bDeviceClass == PRINTER_CLASS
        ]
        if not printer_interfaces and (vendor is None or vendor.generic_chip):
            return None
        if vid in OFFICE_VENDORS:
            log.debug("USB %04x:%04x is an office printer (%s)", vid, pid, OFFICE_VENDORS[vid])
            return None
        details: dict[str, Any] = {
            "usb_vendor": vendor.name if vendor else None,
            "bus": getattr(device, "bus", None),
            "address": getattr(device, "address", None),
        }
        strings: dict[str, str | None] = {}
        device_id: dict[str, str] = {}
        try:
            for key in ("iManufacturer", "iProduct", "iSerialNumber"):
                index = getattr(device, key, 0)
                strings[key] = usb.util.get_string(device, index) if index else None
            if printer_interfaces:
                device_id = self._device_id(device, *printer_interfaces[0])
        except (usb.core.USBError, ValueError) as exc:
            problem = usb_error_text(exc, vid, pid)
            details["problem"] = problem
            log.warning("USB printer %04x:%04x: %s", vid, pid, problem)
        finally:
            try:
                usb.util.dispose_resources(device)
            except usb.core.USBError:
                pass
        command_set = device_id.get("CMD", "").upper()
        if command_set and not any(c in command_set for c in ESC_POS_COMMANDS):
            log.info("USB %04x:%04x speaks %s, not ESC/POS: skipped", vid, pid, command_set)
            return None
        usb_serial = (strings.get("iSerialNumber") or "").strip() or None
        uri = f"usb://{vid:04x}:{pid:04x}" + (f"?serial={usb_serial}" if usb_serial else "")
        model = device_id.get("MDL") or (strings.get("iProduct") or "").strip() or None
        maker = device_id.get("MFG") or (strings.get("iManufacturer") or "").strip() or None
        if device_id:
            details["ieee1284_id"] = device_id
        details["usb_serial"] = usb_serial
        brand = vendor.name if vendor and not vendor.generic_chip else None
        name = " ".join(p for p in (maker or brand, model) if p)
        language = language_for_command_set(command_set, model) or language_for_model(
            " ".join(p for p in (maker, model) if p)
        )
        return FoundPrinter(
            uri=uri,
            kind="usb",
            source=self.name,
            language=language,
            name=name or None,
            model=model,
            maker=maker,
            details=details,
        )

    @staticmethod
    def _device_id(device: Any, config: Any, intf: Any) -> dict[str, str]:
        """The IEEE 1284 device id, only when no kernel driver holds the interface
        (reading it claims the interface; discovery never detaches drivers)."""
        number = intf.bInterfaceNumber
        try:
            if device.is_kernel_driver_active(number):
                return {}
        except NotImplementedError:
            pass
        raw = bytes(
            device.ctrl_transfer(
                0xA1,  # device-to-host, class request, to an interface
                GET_DEVICE_ID,
                config.index,
                (number << 8) | intf.bAlternateSetting,
                1024,
            )
        )
        if len(raw) < 2:
            return {}
        length = min(int.from_bytes(raw[:2], "big"), len(raw))
        return parse_1284_id(raw[2:length])
