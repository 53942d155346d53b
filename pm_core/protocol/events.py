"""Socket.IO namespaces and event names (a contract: see docs/protocol.md)."""

from __future__ import annotations


class Namespace:
    OPS = "/ops"
    AGENT = "/agent"
    BRANCH = "/branch"


class OpsEvent:
    """Events an operator (dashboard, script) sends to the hub on ``/ops``."""

    PRINTERS_LIST = "printers:list"
    PRINTER_TEST = "printer:test"
    PRINTER_GET = "printer:get"
    PRINTER_CONFIGURE = "printer:configure"
    JOB_SUBMIT = "job:submit"
    JOB_CANCEL = "job:cancel"
    JOB_REPRINT = "job:reprint"
    JOB_GET = "job:get"
    JOBS_LIST = "jobs:list"
    ALERTS_LIST = "alerts:list"
    ALERT_ACK = "alert:ack"
    AGENTS_LIST = "agents:list"
    STATIONS_LIST = "stations:list"
    STATION_CONFIGURE = "station:configure"
    HEALTH_SUMMARY = "health:summary"
    WHOAMI = "whoami"
    BRANCHES_LIST = "branches:list"
    #: Forget a printer (manager): gone from lists, its alerts cleared, refused if its
    #: agent registers it again.
    PRINTER_REMOVE = "printer:remove"
    #: Drive one more printer (manager): ``{agent_id, uri, name?, station?, profile?,
    #: language?}``; the agent keeps it across restarts.
    PRINTER_ADD = "printer:add"
    #: Forget an agent (admin): its license revoked, its printers retired, no alerts.
    AGENT_RETIRE = "agent:retire"
    #: A new token for the same session before this one runs out (a long shift).
    TOKEN_REFRESH = "token:refresh"
    #: The hub's recent log lines (managers and admins), filtered.
    LOGS_LIST = "logs:list"
    #: Push this connection the new log lines that match a filter (``logs:update``).
    LOGS_FOLLOW = "logs:follow"


class HubEvent:
    """Events the hub sends: broadcasts to operator rooms and requests to agents."""

    # hub -> /ops rooms
    PRINTER_UPDATE = "printer:update"
    PRINTERS_SEEN = "printers:seen"
    #: Batched printer updates, for operators that connect with ``coalesce: true``.
    PRINTERS_UPDATE = "printers:update"
    JOBS_UPDATE = "jobs:update"
    JOB_UPDATE = "job:update"
    AGENT_UPDATE = "agent:update"
    HEALTH_ALERT = "desktop:health:alert"
    ALERT_UPDATE = "alert:update"
    PRINTER_TEST_COMPLETED = "printer:test:completed"
    #: A printer the hub no longer serves (removed, dropped by its agent, agent retired).
    PRINTER_REMOVED = "printer:removed"
    BRANCH_UPDATE = "branch:update"
    #: Batched ``branch:update`` rows (company hub), for operators with ``coalesce: true``.
    BRANCHES_UPDATE = "branches:update"
    #: New log lines for an operator that sent ``logs:follow`` (batched).
    LOGS_UPDATE = "logs:update"
    # hub -> /agent
    PRINTER_TEST = "printer:test"
    PRINT_JOB = "print:job"
    JOB_CANCEL = "job:cancel"
    JOB_RELEASE = "job:release"
    PRINTER_CONFIGURE = "printer:configure"
    #: Drive the printer at ``uri`` from now on, and after restarts (``printer:add``).
    PRINTER_ADD = "printer:add"
    #: A printer an operator removed: an agent that added it at run time forgets it.
    PRINTER_FORGET = "printer:forget"
    # hub -> /ops and /agent, just before a planned stop (shutdown or restart)
    #: ``{"planned": true, "reason": "shutdown"}``: the disconnect that follows is
    #: planned; clients reconnect when the hub is back, nobody is alerted.
    HUB_STOPPING = "hub:stopping"


class AgentEvent:
    """Events an agent sends to the hub on ``/agent``."""

    PRINTER_DISCOVERED = "printer:discovered"
    PRINTER_STATUS = "printer:status"
    PRINTER_TEST_RESULT = "printer:test:result"
    PRINT_JOB_STATUS = "print:job:status"
    PRINT_JOB_RESULT = "print:job:result"
    HEALTH_REPORT = "desktop:health:report"
    HEALTH_PING = "health:ping"
    #: After (re)registering: every printer this agent drives now, by hub id; the hub
    #: retires the others it had for this agent (dropped from its configuration).
    PRINTERS_REGISTERED = "printers:registered"
    #: ``{"reason": "shutdown"}``: the agent is stopping on purpose (a signal, a service
    #: stop); its printers go offline without ``printer_offline`` alerts.
    STOPPING = "agent:stopping"


class BranchEvent:
    """``/branch``: a branch hub syncing to its company hub (and the company's requests)."""

    # branch hub -> company hub
    HELLO = "branch:hello"
    SNAPSHOT = "branch:snapshot"
    CHANGES = "branch:changes"
    HEARTBEAT = "branch:heartbeat"
    TEST_COMPLETED = "branch:test:completed"
    # company hub -> branch hub
    OPS_REQUEST = "ops:request"


#: A ``printers:update`` entry for a change of status alone carries only these fields
#: (a client merges it into the printer it already has); any other change of a printer,
#: and every ``printer:update``, carries the whole printer.
PRINTER_STATUS_FIELDS = (
    "id",
    "status",
    "flags",
    "last_seen",
    "status_changed_at",
    "queue",
    "agent_connected",
)


def is_status_entry(entry: dict[str, object]) -> bool:
    """A status-only ``printers:update`` entry (no ``name``: not a whole printer)."""
    return "name" not in entry
