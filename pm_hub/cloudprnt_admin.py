"""Star CloudPRNT printers from the command line (``pm printer cloudprnt ...``), with
or without a running hub: enrolled in the hub's database by MAC, each with its own
secret (printed once; only its hash is kept). A running hub sees a new or removed
enrollment within seconds (:data:`pm_hub.cloudprnt.ENROLLMENT_TTL_S`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pm_hub.cloudprnt import CloudPrntError, new_secret, normalise_mac
from pm_hub.credential_admin import _with_db
from pm_hub.store import cloudprnt as cloudprnt_store

#: Paper widths in dots CloudPRNT printers print: 58 mm and 80 mm (and 2-inch labels).
DOTS_RANGE = (200, 832)


def check_mac(value: str) -> str:
    try:
        return normalise_mac(value)
    except CloudPrntError as exc:
        raise ValueError(exc.message) from None


def enroll_printer(
    data_dir: Path,
    *,
    mac: str,
    name: str,
    dots: int = 576,
    station: str | None = None,
    database: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Enroll the printer with ``mac``; returns its printer row and its new secret.
    Enrolling a MAC again gives it a new secret (the old one stops working)."""
    mac = check_mac(mac)
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise ValueError("--name must be 1 to 100 printable characters")
    if not DOTS_RANGE[0] <= dots <= DOTS_RANGE[1]:
        raise ValueError(f"--dots must be from {DOTS_RANGE[0]} to {DOTS_RANGE[1]}")
    station = station.strip().lower() if station else None
    secret = new_secret()
    row = _with_db(
        data_dir,
        lambda d: cloudprnt_store.enroll(
            d, mac=mac, name=name, secret=secret, dots=dots - dots % 8, station=station
        ),
        database,
    )
    return row, secret


def list_printers(data_dir: Path, *, database: str | None = None) -> list[dict[str, Any]]:
    return _with_db(data_dir, cloudprnt_store.list_enrolled, database)


def remove_printer(data_dir: Path, mac: str, *, database: str | None = None) -> None:
    mac = check_mac(mac)
    if not _with_db(data_dir, lambda d: cloudprnt_store.remove(d, mac), database):
        raise ValueError(f"no CloudPRNT printer {mac} (see pm printer cloudprnt list)")
