"""Where the dashboard connects and with which token (no Textual here).

Hub URL: ``--hub``, else ``PM_HUB``, else ``hub`` in the config file, else a hub
found on mDNS (when ``pm_core.mdns.find_hub`` exists), else http://127.0.0.1:3001.
Token: ``--token``, else ``PM_TOKEN``, else ``token`` (or ``token_file``) in the
config file ``~/.config/printermaster/tui.toml`` (``$XDG_CONFIG_HOME`` respected).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
import ssl
import stat
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pm_core.tls import client_context

log = logging.getLogger(__name__)

DEFAULT_HUB = "http://127.0.0.1:3001"


class TuiConfigError(Exception):
    """Something the person starting ``pm tui`` has to fix; the message says what."""


@dataclass
class TuiSettings:
    hub_url: str
    token: str | None
    hub_from: str
    token_from: str
    warnings: list[str] = field(default_factory=list)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "printermaster" / "tui.toml"


def load_config_file(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The ``[tui]`` table (or top-level keys) of the config file; warnings about it."""
    if not path.exists():
        return {}, []
    warnings = []
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TuiConfigError(f"cannot read {path}: {exc}") from None
    section = data.get("tui")
    table: dict[str, Any] = section if isinstance(section, dict) else data
    try:
        mode = path.stat().st_mode
        if table.get("token") and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(f"{path} holds a token and others can read it: chmod 600 {path}")
    except OSError:
        pass
    return dict(table), warnings


def check_url(url: str) -> str:
    """The URL without a trailing slash, or a clear error for a malformed one."""
    parsed = urllib.parse.urlparse(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise TuiConfigError(
            f"hub URL must start with http:// or https:// (got {url!r}); "
            "for example --hub http://192.168.1.20:3001"
        )
    if not parsed.hostname:
        raise TuiConfigError(f"hub URL {url!r} has no host name")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise TuiConfigError(f"hub URL {url!r} has an invalid port") from None
    return url.strip().rstrip("/")


def discover_hub(
    timeout: float = 2.0, interfaces: list[str] | None = None, branch: str | None = None
) -> str | None:
    """A hub advertised on mDNS (of ``branch`` when given), if ``pm_core.mdns.find_hub``
    exists and finds one."""
    try:
        from pm_core import mdns  # lazy: zeroconf loads only when no hub URL was given
    except Exception:
        return None
    find_hub: Callable[..., Any] | None = getattr(mdns, "find_hub", None)
    if find_hub is None:
        return None
    try:
        try:
            found = find_hub(timeout=timeout, interfaces=interfaces, branch=branch)
        except TypeError:
            found = find_hub(timeout=timeout)
        if inspect.isawaitable(found):
            found = asyncio.run(_await(found))
    except Exception as exc:  # discovery is a convenience: never fatal
        log.info("mDNS discovery failed: %s", exc)
        return None
    return _as_url(found)


async def _await(value: Any) -> Any:
    return await value


def _as_url(found: Any) -> str | None:
    if found is None:
        return None
    if isinstance(found, str):
        return found if "://" in found else f"http://{found}"
    if isinstance(found, tuple) and len(found) >= 2:
        return f"http://{found[0]}:{found[1]}"
    url = getattr(found, "url", None)
    if isinstance(url, str):
        return url
    host, port = getattr(found, "host", None), getattr(found, "port", None)
    if host and port:
        return f"http://{host}:{port}"
    return None


def resolve(
    *,
    hub: str | None = None,
    token: str | None = None,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    discover: Callable[[], str | None] = discover_hub,
    token_file: Path | None = None,
) -> TuiSettings:
    env = os.environ if env is None else env
    path = config_file or default_config_path(env)
    if config_file is not None and not config_file.exists():
        raise TuiConfigError(f"config file {config_file} does not exist")
    table, warnings = load_config_file(path)

    if hub:
        hub_url, hub_from = hub, "--hub"
    elif env.get("PM_HUB"):
        hub_url, hub_from = env["PM_HUB"], "PM_HUB"
    elif isinstance(table.get("hub"), str) and table["hub"]:
        hub_url, hub_from = table["hub"], str(path)
    else:
        found = discover()
        hub_url, hub_from = (found, "mDNS") if found else (DEFAULT_HUB, "default")

    if token:
        value, token_from = token, "--token"
    elif token_file is not None:
        value, token_from = _read_token_file(token_file, "--token-file")
    elif env.get("PM_TOKEN"):
        value, token_from = env["PM_TOKEN"], "PM_TOKEN"
    elif isinstance(table.get("token"), str) and table["token"]:
        value, token_from = table["token"], str(path)
    elif isinstance(table.get("token_file"), str):
        value, token_from = _read_token_file(Path(table["token_file"]), "token_file")
    else:
        value, token_from = None, ""
    return TuiSettings(
        hub_url=check_url(hub_url),
        token=value or None,
        hub_from=hub_from,
        token_from=token_from,
        warnings=warnings,
    )


def _read_token_file(path: Path, where: str) -> tuple[str, str]:
    """The token in ``path`` (a file only its owner reads: not on a command line, where
    ``ps`` shows it), and where it came from."""
    token_path = path.expanduser()
    try:
        return token_path.read_text().strip(), str(token_path)
    except OSError as exc:
        raise TuiConfigError(f"cannot read {where} {token_path}: {exc}") from None


def preflight(
    url: str, *, timeout: float = 3.0, tls: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """Ask ``/healthz``; turn every way it can fail into one sentence."""
    host = urllib.parse.urlparse(url).hostname or url
    context = (tls or client_context()) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout, context=context) as response:
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        raise TuiConfigError(
            f"{url} answered HTTP {exc.code} to /healthz: it is not a PrinterMaster hub "
            "(check the port; the hub listens on 3001 by default)"
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise TuiConfigError(
                f"nothing answers at {url}: the hub is down or on another port. "
                "Start it with `pm up` (or `pm hub`), or pass --hub URL."
            ) from None
        if isinstance(reason, socket.gaierror):
            raise TuiConfigError(f"cannot find the host {host!r}: check the --hub URL") from None
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise TuiConfigError(
                f"{url}: the hub's certificate is not trusted ({reason.verify_message}); "
                "give its CA with --ca-file"
            ) from None
        if isinstance(reason, ssl.SSLError):
            raise TuiConfigError(
                f"{url}: TLS failed ({reason}); is the hub serving https:// on that port?"
            ) from None
        if isinstance(reason, TimeoutError | socket.timeout):
            raise TuiConfigError(
                f"{url} did not answer within {timeout:.0f} s (wrong address, or a firewall?)"
            ) from None
        raise TuiConfigError(f"cannot reach {url}: {reason}") from None
    except TimeoutError:
        raise TuiConfigError(f"{url} did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise TuiConfigError(f"cannot reach {url}: {exc}") from None
    try:
        health = json.loads(body)
    except ValueError:
        health = None
    if not isinstance(health, dict) or "ok" not in health:
        raise TuiConfigError(f"{url} answers, but it is not a PrinterMaster hub")
    return health
