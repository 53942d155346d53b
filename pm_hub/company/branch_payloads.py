"""What a branch hub sends on ``/branch``, checked: records and outbox entries must
carry a valid id and the fields the company hub and its dashboards rely on; anything
else is ``invalid_payload`` naming the first bad field. A record keeps only the fields
of its kind (``pm_core.protocol.records``): extra fields a branch attaches never reach
the company's operators, and a record is bounded in size."""

from __future__ import annotations

import json
from typing import Any

from pm_core.protocol import JOB_STATUSES, PRINTER_STATUSES
from pm_core.protocol.records import AgentRecord, AlertRecord, JobRecord, PrinterRecord
from pm_core.protocol.validation import control_characters, get_int, get_str, invalid
from pm_hub.global_ids import valid_local_id

KINDS = ("printer", "job", "alert", "agent")
ALERT_STATES = ("open", "acknowledged", "cleared")
#: Most entries or records in one message.
MAX_ENTRIES = 1000
#: Largest record, as JSON (a printer with its capabilities is about 1 KiB).
MAX_RECORD_BYTES = 16 * 1024

#: The fields a record of each kind may carry on to the company's operators.
FIELDS: dict[str, frozenset[str]] = {
    kind: record.__required_keys__ | record.__optional_keys__
    for kind, record in (
        ("printer", PrinterRecord),
        ("job", JobRecord),
        ("alert", AlertRecord),
        ("agent", AgentRecord),
    )
}
#: Names shown to people: no control characters.
NAMES = {"printer": ("name", "station"), "agent": ("name",), "alert": (), "job": ("station",)}


#: What each kind of record must carry (field -> allowed values, or a type).
_REQUIRED: dict[str, dict[str, Any]] = {
    "printer": {"name": str, "status": PRINTER_STATUSES},
    "job": {"status": JOB_STATUSES},
    "alert": {"kind": str, "severity": ("critical", "warning", "info"), "state": ALERT_STATES},
    "agent": {"connected": bool},
}


def checked_record(value: Any, where: str, kind: str) -> dict[str, Any]:
    """A record a branch sent: an object with a valid id and the fields the company hub
    and its dashboards rely on."""
    if not isinstance(value, dict) or not valid_local_id(value.get("id")):
        raise invalid(f"{where} must be an object with an integer id from 1 to 999999999")
    for key, rule in _REQUIRED[kind].items():
        field = value.get(key)
        ok = isinstance(field, rule) if isinstance(rule, type) else field in rule
        if not ok:
            raise invalid(f"{where}.{key} is missing or not valid for a {kind}")
    record = {k: v for k, v in value.items() if k in FIELDS[kind]}
    for key, stamp in record.items():
        # Every ``..._at`` field is a time: seconds since the epoch, or null. A branch
        # that sends a word or a year 10,000 there must not reach an operator's screen.
        if key.endswith("_at") and stamp is not None and not _timestamp(stamp):
            raise invalid(f"{where}.{key} must be a time in seconds since 1970, or null")
    for key in NAMES[kind]:
        name = record.get(key)
        if isinstance(name, str) and control_characters(name):
            raise invalid(f"{where}.{key} must not hold control characters")
    size = len(json.dumps(record, default=str))
    if size > MAX_RECORD_BYTES:
        raise invalid(f"{where} is {size} bytes, more than {MAX_RECORD_BYTES} for a record")
    return record


#: The latest time a record may carry (year 9999): later ones cannot be shown as dates.
MAX_TIMESTAMP = 253_402_300_799


def _timestamp(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_TIMESTAMP  # NaN fails both comparisons
    )


def checked_entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data.get("entries")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
        raise invalid(f"entries must be a list of at most {MAX_ENTRIES}")
    checked = []
    last = 0
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        if not isinstance(entry, dict):
            raise invalid(f"{where} must be an object")
        seq = get_int(entry, "seq", required=True, minimum=1)
        kind = get_str(entry, "kind", required=True, choices=KINDS)
        ident = entry.get("id")
        if not valid_local_id(ident):
            raise invalid(f"{where}.id must be an integer from 1 to 999999999")
        assert seq is not None
        if seq <= last:
            raise invalid(f"{where}.seq must be greater than the one before")
        last = seq
        record = entry.get("record")
        if record is not None:
            assert kind is not None
            record = checked_record(record, f"{where}.record", kind)
            if record["id"] != ident:
                raise invalid(f"{where}.record.id must be {ident}")
        checked.append({"seq": seq, "kind": kind, "id": ident, "record": record})
    return checked
