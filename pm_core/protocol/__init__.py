"""The wire contract between hub, agents and operators.

Agents and the dashboard import only this package from ``pm_hub``: event names,
error codes, payload checks and the correlation-id format live here.
"""

from pm_core.protocol.correlation_ids import (
    job_correlation_id,
    new_correlation_id,
    new_request_id,
    parse_correlation_id,
)
from pm_core.protocol.errors import ErrorCode, ProtocolError, error_ack, ok_ack
from pm_core.protocol.events import (
    PRINTER_STATUS_FIELDS,
    AgentEvent,
    BranchEvent,
    HubEvent,
    Namespace,
    OpsEvent,
    is_status_entry,
)
from pm_core.protocol.statuses import (
    ACTIVE_JOB_STATUSES,
    CANCELLABLE_JOB_STATUSES,
    FINAL_JOB_STATUSES,
    JOB_STATUSES,
    PRINTER_STATUSES,
    PROBLEM_PRINTER_STATUSES,
)

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "CANCELLABLE_JOB_STATUSES",
    "FINAL_JOB_STATUSES",
    "JOB_STATUSES",
    "PRINTER_STATUSES",
    "PRINTER_STATUS_FIELDS",
    "PROBLEM_PRINTER_STATUSES",
    "AgentEvent",
    "BranchEvent",
    "ErrorCode",
    "HubEvent",
    "Namespace",
    "OpsEvent",
    "ProtocolError",
    "error_ack",
    "is_status_entry",
    "job_correlation_id",
    "new_correlation_id",
    "new_request_id",
    "ok_ack",
    "parse_correlation_id",
]
