"""Settings for the hub and the agent: defaults < TOML file < ``PM_*`` env < command line.

The TOML file may hold the settings at the top level or in ``[hub]`` and ``[agent]``
tables (``[agent]`` wins where both name the same setting).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pm_core.private_files import read_secret
from pm_core.protocol.validation import control_characters
from pm_core.sql import engine_of
from pm_hub.proxies import parse_networks


def default_data_dir() -> Path:
    """``$PM_DATA_DIR``, else ``$XDG_DATA_HOME/printermaster``, else ``~/.local/share/...``."""
    env = os.environ.get("PM_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return xdg_data_dir()


def xdg_data_dir() -> Path:
    """``$XDG_DATA_HOME/printermaster``, else ``~/.local/share/printermaster``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "printermaster"


@dataclass
class HubSettings:
    """Everything the hub can be told. Each field is also ``PM_<NAME>`` in the env."""

    data_dir: Path = field(default_factory=default_data_dir)
    """Where the SQLite file, the JWT secret and the local agent's spool live."""
    database_url: str | None = None
    """Where the hub keeps its state (``--database``): none is the SQLite file
    ``hub.sqlite`` in the data dir (a branch box's default); ``postgresql://user@host/db``
    is a PostgreSQL database, for a company hub (the JWT secret stays in the data dir)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 to accept agents and operators from the LAN)."""
    port: int = 3001
    """TCP port for Socket.IO and HTTP."""
    tls_cert: Path | None = None
    """PEM certificate chain for HTTPS and WSS (``--tls-cert``); with ``tls_key`` the hub
    serves ``https://`` only. Or end TLS at a reverse proxy (docs/security.md)."""
    tls_key: Path | None = None
    """The certificate's private key (``--tls-key``)."""
    company_mode: bool = False
    """Run as a company hub that aggregates branch hubs."""
    branch_name: str | None = None
    """Name of this branch (shown in the dashboard); stored on first start."""
    request_timeout: float = 15.0
    """Seconds an operator waits for an agent's answer before ``timeout``."""
    stale_after: float = 60.0
    """Seconds after which finished or abandoned correlation entries are dropped."""
    sqlite_synchronous: str = "FULL"
    """SQLite ``synchronous`` pragma: FULL survives power loss, NORMAL is faster."""
    mdns: bool = False
    """Advertise the hub as ``_printermaster._tcp.local.`` (``pm hub`` and ``pm up`` turn
    this on unless told ``--no-mdns``, ``PM_MDNS=0`` or ``mdns = false``)."""
    update_batch_window_s: float = 0.02
    """Operators that connect with ``coalesce: true`` get printer and job changes batched
    into one ``printers:update`` / ``jobs:update`` per this many seconds (the first after
    a quiet spell at once); the window widens with the number of such operators."""
    poll_interval: float = 2.0
    """Seconds between status queries (DLE EOT) to each printer, for the agent of
    ``pm up`` and ``pm agent``; a change reaches operators within one interval."""
    max_payload_bytes: int = 2 * 1024 * 1024
    """Largest Socket.IO message or HTTP body accepted."""
    client_buffer_bytes: int = 16 * 1024 * 1024
    """Bytes the hub keeps waiting for one client that does not read; past this it
    disconnects that client (it may reconnect) and logs why."""
    job_expiry_seconds: float = 600.0
    """Default time a job may wait before it ends ``expired`` instead of printing stale."""
    cloudprnt_offline_after_s: float = 30.0
    """A Star CloudPRNT printer that has not polled ``/cloudprnt`` for this long shows
    ``offline`` (its poll interval is a few seconds; docs/printers.md)."""
    cloudprnt_confirm_timeout_s: float = 120.0
    """A ticket a CloudPRNT printer fetched and did not confirm (DELETE) within this
    long ends ``failed`` with ``outcome_unknown``; it is never served again."""
    cloudprnt_rate_limit: float = 5.0
    """Requests per second one CloudPRNT printer may make on average (bursts of four
    times that); more are answered 429."""
    agent_disconnect_alert_s: float = 60.0
    """An agent gone this long raises an ``agent_disconnected`` alert."""
    latency_alert_ms: float = 500.0
    """Average ping latency (last 5 pings) above this raises ``latency_high``."""
    packet_loss_alert: float = 0.05
    """Share of lost or late pings (agent's sliding window) above this raises
    ``packet_loss_high``."""
    health_raw_window_s: float = 2 * 3600.0
    """Raw link samples are kept this long, then folded into one row per minute."""
    health_minute_window_s: float = 7 * 86400.0
    """Per-minute samples are kept this long, then folded into one row per hour."""
    health_retention_s: float = 90 * 86400.0
    """Link samples older than this are deleted."""
    printer_history_retention_s: float = 30 * 86400.0
    """Printer status changes (the history, availability and heartbeat of a printer's
    detail) older than this are deleted."""
    log_lines: int = 2000
    """Recent log lines the hub keeps in memory for the dashboard's Logs tab
    (``logs:list``; managers and admins)."""
    allowed_origins: str = ""
    """Web pages (``https://pos.example``, comma-separated or a TOML list) whose scripts
    may use the hub from a browser (``--allowed-origin``); none by default: browsers
    elsewhere are refused, programs (no ``Origin``) are not affected."""
    max_connections_per_address: int = 256
    """Connections (logged in or not) open at once from one IP address; 0: no limit."""
    max_operators_per_company: int = 2000
    """Operators (dashboards, scripts) connected at once for one company; 0: no limit."""
    login_failures_allowed: int = 5
    """Refused logins from one address in a minute before it has to wait (1 s, doubling
    to a minute)."""
    ops_rate_limit: float = 500.0
    """Requests per second one token session may make on average (all its sockets and
    HTTP calls together), bursts up to twice that; 0 turns the limit off."""
    webhook_urls: str = ""
    """Comma-separated URLs that receive every alert change as a JSON POST."""
    webhook_secret: str | None = None
    """The key every webhook POST is signed with (HMAC-SHA256; docs/security.md); or
    ``webhook_secret_file``; else one is made into the data dir (``webhook-secret``)."""
    webhook_secret_file: Path | None = None
    """A file holding ``webhook_secret`` (made with a new secret when missing)."""
    webhook_timeout_s: float = 5.0
    """Seconds a webhook receiver has to answer before the POST is retried."""
    upstream_url: str | None = None
    """Company hub this branch hub syncs to (``http://company:3001``); none: no sync."""
    upstream_token: str | None = None
    """Branch token made on the company hub (``pm token create --role branch --branch B``)."""
    upstream_ca_file: Path | None = None
    """The CA that signed the company hub's certificate, when it is a private one
    (``--upstream-ca-file``; default: the system's CAs)."""
    upstream_token_file: Path | None = None
    """A file holding the branch token (``--upstream-token-file``): kept out of the
    command line, where ``ps`` shows it."""
    upstream_outbox_limit: int = 10000
    """Most changes kept for the company hub while it is unreachable (one per printer, job,
    alert or agent: the latest state); beyond it the oldest are dropped."""
    upstream_batch_size: int = 200
    """Changes sent to the company hub per batch (each batch is acknowledged)."""
    upstream_retry_max_s: float = 30.0
    """Longest wait between two attempts to reach the company hub (it backs off from 1 s)."""
    upstream_heartbeat_s: float = 10.0
    """Seconds between heartbeats to the company hub while nothing else is sent."""
    redis_url: str | None = None
    """On a company hub with several processes (``--redis-url redis://host:6379/0``): the
    Redis they share Socket.IO rooms and mirror changes through; needs a PostgreSQL
    ``database`` (docs/operations.md, "Several company-hub processes")."""
    trusted_proxies: str = ""
    """Load balancers in front of the hub (``10.0.0.5,10.0.1.0/24``; a TOML list works
    too): for a connection from one of them, the client is the address in
    ``X-Forwarded-For`` (the per-address limits count clients, not the balancer). None
    by default: the header is ignored."""
    redis_channel: str = "printermaster"
    """The Redis channel the processes of one company hub share; another deployment on
    the same Redis uses a channel of its own."""
    branch_lag_warning_s: float = 30.0
    """On a company hub: a branch whose oldest undelivered change is older than this
    shows as lagging."""
    token_max_ttl_s: float = 12 * 3600.0
    """Longest lifetime of an operator token (admin, manager, operator, viewer); the
    dashboard refreshes its token before it runs out. Longer tokens are refused."""
    branch_token_max_ttl_s: float = 30 * 86400.0
    """Longest lifetime of a branch hub's token (``pm token create --role branch``)."""
    agent_ping_interval_s: float = 15.0
    """Seconds between an agent's ``health:ping`` round trips (``pm agent``, ``pm up``)."""
    agent_report_interval_s: float = 300.0
    """Seconds between an agent's ``desktop:health:report`` (the first comes soon after start)."""
    job_document_retention_s: float = 30 * 86400.0
    """A finished job's document (the ticket, logos included) is dropped this long after
    the job ended; the job, its outcome and its history stay (``job:get`` then says
    ``document_pruned_at``, and a reprint is refused)."""
    job_retention_s: float = 365 * 86400.0
    """A finished job and its history are deleted this long after it ended."""
    printer_history_max_rows: int = 10000
    """At most this many status changes are kept per printer, whatever their age
    (``printer_history_retention_s``): one that flaps all day does not fill the disk."""
    health_report_retention_s: float = 30 * 86400.0
    """The agents' 5-minute health reports are kept this long (the latest one of each
    agent is shown after a restart)."""
    alert_retention_s: float = 365 * 86400.0
    """A cleared alert is deleted this long after it was cleared."""
    retention_interval_s: float = 3600.0
    """Seconds between two pruning runs (the first a minute after start). Each run
    deletes in batches of ``retention_batch_rows`` between the hub's other writes."""
    retention_batch_rows: int = 500
    """Rows pruned per write transaction."""
    agent_spool_retention_s: float = 7 * 86400.0
    """How long an agent remembers a finished job (to answer a redelivery with its outcome
    instead of printing it again); pruned hourly, never before the hub has the result."""

    @property
    def origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hub.sqlite"

    @property
    def database(self) -> str:
        """The store's target for :class:`pm_core.database.Database`: the URL, or the
        SQLite file's path."""
        return self.database_url or str(self.db_path)

    @property
    def on_postgresql(self) -> bool:
        return engine_of(self.database) == "postgresql"


