"""A branch hub's link as the company hub sees it, how healthy it is, and its form on
the channel between company-hub processes (``pm_hub.company.peers``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

#: A connected branch that sent nothing (not even a heartbeat) for this long is lagging.
SILENCE_LAGGING_S = 35.0
#: Which process holds a link when only one serves the company.
LOCAL_HOST = "local"

#: The fields of a link that the processes tell each other.
SHARED_FIELDS = (
    "branch_id",
    "company_id",
    "name",
    "sid",
    "host",
    "version",
    "connected_at",
    "disconnected_at",
    "last_sync_at",
    "pending",
    "oldest_age_s",
    "reported_at",
)


@dataclass
class BranchLink:
    """A branch hub as the company hub sees it (connected or not)."""

    branch_id: int
    company_id: int
    name: str
    #: Its Socket.IO session (on ``/branch``), and the process that holds it.
    sid: str | None = None
    host: str = LOCAL_HOST
    version: str | None = None
    connected_at: float | None = None
    disconnected_at: float | None = None
    last_sync_at: float | None = None
    #: Entries the branch still had to send, and the age of the oldest, when it last said.
    pending: int = 0
    oldest_age_s: float | None = None
    reported_at: float | None = None
    #: Ids received in the snapshot being sent now, per kind (only where it is held).
    snapshot_ids: dict[str, set[int]] = field(default_factory=dict)
    snapshot_seq: int = 0

    @property
    def connected(self) -> bool:
        return self.sid is not None

    def shared(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SHARED_FIELDS}

    def take(self, body: dict[str, Any]) -> None:
        """Take what another process said about this link (fields of the right type only)."""
        if _is_int(body.get("company_id")):
            self.company_id = body["company_id"]
        for name in ("name", "host"):
            if isinstance(body.get(name), str):
                setattr(self, name, body[name])
        for name in ("sid", "version"):
            value = body.get(name)
            setattr(self, name, value if isinstance(value, str) else None)
        for name in (
            "connected_at",
            "disconnected_at",
            "last_sync_at",
            "oldest_age_s",
            "reported_at",
        ):
            value = body.get(name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            setattr(self, name, float(value) if number and value is not None else None)
        pending = body.get("pending")
        self.pending = pending if isinstance(pending, int) and pending > 0 else 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def link_state(
    link: BranchLink, *, lag_warning_s: float, now: float | None = None
) -> tuple[str, float]:
    """(``connected`` | ``lagging`` | ``offline``, seconds behind)."""
    now = time.time() if now is None else now
    if not link.connected:
        return "offline", 0.0
    lag = 0.0
    if link.pending and link.oldest_age_s is not None and link.reported_at is not None:
        lag = link.oldest_age_s + (now - link.reported_at)
    silent = now - (link.reported_at or link.connected_at or now)
    if lag > lag_warning_s or silent > SILENCE_LAGGING_S:
        return "lagging", round(max(lag, silent if silent > SILENCE_LAGGING_S else 0), 1)
    return "connected", round(lag, 1)
