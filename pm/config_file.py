"""One config file for a branch box: every setting, the printers, the agent's link,
discovery and the simulator (``pm up --config``, ``pm agent --config``, the service's
``/etc/printermaster/pm.toml``), and ``pm config check``, which says what is wrong and
where (file, line, field).

The hub's and agent's settings (``pm_hub.config.HubSettings``) may sit at the top
level or in ``[hub]`` / ``[agent]`` as before; this module adds what only the command
line could say until now:

- ``log_level`` (top level or ``[hub]``/``[agent]``);
- ``[agent]``: ``hub``, ``license_file``, ``name``, ``ca_file``, ``hub_branch``,
  ``fonts``;
- ``[discovery]``: ``scan``, ``scan_ports``, ``scan_force``, ``discover``,
  ``mdns_interfaces``, ``discover_every``;
- ``[sim]``: ``count``, ``port``, ``control_port``, ``cloudprnt``;
- ``[[printers]]``: ``name``, ``uri``, ``station``, ``profile``, ``language``,
  ``text_mode``.

tomllib keeps no positions for values, so a problem's line is found by reading the
file's lines for the table headers and ``key =`` lines (:class:`KeyLines`).
"""

from __future__ import annotations

import argparse
import difflib
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pm_core.protocol.languages import LANGUAGES, TEXT_MODES
from pm_hub.config import HubSettings, convert_setting, load_settings

#: The service's config file (``pm service install`` points the unit at it).
SERVICE_CONFIG = Path("/etc/printermaster/pm.toml")

#: Tables that hold hub and agent settings (``HubSettings`` fields).
SETTINGS_TABLES = ("", "hub", "agent")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Keys of ``[agent]`` beyond the settings: name -> (type, what).
AGENT_KEYS: dict[str, tuple[type, str]] = {
    "hub": (str, "hub URL for pm agent (--hub)"),
    "license_file": (str, "file holding the agent's license key (--license-file)"),
    "name": (str, "agent name shown to operators (--name)"),
    "ca_file": (str, "CA that signed the hub's certificate (--ca-file)"),
    "hub_branch": (str, "take the hub announced for this branch on mDNS (--hub-branch)"),
    "fonts": (list, "font files or folders for text the code pages lack (--font)"),
}

DISCOVERY_KEYS: dict[str, tuple[type, str]] = {
    "scan": (list, "subnets to scan for raw printing ports (--scan)"),
    "scan_ports": (list, "ports to scan instead of 9100 (--scan-port)"),
    "scan_force": (bool, "allow scanning more than a /22 (--scan-force)"),
    "discover": (list, "mdns, usb, serial or all (--discover)"),
    "mdns_interfaces": (list, "interface addresses for mDNS (--mdns-interface)"),
    "discover_every": (float, "minutes between discovery runs (--discover-every)"),
}

SIM_KEYS: dict[str, tuple[type, str]] = {
    "count": (int, "simulated printers pm up runs (--sim)"),
    "port": (int, "port of the first simulated printer (--sim-port)"),
    "control_port": (int, "the simulator's control port (--sim-control-port)"),
    "cloudprnt": (bool, "also a simulated Star CloudPRNT printer (--sim-cloudprnt)"),
}

PRINTER_KEYS: dict[str, tuple[type, str]] = {
    "name": (str, "name shown to operators"),
    "uri": (str, "tcp://HOST:PORT, usb://VID:PID, serial:///dev/ttyUSB0?baudrate=19200, file://"),
    "station": (str, "station it serves (kitchen, bar, receipt, ...)"),
    "profile": (str, "printer profile (pm discover lists them; default: from the model)"),
    "language": (str, f"command language: {', '.join(LANGUAGES)} (default escpos)"),
    "text_mode": (str, f"how text goes out: {', '.join(TEXT_MODES)} (default auto)"),
}

#: ``[[printers]]`` names: letters, digits and a few signs, like the dashboard shows.
NAME_MAX = 64


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file."""

    file: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}" if self.line else str(self.file)
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(ValueError):
    """A config file with problems; the message is the first, ``problems`` all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        more = f" (and {len(problems) - 1} more: pm config check)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = problems


