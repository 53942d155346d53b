"""``pm service``: the branch box (``pm up``) as a systemd service.

``pm service install`` writes the unit (``--dry-run`` prints it), a starting config
file if there is none, and the dedicated user; ``pm service status`` says whether the
unit is installed and running and what the hub answers.

The unit runs ``pm up --config /etc/printermaster/pm.toml`` as the user
``printermaster``, with its state in ``/var/lib/printermaster`` (systemd makes it:
``StateDirectory=``) and the sandbox options that leave it what a branch box needs:
its data dir, the network (IPv4, IPv6, netlink for the interface list mDNS reads, Unix
sockets for journald), USB printers (``/dev/bus/usb``) and serial ones (the ``dialout``
and ``lp`` groups own ``/dev/ttyUSB*``, ``/dev/ttyACM*`` and ``/dev/usb/lp*``).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from pm.config_file import SERVICE_CONFIG

UNIT_NAME = "printermaster"
SERVICE_USER = "printermaster"
STATE_DIR = Path("/var/lib/printermaster")
UNIT_DIR = Path("/etc/systemd/system")

#: The config file ``pm service install`` writes when there is none.
STARTING_CONFIG = """\
# PrinterMaster branch box: `pm config check {path}` says what is wrong and where.
# Every field is in docs/operations.md ("The config file").

[hub]
data_dir = "{data_dir}"
host = "0.0.0.0"          # accept agents and dashboards from the LAN
port = 3001
# branch_name = "Harbour"

# One table per printer the box drives:
# [[printers]]
# name = "Kitchen-1"
# uri = "tcp://192.168.1.50:9100"
# station = "kitchen"
# profile = "TM-T88V"
"""


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="service_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("install", help="write the systemd unit (and the user, the config)")
    p.add_argument("--dry-run", action="store_true", help="print the unit; change nothing")
    p.add_argument(
        "--config",
        type=Path,
        default=SERVICE_CONFIG,
        help=f"the config file the service reads (default {SERVICE_CONFIG})",
    )
    p.add_argument(
        "--pm",
        metavar="PATH",
        help="the pm program the service runs (default: this one, "
        f"{shutil.which('pm') or sys.argv[0]})",
    )
    p.add_argument(
        "--unit-dir",
        type=Path,
        default=UNIT_DIR,
        help=f"where the unit goes (default {UNIT_DIR})",
    )
    p.add_argument(
        "--user", default=SERVICE_USER, help=f"the user it runs as (default {SERVICE_USER})"
    )
    p.add_argument(
        "--no-systemctl",
        action="store_true",
        help="do not run systemctl daemon-reload (an image being built, a container)",
    )
    p = sub.add_parser("status", help="is the service installed, running, answering?")
    p.add_argument("--config", type=Path, default=SERVICE_CONFIG, help="the service's config")
    p.add_argument("--unit-dir", type=Path, default=UNIT_DIR)


def pm_program(given: str | None = None) -> str:
    """The absolute path of the ``pm`` the unit starts."""
    if given:
        return str(Path(given).absolute())
    found = shutil.which("pm")
    if found:
        return str(Path(found).absolute())
    # Run as ``python -m pm``: the console script beside this interpreter.
    beside = Path(sys.executable).with_name("pm")
    return str(beside if beside.exists() else Path(sys.argv[0]).absolute())


def render_unit(*, pm: str, config: Path, user: str = SERVICE_USER) -> str:
    """The systemd unit for ``pm up`` (it passes ``systemd-analyze verify``)."""
    state = STATE_DIR.name
    command = shlex.join([pm, "up", "--config", str(config), "--data-dir", str(STATE_DIR)])
    return f"""\
# PrinterMaster branch box (hub + agent): written by `pm service install`.
# Logs: journalctl -u {UNIT_NAME}   Settings and printers: {config}
[Unit]
Description=PrinterMaster branch box (hub and printer agent)
After=network-online.target time-sync.target
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
SupplementaryGroups=dialout lp
ExecStart={command}
# SIGTERM is a planned stop: agents and dashboards are told, no printer alerts.
KillSignal=SIGTERM
TimeoutStopSec=20
Restart=on-failure
RestartSec=5
# Exit code 2 is a bad setting or a failed start-up check: retrying will not help.
RestartPreventExitStatus=2
StateDirectory={state}
StateDirectoryMode=0700
ConfigurationDirectory=printermaster
Environment=PYTHONUNBUFFERED=1

