"""Operator tokens (JWT HS256) and agent license keys.

The signing secret is generated into the data dir on first use and never leaves
it. License keys are shown once when created and stored only as a SHA-256 hash
(they are long random strings, so a fast hash is enough).

Every token carries an id (``jti``) by which it can be revoked, and the id of its
session (``sess``: the first token's id; a refreshed token keeps it, so revoking
the session ends every token of the shift). A token may live at most
``max_ttl_s`` (operators) or ``branch_max_ttl_s`` (branch links); one signed for
longer is refused, also when it was signed with the right key.
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
#: People's roles, least to most: each may do what the ones before it may
#: (docs/security.md has the table; ``pm_hub.operator_actions.REQUIRED_ROLE`` the rules).
ROLE_ORDER = ("viewer", "operator", "manager", "admin")
SECRET_FILE = "jwt-secret"
#: Longest lifetime of an operator token (admin, manager, operator, viewer).
DEFAULT_MAX_TTL_S = 12 * 3600
#: Longest lifetime of a branch hub's token (the link between sites).
DEFAULT_BRANCH_MAX_TTL_S = 30 * 86400
#: Clock difference forgiven when checking a lifetime.
LEEWAY_S = 60
_TTL = re.compile(r"^(\d+)\s*([smhdw]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AuthError(Exception):
    """Credentials that do not let the caller in; the message says why."""


def format_ttl(seconds: float) -> str:
    """``43200`` -> ``12h``: the shortest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


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

    def at_least(self, role: str) -> bool:
        """This principal's role is ``role`` or above it (a branch token is none)."""
        if self.role not in ROLE_ORDER:
            return False
        return ROLE_ORDER.index(self.role) >= ROLE_ORDER.index(role)

    @property
    def token_id(self) -> str | None:
        """The token's ``jti`` (None for a principal that came from no token)."""
        value = self.claims.get("jti")
        return value if isinstance(value, str) else None

    @property
    def session_id(self) -> str | None:
        """The ``sess`` the token belongs to (its own id for a first token)."""
        value = self.claims.get("sess", self.claims.get("jti"))
        return value if isinstance(value, str) else None

    @property
    def expires_at(self) -> float | None:
        value = self.claims.get("exp")
        return float(value) if isinstance(value, int | float) else None

    def sees_branch(self, branch_id: int | None) -> bool:
        return self.branch_ids is None or branch_id in self.branch_ids

    def sees(self, record: dict[str, Any]) -> bool:
        return record.get("company_id") == self.company_id and self.sees_branch(
            record.get("branch_id")
        )

    @property
    def branch_list(self) -> list[int] | None:
        return None if self.branch_ids is None else list(self.branch_ids)


@dataclass(frozen=True)
class IssuedToken:
    """A token just signed, with its claims (to record it and show its id)."""

    token: str
    claims: dict[str, Any]

    @property
    def token_id(self) -> str:
        return str(self.claims["jti"])


class TokenIssuer:
    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str = ISSUER,
        max_ttl_s: float = DEFAULT_MAX_TTL_S,
        branch_max_ttl_s: float = DEFAULT_BRANCH_MAX_TTL_S,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._max_ttl = max_ttl_s
        self._branch_max_ttl = branch_max_ttl_s

    def max_ttl(self, role: str) -> float:
        """The longest lifetime a token of ``role`` may have."""
        return self._branch_max_ttl if role == "branch" else self._max_ttl

    def create(
        self,
        *,
        role: str,
        company_id: int = 1,
        branch_ids: list[int] | None = None,
        ttl_seconds: int = 8 * 3600,
        sub: str | None = None,
    ) -> str:
        """A signed token (see :meth:`issue` for its id and claims)."""
        return self.issue(
            role=role,
            company_id=company_id,
            branch_ids=branch_ids,
            ttl_seconds=ttl_seconds,
            sub=sub,
        ).token

    def issue(
        self,
        *,
        role: str,
        company_id: int = 1,
        branch_ids: list[int] | None = None,
        ttl_seconds: int = 8 * 3600,
        sub: str | None = None,
        session: str | None = None,
    ) -> IssuedToken:
        """Sign a token; ``session``: the session a refreshed token continues."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if branch_ids is None and role != "admin":
            raise ValueError(f"a {role} token needs --branch (only admin tokens span branches)")
        if role == "branch" and len(branch_ids or ()) != 1:
            raise ValueError("a branch token names exactly one branch: --branch B")
        longest = self.max_ttl(role)
        if ttl_seconds > longest:
            setting = "branch_token_max_ttl_s" if role == "branch" else "token_max_ttl_s"
            article = "an" if role[0] in "aeiou" else "a"
            raise ValueError(
                f"{article} {role} token may live at most {format_ttl(longest)} (--ttl; the hub's "
                f"{setting} setting); make a new one when it runs out"
            )
        now = int(time.time())
        # Hex, so an id never starts with '-' (`pm token revoke -Zm...` read it as an
        # option).
        jti = secrets.token_hex(12)
        claims: dict[str, Any] = {
            "sub": sub or f"{role}-{secrets.token_hex(3)}",
            "role": role,
            "company_id": company_id,
            "iat": now,
            "exp": now + ttl_seconds,
            "iss": self._issuer,
            "jti": jti,
            "sess": session or jti,
        }
        if branch_ids is not None:
            claims["branch_ids"] = list(branch_ids)
        return IssuedToken(jwt.encode(claims, self._secret, algorithm="HS256"), claims)

    def verify(self, token: Any) -> Principal:
        if not isinstance(token, str) or not token:
            raise AuthError("missing token")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "jti"]},
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
        lifetime = claims["exp"] - claims["iat"]
        if not isinstance(lifetime, int | float) or lifetime > self.max_ttl(role) + LEEWAY_S:
            raise AuthError(
                f"token lives longer than this hub allows for its role {role} "
                f"({format_ttl(self.max_ttl(role))}); make a new one"
            )
        for name in ("jti", "sess"):
            value = claims.get(name, claims.get("jti"))
            if not isinstance(value, str) or not 1 <= len(value) <= 64:
                raise AuthError(f"token {name} must be a short string")
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