class KeyLines:
    """Where each table and key of a TOML file is, read from its lines."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
    KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]+\"|'[^']+')\s*=")

    def __init__(self, text: str) -> None:
        self.keys: dict[tuple[str, str], int] = {}
        self.tables: dict[str, int] = {}
        counts: dict[str, int] = {}
        table = ""
        for number, line in enumerate(text.splitlines(), 1):
            header = self.HEADER.match(line)
            if header:
                name = header.group(2).strip().strip("\"'")
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    name = f"{name}[{index}]"
                table = name
                self.tables.setdefault(table, number)
                continue
            key = self.KEY.match(line)
            if key:
                self.keys.setdefault((table, key.group(1).strip("\"'")), number)

    def line(self, table: str, key: str | None = None) -> int | None:
        if key is not None and (table, key) in self.keys:
            return self.keys[(table, key)]
        if table in self.tables:
            return self.tables[table]
        # An array of tables written inline (printers = [{...}]): the array's line.
        base = table.split("[", 1)[0]
        return self.keys.get(("", base)) or self.tables.get(base)


@dataclass
class PrinterEntry:
    """A ``[[printers]]`` table, as the ``--printer`` text it stands for."""

    name: str | None
    uri: str
    station: str | None = None
    profile: str | None = None
    language: str | None = None
    text_mode: str | None = None

    def spec_text(self) -> str:
        uri = self.uri
        given = (
            ("profile", self.profile),
            ("language", self.language),
            ("text_mode", self.text_mode),
        )
        extra = {k: v for k, v in given if v}
        if extra:
            uri += ("&" if "?" in uri else "?") + "&".join(f"{k}={v}" for k, v in extra.items())
        text = f"{self.name}={uri}" if self.name else uri
        return f"{text}#{self.station}" if self.station else text


@dataclass
class ConfigFile:
    """What a config file says beyond :class:`HubSettings` (which load_settings reads)."""

    path: Path
    log_level: str | None = None
    agent: dict[str, Any] = field(default_factory=dict)
    discovery: dict[str, Any] = field(default_factory=dict)
    sim: dict[str, Any] = field(default_factory=dict)
    printers: list[PrinterEntry] = field(default_factory=list)


def _setting_names() -> dict[str, str]:
    return {f.name: str(f.type) for f in fields(HubSettings)}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind_ok(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def read_config(path: Path) -> tuple[ConfigFile, list[Problem]]:
    """Read and check ``path``: what it says, and every problem with its line."""
    config = ConfigFile(path=path)
    try:
        text = path.read_text()
    except OSError as exc:
        return config, [Problem(path, None, "", f"cannot read it: {exc.strerror or exc}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        return config, [
            Problem(path, int(found.group(1)) if found else None, "", f"not valid TOML: {exc}")
        ]
    lines = KeyLines(text)
    problems: list[Problem] = []

    def problem(table: str, key: str | None, message: str) -> None:
        name = ".".join(p for p in (table, key) if p)
        problems.append(Problem(path, lines.line(table, key), name, message))

    settings = _setting_names()
    for table_name in SETTINGS_TABLES:
        values = data.get(table_name) if table_name else data
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key in settings and not isinstance(value, dict):
                try:
                    convert_setting(key, value)
                except ValueError as exc:
                    problem(table_name, key, str(exc))
    extra_top = {"log_level"}
    tables = {"hub", "agent", "discovery", "sim", "printers"}
    for key, value in data.items():
        if isinstance(value, dict) and key in ("hub", "agent", "discovery", "sim"):
            continue
        if key == "printers":
            continue
        if key in settings or key in extra_top:
            continue
        known = [*settings, *extra_top, *tables]
        problem("", key, f"unknown setting{_suggest(key, known)}")
    for name in ("hub", "agent"):
        table = data.get(name, {})
        if not isinstance(table, dict):
            problem("", name, f"[{name}] must be a table")
            continue
        for key, value in table.items():
            if key in settings or key == "log_level":
                continue
            if name == "agent" and key in AGENT_KEYS:
                kind, _what = AGENT_KEYS[key]
                if not _kind_ok(value, kind) or (
                    kind is list and not all(isinstance(v, str) for v in value)
                ):
                    problem(name, key, f"must be a {kind.__name__} (got {value!r})")
                else:
                    config.agent[key] = value
                continue
            known = [*settings, "log_level", *(AGENT_KEYS if name == "agent" else ())]
            problem(name, key, f"unknown setting{_suggest(key, known)}")
    for name, keys, target in (
        ("discovery", DISCOVERY_KEYS, config.discovery),
        ("sim", SIM_KEYS, config.sim),
    ):
        table = data.get(name, {})
        if not isinstance(table, dict):
            problem("", name, f"[{name}] must be a table")
            continue
        for key, value in table.items():
            if key not in keys:
                problem(name, key, f"unknown setting{_suggest(key, list(keys))}")
                continue
            kind, _what = keys[key]
            if not _kind_ok(value, kind):
                problem(name, key, f"must be a {kind.__name__} (got {value!r})")
            else:
                target[key] = value
    _check_discovery(config.discovery, lambda k, m: problem("discovery", k, m))
    _check_sim(config.sim, lambda k, m: problem("sim", k, m))
    config.log_level = _log_level(data, lambda t, m: problem(t, "log_level", m))
    config.printers = _printers(data.get("printers", []), problem)
    if not problems:  # what goes together, once every value is of the right kind
        problems.extend(_settings_problems(path, lines))
    return config, problems


def _log_level(data: dict[str, Any], problem: Any) -> str | None:
    found = None
    for table, values in (("", data), ("hub", data.get("hub")), ("agent", data.get("agent"))):
        if isinstance(values, dict) and "log_level" in values:
            level = values["log_level"]
            if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
                problem(table, f"must be one of {', '.join(LOG_LEVELS)} (got {level!r})")
            else:
                found = level.upper()
    return found


def _check_discovery(values: dict[str, Any], problem: Any) -> None:
    for key in ("scan", "scan_ports", "discover", "mdns_interfaces"):
        items = values.get(key)
        if items is None:
            continue
        kind = int if key == "scan_ports" else str
        if not all(_kind_ok(item, kind) for item in items):
            problem(key, f"must be a list of {kind.__name__}s (got {items!r})")
            values.pop(key)
    for port in values.get("scan_ports", []):
        if not 1 <= port <= 65535:
            problem("scan_ports", f"{port} is not a port (1 to 65535)")
    kinds = ("mdns", "usb", "serial", "all")
    for kind in values.get("discover", []):
        if kind not in kinds:
            problem("discover", f"{kind!r} is not one of {', '.join(kinds)}")
    if values.get("discover_every", 0) < 0:
        problem("discover_every", "must be 0 (only at start) or more minutes")
    if values.get("scan"):
        import ipaddress

        for cidr in values["scan"]:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problem("scan", f"{cidr!r} is not a subnet (e.g. 192.168.1.0/24)")


def _check_sim(values: dict[str, Any], problem: Any) -> None:
    if not 0 <= values.get("count", 0) <= 50:
        problem("count", "must be between 0 and 50")
    for key in ("port", "control_port"):
        if key in values and not 1 <= values[key] <= 65535:
            problem(key, f"{values[key]} is not a port (1 to 65535)")


def _printers(raw: Any, problem: Any) -> list[PrinterEntry]:
    from pm_agent.printer_uri import parse_printer_spec  # pyserial etc. only when needed

    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        problem("", "printers", "must be [[printers]] tables (name, uri, station, ...)")
        return []
    entries: list[PrinterEntry] = []
    names: dict[str, int] = {}
    for index, table in enumerate(raw):
        where = f"printers[{index}]"
        bad = False
        for key, value in table.items():
            if key not in PRINTER_KEYS:
                problem(where, key, f"unknown printer field{_suggest(key, list(PRINTER_KEYS))}")
            elif not isinstance(value, str) or not value.strip():
                problem(where, key, f"must be a non-empty string (got {value!r})")
                bad = True
        if "uri" not in table:
            problem(where, None, "a printer needs a uri (tcp://HOST:PORT, usb://VID:PID, ...)")
            continue
        if bad:
            continue
        entry = PrinterEntry(
            name=table.get("name"),
            uri=table["uri"].strip(),
            station=(table.get("station") or "").strip().lower() or None,
            profile=table.get("profile"),
            language=table.get("language"),
            text_mode=table.get("text_mode"),
        )
        if entry.name is not None and (len(entry.name) > NAME_MAX or "=" in entry.name):
            problem(where, "name", f"at most {NAME_MAX} characters, without '='")
            continue
        if entry.station is not None and ("#" in entry.station or len(entry.station) > NAME_MAX):
            problem(where, "station", f"at most {NAME_MAX} characters, without '#'")
            continue
        if entry.language is not None and entry.language not in LANGUAGES:
            problem(where, "language", f"must be one of {', '.join(LANGUAGES)}")
            continue
        if entry.text_mode is not None and entry.text_mode not in TEXT_MODES:
            problem(where, "text_mode", f"must be one of {', '.join(TEXT_MODES)}")
            continue
        try:
            spec = parse_printer_spec(entry.spec_text())
        except ValueError as exc:
            key = "profile" if "profile" in str(exc) else "uri"
            problem(where, key, str(exc))
            continue
        if spec.name in names:
            problem(where, "name", f"{spec.name!r} is also printers[{names[spec.name]}]")
            continue
        names[spec.name] = index
        entries.append(entry)
    return entries


def _settings_problems(path: Path, lines: KeyLines) -> list[Problem]:
    """The hub's own checks of its settings (types, ranges, what goes together)."""
    try:
        load_settings(config_file=path, env=False)
    except ValueError as exc:
        message = str(exc)
        for name in sorted(_setting_names(), key=len, reverse=True):
            if re.search(rf"\b{re.escape(name)}\b", message):
                for table in SETTINGS_TABLES:
                    if (table, name) in lines.keys:
                        return [Problem(path, lines.keys[(table, name)], name, message)]
                return [Problem(path, None, name, message)]
        return [Problem(path, None, "", message)]
    return []