_TYPES = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool}


def _convert(value: Any, type_name: str) -> Any:
    base = type_name.replace(" | None", "").strip()
    if value is None:
        return None
    if base == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    if base == "Path":
        return Path(str(value)).expanduser()
    if base == "str" and isinstance(value, list):
        return ",".join(str(v) for v in value)
    return _TYPES[base](value)


def convert_setting(name: str, value: Any) -> Any:
    """``value`` (from a file, the env or the command line) as setting ``name`` takes it;
    KeyError for an unknown name, ValueError saying what was expected."""
    type_name = {f.name: str(f.type) for f in fields(HubSettings)}[name]
    try:
        return _convert(value, type_name)
    except (TypeError, ValueError):
        base = type_name.replace(" | None", "").strip()
        wanted = {"Path": "a path", "int": "a whole number", "float": "a number"}.get(
            base, f"a {base}"
        )
        raise ValueError(f"must be {wanted} (got {value!r})") from None


#: What ``database_url`` may start with (a plain path is a SQLite file too).
DATABASE_SCHEMES = ("postgresql://", "postgres://", "sqlite://")

#: What ``redis_url`` may start with.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

#: Shortest and longest printer status poll interval accepted (seconds).
POLL_INTERVAL_RANGE = (0.05, 3600.0)


