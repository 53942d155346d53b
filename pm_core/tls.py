"""TLS for every link: the hub's server context (``--tls-cert/--tls-key``) and the
clients' contexts (agents, dashboards, branch links), which trust the system's CAs, or
a private CA given with ``--ca-file``.

Tokens and tickets cross the network between sites; on a shared branch network too.
TLS can also end at a reverse proxy in front of the hub (docs/security.md).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The hub's context; ValueError naming the file when one cannot be used."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except FileNotFoundError as exc:
        raise ValueError(f"TLS: {exc.filename} does not exist") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"TLS: cannot use {cert_file} with {key_file} ({exc}); give a PEM certificate "
            "chain and its private key"
        ) from None
    return context


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A context that checks the hub's certificate against the system's CAs, or only
    against ``ca_file`` (a private CA) when given."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except FileNotFoundError:
        raise ValueError(f"TLS: CA file {ca_file} does not exist") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"TLS: cannot read CA file {ca_file} ({exc})") from None


def pinned_context(cert_file: Path) -> ssl.SSLContext:
    """A context that trusts exactly this certificate (the hub's own, whoever issued it)
    and not its name: for the agent inside ``pm up``, which reaches its own hub on
    127.0.0.1 where the certificate's host name does not match."""
    context = client_context(cert_file)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


def socketio_options(url: str, context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Options for a python-socketio client reaching ``url`` over websocket: the TLS
    context when the URL is ``https://`` (python-engineio passes it to aiohttp; None:
    the system's CAs)."""
    if not url.lower().startswith("https://"):
        return {}
    return {"websocket_extra_options": {"ssl": context or client_context()}}
