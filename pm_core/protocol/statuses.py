"""Printer and job states."""

from __future__ import annotations

PRINTER_STATUSES = (
    "online",
    "offline",
    "paper_low",
    "paper_out",
    "cover_open",
    "error",
    "unknown",
)
#: Statuses in which a printer cannot print (paper_low still prints).
PROBLEM_PRINTER_STATUSES = frozenset({"offline", "paper_out", "cover_open", "error"})

JOB_STATUSES = (
    "queued",
    "dispatched",
    "printing",
    "completed",
    "failed",
    "cancelled",
    "expired",
)
FINAL_JOB_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})
ACTIVE_JOB_STATUSES = frozenset({"queued", "dispatched", "printing"})
#: Statuses in which a job can still be cancelled (not yet printing).
CANCELLABLE_JOB_STATUSES = frozenset({"queued", "dispatched"})