#: Agent settings that must be a positive number of seconds.
POSITIVE_AGENT_SECONDS = (
    "agent_ping_interval_s",
    "agent_report_interval_s",
    "agent_spool_retention_s",
)


#: Retention settings: each must be positive (seconds, or rows).
RETENTION_SETTINGS = (
    "job_document_retention_s",
    "job_retention_s",
    "printer_history_retention_s",
    "printer_history_max_rows",
    "health_report_retention_s",
    "alert_retention_s",
    "retention_interval_s",
    "retention_batch_rows",
)


def _check(settings: HubSettings) -> HubSettings:
    url = settings.database_url
    if url is not None and "://" in url and not url.startswith(DATABASE_SCHEMES):
        raise ValueError(
            f"database_url must be postgresql://... or sqlite:///path (got {url.split(':')[0]}:)"
        )
    if settings.upstream_url and settings.on_postgresql:
        raise ValueError(
            "a hub with an upstream keeps SQLite: its outbox for the company hub lives in "
            "the SQLite file (drop --database, or --upstream: PostgreSQL is for the company hub)"
        )
    if settings.redis_url:
        if not settings.redis_url.startswith(REDIS_SCHEMES):
            raise ValueError(
                "redis_url must be redis://host:port/db, rediss://... (TLS) or unix:///path "
                f"(got {settings.redis_url.split(':')[0]}:)"
            )
        if not settings.company_mode or not settings.on_postgresql:
            raise ValueError(
                "--redis-url is for a company hub in several processes: each runs with "
                "--company-mode and the same --database postgresql://..."
            )
    if (
        not settings.redis_channel
        or not settings.redis_channel.isprintable()
        or any(c.isspace() for c in settings.redis_channel)
    ):
        raise ValueError("redis_channel must be a name without spaces or control characters")
    parse_networks(settings.trusted_proxies)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ValueError("TLS needs both tls_cert and tls_key (--tls-cert and --tls-key)")
    if settings.branch_name is not None and control_characters(settings.branch_name):
        raise ValueError("branch_name must not hold control characters")
    low, high = POLL_INTERVAL_RANGE
    if not low <= settings.poll_interval <= high:
        raise ValueError(
            f"poll_interval must be between {low} and {high:.0f} seconds "
            f"(got {settings.poll_interval})"
        )
    for name in (*POSITIVE_AGENT_SECONDS, *RETENTION_SETTINGS):
        value = getattr(settings, name)
        if not value > 0:
            raise ValueError(f"{name} must be a positive number (got {value})")
    return settings