# Sandbox: the data dir is the only place it writes.
ProtectSystem=strict
ReadWritePaths={STATE_DIR}
ProtectHome=true
PrivateTmp=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
ProtectHostname=true
ProtectProc=invisible
RestrictNamespaces=true
RestrictRealtime=true
RestrictSUIDSGID=true
LockPersonality=true
RemoveIPC=true
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
UMask=0077
# Network: IPv4/IPv6 (hub, printers), netlink (interface list for mDNS), Unix (journald).
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# Printers on USB (pyusb: /dev/bus/usb is char-usb_device) and serial ports (groups
# dialout, lp); no other devices but /dev/null and the like.
DevicePolicy=closed
DeviceAllow=char-usb_device rw
DeviceAllow=char-ttyUSB rw
DeviceAllow=char-ttyACM rw
DeviceAllow=char-usb rw

[Install]
WantedBy=multi-user.target
"""


def run_service(args: argparse.Namespace) -> int:
    if args.service_command == "install":
        return install(args)
    return status(args)


def install(args: argparse.Namespace) -> int:
    program = pm_program(args.pm)
    unit = render_unit(pm=program, config=args.config, user=args.user)
    if program.startswith(("/home/", "/root/")):
        _say(
            f"warning: {program} is under a home dir, which the service cannot see "
            "(ProtectHome=); install it system-wide: sudo pipx install --global printermaster "
            "(or a venv in /opt/printermaster) and pass --pm"
        )
    if args.dry_run:
        print(unit, end="")
        return 0
    if os.geteuid() != 0:
        raise PermissionError(
            1,
            "installing a service needs root: sudo pm service install (or --dry-run to see "
            "the unit)",
        )
    _ensure_user(args.user)
    if not args.config.exists():
        args.config.parent.mkdir(parents=True, exist_ok=True)
        args.config.write_text(STARTING_CONFIG.format(path=args.config, data_dir=STATE_DIR))
        # Readable by the service's group, writable by root only.
        os.chown(args.config, 0, pwd.getpwnam(args.user).pw_gid)
        args.config.chmod(0o640)
        _say(f"wrote a starting config: {args.config} (add your printers there)")
    path = args.unit_dir / f"{UNIT_NAME}.service"
    args.unit_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(unit)
    _say(f"wrote {path}")
    if not args.no_systemctl and shutil.which("systemctl"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    _say(
        f"next: pm config check {args.config}, then systemctl enable --now {UNIT_NAME}; "
        f"logs: journalctl -u {UNIT_NAME} -f"
    )
    return 0


def _ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise OSError(1, f"no user {user} and no useradd to make one; create it first")
    subprocess.run(
        [useradd, "--system", "--user-group", "--home-dir", str(STATE_DIR), "--no-create-home",
         "--shell", "/usr/sbin/nologin", user],
        check=True,
    )  # fmt: skip
    _say(f"made the system user {user}")


def status(args: argparse.Namespace) -> int:
    """Installed? Active? Does the hub answer? Exit 0 only when it runs and answers."""
    path = args.unit_dir / f"{UNIT_NAME}.service"
    print(f"unit:    {path} ({'installed' if path.exists() else 'not installed'})")
    active = "unknown (no systemctl)"
    if shutil.which("systemctl"):
        result = subprocess.run(
            ["systemctl", "is-active", UNIT_NAME], capture_output=True, text=True, check=False
        )
        said = (result.stdout.strip() or result.stderr.strip() or "unknown").splitlines()
        active = said[0] if said else "unknown"
        if "bus" in active.lower():
            active = f"unknown (systemd is not running here: {active})"
    print(f"service: {active}")
    url = _hub_url(args.config)
    health = _health(url)
    print(f"hub:     {url} " + (f"answers: {health}" if health else "does not answer"))
    return 0 if active == "active" and health else 3


def _hub_url(config: Path) -> str:
    from pm_hub.config import load_settings

    try:
        settings = load_settings(config_file=config if config.exists() else None)
    except ValueError:
        settings = load_settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{host}:{settings.port}"


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=3) as resp:
            data = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, str | int | float))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
