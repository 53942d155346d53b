"""Operator tokens (JWT HS256) and agent license keys.

The signing secret is generated into the data dir on first use and never leaves
it. License keys are shown once when created and stored only as a SHA-256 hash
(they are long random strings, so a fast hash is enough).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from pm_core.private_files import private_dir

ISSUER = "printermaster"
ROLES = ("admin", "manager", "operator", "viewer", "branch")
#: Roles allowed to change things (print, cancel, acknowledge).
ACTING_ROLES = frozenset({"admin", "manager", "operator"})
SECRET_FILE = "jwt-secret"
_TTL = re.compile(r"^(\d+)\s*([smhdw]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AuthError(Exception):
    """Credentials that do not let the caller in; the message says why."""


def parse_ttl(text: str) -> int:
    """``"8h"`` -> 28800 seconds; accepts s, m, h, d, w or plain seconds."""
    match = _TTL.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad duration {text!r}: use e.g. 30m, 8h, 7d")
    return int(match.group(1)) * _TTL_UNITS[match.group(2)]


def load_or_create_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_bytes().strip()
    private_dir(data_dir)
    secret = secrets.token_hex(32).encode()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    try:
        os.link(tmp, path)  # first writer wins if two processes race
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()


@dataclass(frozen=True)
class Principal:
    """Who is on the other end of an operator connection or HTTP request."""

    sub: str
    role: str
    company_id: int
    branch_ids: tuple[int, ...] | None = None  # None: every branch of the company
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def can_act(self) -> bool:
        return self.role in ACTING_ROLES

    def sees_branch(self, branch_id: int | None) -> bool:
        return self.branch_ids is None or branch_id in self.branch_ids

    def sees(self, record: dict[str, Any]) -> bool:
        return record.get("company_id") == self.company_id and self.sees_branch(
            record.get("branch_id")
        )

    @property
    def branch_list(self) -> list[int] | None:
        return None if self.branch_ids is None else list(self.branch_ids)


class TokenIssuer:
    def __init__(self, secret: bytes, *, issuer: str = ISSUER) -> None:
        self._secret = secret
        self._issuer = issuer

    def create(
        self,
        *,
        role: str,
        company_id: int = 1,
        branch_ids: list[int] | None = None,
        ttl_seconds: int = 8 * 3600,
        sub: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if branch_ids is None and role != "admin":
            raise ValueError(f"a {role} token needs --branch (only admin tokens span branches)")
        if role == "branch" and len(branch_ids or ()) != 1:
            raise ValueError("a branch token names exactly one branch: --branch B")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub or f"{role}-{secrets.token_hex(3)}",
            "role": role,
            "company_id": company_id,
            "iat": now,
            "exp": now + ttl_seconds,
            "iss": self._issuer,
        }
        if branch_ids is not None:
            claims["branch_ids"] = list(branch_ids)
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: Any) -> Principal:
        if not isinstance(token, str) or not token:
            raise AuthError("missing token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        role = claims.get("role")
        company_id = claims.get("company_id")
        branch_ids = claims.get("branch_ids")
        if role not in ROLES:
            raise AuthError("token has no valid role")
        if not isinstance(company_id, int) or isinstance(company_id, bool):
            raise AuthError("token has no company_id")
        if branch_ids is not None:
            if not isinstance(branch_ids, list) or not all(
                isinstance(b, int) and not isinstance(b, bool) for b in branch_ids
            ):
                raise AuthError("token branch_ids must be a list of integers")
            branches: tuple[int, ...] | None = tuple(branch_ids)
        elif role == "admin":
            branches = None
        else:
            raise AuthError("only admin tokens may omit branch_ids")
        if role == "branch" and (branches is None or len(branches) != 1):
            raise AuthError("a branch token names exactly one branch")
        return Principal(
            sub=str(claims["sub"]),
            role=role,
            company_id=company_id,
            branch_ids=branches,
            claims=claims,
        )


def new_license_key() -> str:
    return "pmk_" + secrets.token_urlsafe(24)


def hash_license_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def license_prefix(key: str) -> str:
    return key[:10]
