"""Error codes and the two ack shapes every handler answers with."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_PAYLOAD = "invalid_payload"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    OFFLINE = "offline"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    INTERNAL = "internal"
    AUTH_FAILED = "auth_failed"


#: HTTP status for each error code (the HTTP API uses the same codes).
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PAYLOAD: 400,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.OFFLINE: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
}


class ProtocolError(Exception):
    """A request that cannot be served; becomes an error ack or an HTTP error."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_ack(self) -> dict[str, Any]:
        return error_ack(self.code, self.message, **self.details)


def ok_ack(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_ack(code: ErrorCode | str, message: str, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": str(code), "message": message}
    if details:
        error["details"] = details
    return {"ok": False, "error": error}


def error_of(ack: Any) -> dict[str, Any]:
    """The ``error`` object of an ack (empty when there is none or it is malformed)."""
    if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
        return ack["error"]
    return {}


def outcome_of(data: dict[str, Any], *, failed: str = "failed") -> dict[str, Any]:
    """``{"ok": bool}`` plus, when not ok, an ``error`` with a string code and message,
    from a result someone reported (a malformed error becomes ``internal``)."""
    result: dict[str, Any] = {"ok": bool(data.get("ok"))}
    if not result["ok"]:
        error = data.get("error")
        result["error"] = (
            {"code": str(error.get("code", "internal")), "message": str(error.get("message"))}
            if isinstance(error, dict)
            else {"code": "internal", "message": str(error or failed)}
        )
    return result


def known_code(value: Any, default: ErrorCode = ErrorCode.INTERNAL) -> ErrorCode:
    """``value`` as an ErrorCode if it is one, else ``default``."""
    try:
        return ErrorCode(value)
    except ValueError:
        return default
