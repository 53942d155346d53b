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


def printer_status(
    *,
    error: bool = False,
    cover_open: bool = False,
    paper_out: bool = False,
    paper_low: bool = False,
    offline: bool = False,
) -> str:
    """The one status a printer's answer means, whatever its language (ESC/POS
    ``DLE EOT``, Star ASB, Zebra ``~HS``): the worst condition wins, in the order
    error, cover open, paper out, paper low, offline; none is ``online``."""
    for status, on in (
        ("error", error),
        ("cover_open", cover_open),
        ("paper_out", paper_out),
        ("paper_low", paper_low),
        ("offline", offline),
    ):
        if on:
            return status
    return "online"


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