def load_config(path: Path) -> ConfigFile:
    """What ``path`` says; :class:`ConfigError` (a ValueError) when anything is wrong."""
    config, problems = read_config(path)
    if problems:
        raise ConfigError(problems)
    return config


def apply_to_args(config: ConfigFile, args: argparse.Namespace) -> None:
    """Fill the options the command line left out from the file (the command line wins;
    ``--printer`` flags replace the file's printers)."""

    def fill(name: str, value: Any) -> None:
        if value is None or not hasattr(args, name):
            return
        current = getattr(args, name)
        if current is None or current is False or (isinstance(current, list) and not current):
            setattr(args, name, value)

    fill("log_level", config.log_level)
    if config.printers and hasattr(args, "printer") and not args.printer:
        args.printer = [p.spec_text() for p in config.printers]
    agent = config.agent
    fill("hub", agent.get("hub"))
    fill("license_file", Path(agent["license_file"]) if "license_file" in agent else None)
    fill("name", agent.get("name"))
    fill("ca_file", Path(agent["ca_file"]) if "ca_file" in agent else None)
    fill("hub_branch", agent.get("hub_branch"))
    fill("font", agent.get("fonts"))
    found = config.discovery
    fill("scan", found.get("scan"))
    fill("scan_port", found.get("scan_ports"))
    fill("scan_force", found.get("scan_force"))
    fill("discover", found.get("discover"))
    fill("mdns_interface", found.get("mdns_interfaces"))
    fill("discover_every", found.get("discover_every"))
    sim = config.sim
    fill("sim", sim.get("count"))
    fill("sim_port", sim.get("port"))
    fill("sim_control_port", sim.get("control_port"))
    fill("sim_cloudprnt", sim.get("cloudprnt"))
