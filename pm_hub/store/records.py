"""Rows to the records that go on the wire (the shapes of ``pm_core.protocol.records``)."""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any

from pm_core.protocol import job_correlation_id
from pm_core.protocol.records import AgentRecord, AlertRecord, JobError, JobRecord, PrinterRecord


def _loads(value: str | None, default: Any) -> Any:
    if not value:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default


@functools.lru_cache(maxsize=256)
def _capabilities(value: str | None) -> dict[str, Any]:
    # Printers share a handful of profiles and their capabilities change only with the
    # printer's settings, so the parse is cached (a status change rebuilds the record).
    parsed = _loads(value, {})
    return parsed if isinstance(parsed, dict) else {}


def printer_record(row: sqlite3.Row | dict[str, Any]) -> PrinterRecord:
    r = dict(row)
    return {
        "id": r["id"],
        "name": r["name"],
        "address": r["address"],
        "kind": r["kind"],
        "model": r["model"],
        "status": r["status"],
        "flags": _loads(r["flags"], {}),
        "status_supported": bool(r["status_supported"]),
        "paused": bool(r["paused"]),
        "paused_at": r.get("paused_at"),
        "station": r["station"],
        "station_priority": r.get("station_priority"),
        "identity": r.get("identity"),
        "serial": r.get("serial"),
        "mac": r.get("mac"),
        "profile": r.get("profile"),
        "profile_override": r.get("profile_override"),
        "language_override": r.get("language_override"),
        "text_mode": r.get("text_mode"),
        "capabilities": dict(_capabilities(r.get("capabilities"))),
        "default_expiry_s": r.get("default_expiry_s"),
        "branch_id": r["branch_id"],
        "company_id": r["company_id"],
        "agent_id": r["agent_id"],
        "last_seen": r["last_seen"],
        "status_changed_at": r["status_changed_at"],
        "created_at": r["created_at"],
    }


def job_record(row: sqlite3.Row | dict[str, Any], *, with_document: bool = False) -> JobRecord:
    r = dict(row)
    error: JobError | None = None
    if r["error_code"]:
        error = {"code": r["error_code"], "message": r["error_message"] or ""}
    record: JobRecord = {
        "id": r["id"],
        "printer_id": r["printer_id"],
        "station": r["station"],
        "status": r["status"],
        "branch_id": r["branch_id"],
        "company_id": r["company_id"],
        "copies": r["copies"],
        "idempotency_key": r["idempotency_key"],
        "submitted_by": r["submitted_by"],
        "attempts": r["attempts"],
        "error": error,
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "expires_at": r["expires_at"],
        "finished_at": r["finished_at"],
        "reprint_of": r["reprint_of"],
        "failover_from": r["failover_from"],
        "correlation_id": job_correlation_id(r["id"], r["created_at"]),
    }
    if with_document:
        record["document"] = _loads(r["document"], {})
        preview = _loads(r.get("sent_preview"), None)
        if isinstance(preview, dict):
            record["sent_preview"] = preview
    if r.get("document_pruned_at"):
        record["document_pruned_at"] = r["document_pruned_at"]
    return record


def agent_record(row: sqlite3.Row | dict[str, Any]) -> AgentRecord:
    r = dict(row)
    record: AgentRecord = {
        "id": r["id"],
        "device_id": r["device_id"],
        "name": r["name"],
        "version": r["version"],
        "hostname": r["hostname"],
        "branch_id": r["branch_id"],
        "company_id": r["company_id"],
        "connected": bool(r["connected"]),
        "first_seen": r["first_seen"],
        "last_seen": r["last_seen"],
        "last_disconnect": r["last_disconnect"],
    }
    if r.get("retired_at"):
        record["retired_at"] = r["retired_at"]
    return record


def alert_record(row: sqlite3.Row | dict[str, Any]) -> AlertRecord:
    r = dict(row)
    return {
        "id": r["id"],
        "kind": r["kind"],
        "severity": r["severity"],
        "subject": r["subject"],
        "message": r["message"],
        "state": r["state"],
        "details": _loads(r["details"], {}),
        "branch_id": r["branch_id"],
        "company_id": r["company_id"],
        "opened_at": r["opened_at"],
        "acknowledged_at": r["acknowledged_at"],
        "acknowledged_by": r["acknowledged_by"],
        "cleared_at": r["cleared_at"],
    }
