"""A running hub's HTTP API from the command line (``pm printer ...``, ``pm agent
retire``): the hub URL, a token, one request, the answer or one line that says why not.

The token is ``--token-file`` or ``PM_TOKEN``; on the hub's own machine, without
either, a 5-minute admin token is signed with the data dir's secret (whoever can read
that secret can sign any token anyway) and noted in the token register.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pm_core.private_files import read_secret
from pm_hub.command import settings_from

#: Seconds the one request may take.
TIMEOUT_S = 20.0
#: Lifetime of a token made on the hub's machine for one command.
LOCAL_TOKEN_TTL_S = 300


def add_hub_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hub",
        default=os.environ.get("PM_HUB"),
        metavar="URL",
        help="the hub, e.g. http://10.0.0.2:3001 (or PM_HUB; default: this machine's hub "
        "on the port in the settings)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="an operator token (manager or admin) in FILE (or PM_TOKEN; default on the "
        "hub's machine: a 5-minute admin token signed with the data dir's secret)",
    )
    parser.add_argument("--ca-file", type=Path, metavar="PEM", help="trust this CA for https://")
    parser.add_argument("--data-dir", type=Path, help="the hub's data dir (for the local token)")
    parser.add_argument("--config", type=Path, help="TOML settings file")


class HubRequestFailed(ValueError):
    """The hub answered with an error, or could not be reached (the message says which)."""


def _token(args: argparse.Namespace, command: str) -> str:
    if args.token_file is not None:
        return read_secret(args.token_file, "token")
    if os.environ.get("PM_TOKEN"):
        return os.environ["PM_TOKEN"].strip()
    from pm_hub import credential_admin
    from pm_hub.auth import SECRET_FILE

    settings = settings_from(args)
    if not (settings.data_dir / SECRET_FILE).exists():
        raise ValueError(
            f"no token: give --token-file FILE (make one on the hub with pm token create "
            f"--role manager), or run this on the hub's machine (data dir {settings.data_dir})"
        )
    issued = credential_admin.issue_token(
        settings,
        role="admin",
        company_id=1,
        branch_ids=None,
        ttl_seconds=LOCAL_TOKEN_TTL_S,
        sub=f"pm {command} (local)",
    )
    return issued.token


def _hub_url(args: argparse.Namespace) -> str:
    if args.hub:
        return str(args.hub).rstrip("/")
    settings = settings_from(args)
    scheme = "https" if settings.tls_cert else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{scheme}://{host}:{settings.port}"


def call_hub(
    args: argparse.Namespace, method: str, path: str, body: Any = None, *, command: str
) -> dict[str, Any]:
    """One API request; the answer's JSON, or :class:`HubRequestFailed`."""
    url = _hub_url(args) + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {_token(args, command)}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context(cafile=str(args.ca_file) if args.ca_file else None)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read()).get("error") or {}
        except ValueError:
            error = {}
        message = error.get("message") or exc.reason
        raise HubRequestFailed(f"{error.get('code', exc.code)}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubRequestFailed(f"cannot reach the hub at {url}: {reason}") from None
    if not isinstance(answer, dict):
        raise HubRequestFailed(f"unexpected answer from {url}")
    return answer
