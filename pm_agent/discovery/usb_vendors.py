"""USB vendor ids of receipt/kitchen printers.

Makers that only build POS printers are taken on their vendor id alone (their
printers often use a vendor-specific interface class, not the printer class).
Many unbranded printers (sold as Xprinter, ZJiang, "POS-58/80", Rongta and
others) use a microcontroller maker's vendor id: those ids are shared with
unrelated devices, so such a device is only taken when it also has a
printer-class interface. The ids come from the makers' USB registrations and
from lsusb reports of these printers. A printer whose id is missing here is still
found when it has a printer-class interface, and can always be configured as
``usb://VID:PID`` (docs/printers.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsbVendor:
    vendor_id: int
    name: str
    #: A chip maker's id shared with other devices: needs a printer-class interface.
    generic_chip: bool = False
    note: str = ""


THERMAL_VENDORS: dict[int, UsbVendor] = {
    v.vendor_id: v
    for v in (
        UsbVendor(0x04B8, "Epson", note="TM-T20, TM-T88, TM-m30, TM-L90"),
        UsbVendor(0x0519, "Star Micronics", note="TSP650, TSP700, SP700, mC-Print"),
        UsbVendor(0x1D90, "Citizen", note="CT-S310, CT-S651, CT-S801"),
        UsbVendor(0x2730, "Citizen Systems", note="CT-E351, CT-S4500"),
        UsbVendor(0x1504, "Bixolon", note="SRP-350, SRP-330"),
        UsbVendor(0x0DD4, "Custom Engineering", note="KUBE, TG2480"),
        UsbVendor(0x154F, "SNBC (Beiyang)", note="BTP-R880, BTP-S80"),
        UsbVendor(0x6868, "Gprinter (Zhuhai Poskey)", note="GP-58, GP-80, ZH-380"),
        UsbVendor(0x20D1, "Rongta", note="RP80, RP326"),
        UsbVendor(0x0FE6, "Kontron chip", True, "Xprinter XP-58/XP-80 and other POS-58/80"),
        UsbVendor(0x0416, "Winbond chip", True, "ZJiang POS-58, Xprinter and rebrands"),
        UsbVendor(0x0483, "STMicroelectronics chip", True, "Xprinter, Rongta and rebrands"),
        UsbVendor(0x1FC9, "NXP chip", True, "some Xprinter models"),
        UsbVendor(0x28E9, "GigaDevice chip", True, "newer Xprinter models"),
    )
}

#: Office printer makers: printer class, but PCL/PostScript, never ESC/POS.
OFFICE_VENDORS: dict[int, str] = {
    0x03F0: "HP",
    0x04F9: "Brother",
    0x04A9: "Canon",
    0x043D: "Lexmark",
    0x04E8: "Samsung",
    0x0924: "Xerox",
    0x0482: "Kyocera",
    0x05CA: "Ricoh",
}