def _tables(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables of a config file that hold settings: top level, ``[hub]``, ``[agent]``."""
    tables = [data]
    for name in ("hub", "agent"):
        table = data.get(name)
        if isinstance(table, dict):
            tables.append(table)
    return tables


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    env: bool = True,
) -> HubSettings:
    """Build settings: ``defaults`` (a command's own, e.g. mDNS on for ``pm hub``) <
    TOML file (top level, ``[hub]``, ``[agent]``) < ``PM_*`` env < ``overrides`` (the
    command line; None values are left out). ValueError for a bad file or value."""
    known = {f.name: str(f.type) for f in fields(HubSettings)}

    def convert(name: str, value: Any, where: str) -> Any:
        try:
            return _convert(value, known[name])
        except (TypeError, ValueError):
            raise ValueError(f"{name} ({where}): {value!r} is not a valid value") from None

    values: dict[str, Any] = {
        k: convert(k, v, "default") for k, v in (defaults or {}).items() if k in known
    }
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read config {config_file}: {exc}") from exc
        for table in _tables(data):
            for key, value in table.items():
                if key in known and not isinstance(value, dict):
                    values[key] = convert(key, value, str(config_file))
    for name in known if env else ():
        value = os.environ.get(f"PM_{name.upper()}")
        if value is not None:
            values[name] = convert(name, value, f"PM_{name.upper()}")
    for key, value in (overrides or {}).items():
        if value is not None and key in known:
            values[key] = convert(key, value, "command line")
    settings = HubSettings(**values)
    if settings.upstream_token is None and settings.upstream_token_file is not None:
        settings.upstream_token = read_secret(settings.upstream_token_file, "branch token")
    return _check(settings)
