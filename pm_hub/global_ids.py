"""Ids on a company hub: a branch's printer 7 is ``branch_id * ID_SPAN + 7`` there.

Every branch hub numbers its printers, jobs, alerts and agents from 1, and calls
itself company 1, branch 1. The company hub shows them under the branch id and
company id of the branch's token, with ids that cannot collide between branches
(branch 3's job 17 is ``3000000017``) and that say where they come from, so a
request about one can be sent back to the right branch with the branch's own id.
"""

from __future__ import annotations

from typing import Any

#: Ids a branch may use: 1 .. ID_SPAN - 1. Global ids stay below 2**53 (safe in
#: JavaScript) for branch ids up to 9,000,000.
ID_SPAN = 1_000_000_000
MAX_BRANCH_ID = 9_000_000

Record = dict[str, Any]


def global_id(branch_id: int, local_id: int) -> int:
    return branch_id * ID_SPAN + local_id


def split_id(value: Any) -> tuple[int, int] | None:
    """``3000000017`` -> (branch 3, local id 17); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= ID_SPAN:
        return None
    branch_id, local = divmod(value, ID_SPAN)
    if local == 0 or branch_id > MAX_BRANCH_ID:
        return None
    return branch_id, local


def valid_local_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < ID_SPAN


def _g(branch_id: int, value: Any) -> Any:
    return global_id(branch_id, value) if valid_local_id(value) else value


def _subject(branch_id: int, subject: Any) -> Any:
    if not isinstance(subject, str):
        return subject
    kind, _, rest = subject.partition(":")
    if kind in ("printer", "agent") and rest.isdigit():
        return f"{kind}:{_g(branch_id, int(rest))}"
    if kind == "station":
        _branch, _, name = rest.partition(":")
        return f"station:{branch_id}:{name}"
    return subject


_ID_FIELDS = {
    "printer": ("id", "agent_id"),
    "job": ("id", "printer_id", "reprint_of", "failover_from"),
    "alert": ("id",),
    "agent": ("id",),
}
_DETAIL_IDS = ("printer_id", "job_id", "agent_id", "from_printer_id", "to_printer_id")


def globalize(kind: str, record: Record, *, branch_id: int, company_id: int) -> Record:
    """A branch's record as the company hub shows it (a new dict; what it changes
    inside is copied too, the rest is shared with ``record``)."""
    out = dict(record)
    for key in _ID_FIELDS[kind]:
        if key in out:
            out[key] = _g(branch_id, out[key])
    out["branch_id"] = branch_id
    out["company_id"] = company_id
    if kind == "alert":
        out["subject"] = _subject(branch_id, out.get("subject"))
        details = out.get("details")
        if isinstance(details, dict):
            details = out["details"] = dict(details)
            for key in _DETAIL_IDS:
                if key in details:
                    details[key] = _g(branch_id, details[key])
    if kind == "agent" and isinstance(out.get("printers"), list):
        out["printers"] = [_g(branch_id, p) for p in out["printers"]]
    return out


def localize_payload(branch_id: int, payload: dict[str, Any], keys: tuple[str, ...]) -> Record:
    """An operator's request as the branch must see it: global ids back to its own."""
    out = dict(payload)
    for key in keys:
        if key in out and out[key] is not None:
            parts = split_id(out[key])
            if parts is None or parts[0] != branch_id:
                raise ValueError(f"{key} {out[key]} is not an id of branch {branch_id}")
            out[key] = parts[1]
    out.pop("branch_id", None)
    return out
