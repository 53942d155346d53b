"""A private CA and a certificate for the hub on 127.0.0.1 (trustme), for TLS tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class Certificates:
    ca: Path  #: the private CA's certificate (what --ca-file takes)
    cert: Path  #: the hub's certificate chain (--tls-cert)
    key: Path  #: its private key (--tls-key)


def make_certificates(where: Path) -> Certificates:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost, in ``where``."""
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    ca, cert, key = where / "ca.pem", where / "hub.pem", where / "hub.key"
    authority.cert_pem.write_to_path(str(ca))
    server.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return Certificates(ca, cert, key)
