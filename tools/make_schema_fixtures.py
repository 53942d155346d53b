"""Make ``tests/fixtures/schema/vN.sql``: a hub database at each earlier schema version,
made by the migrations of the commit that shipped that version (not by today's code),
with a few rows of every kind, dumped as SQL. The upgrade tests load each one and start
the hub on it.

Run from a checkout with its history: ``.venv/bin/python tools/make_schema_fixtures.py``.
A later schema version adds its commit to ``SHIPPED`` (the last commit at which that
version was the newest) and runs this again.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlite_utils

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "schema"

#: Schema version -> a commit whose program made files at that version.
SHIPPED = {
    1: "7750c03",  # version 1 alone: a file whose second migration never ran
    2: "c0f37eb",
    3: "3f28a50",
    4: "5dffeda",
    5: "287a642",
    6: "67bef89",
    7: "7bd417f",
    8: "5a2192c",
    9: "95d03cc",
    10: "3d77c04",
    11: "48b0d78",
    12: "bb2e26d",  # printers.paused_at
}

#: A 1-bit PNG (8x8 black square), as documents with a logo carry one.
LOGO_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAIAQAAAADcA+lXAAAADklEQVR4nGP4z8DAwMAAAA8AAf+2"
    "YdIAAAAASUVORK5CYII="
)


def _show(commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def _constants(commit: str, module: str, names: list[str]) -> dict[str, Any]:
    """Top-level constants (SQL text) a migration takes from another store module."""
    tree = ast.parse(_show(commit, module.replace(".", "/") + ".py"))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in names:
                    found[target.id] = node.value.value
    return found


def migrations_of(commit: str) -> dict[str, Any]:
    """That commit's ``pm_hub/store/migrations.py``, run alone (its SQL functions, and
    the SQL constants it imports from the store's other modules)."""
    source = _show(commit, "pm_hub/store/migrations.py")
    source = source.split("\ndef prepare_hub_db", 1)[0]
    namespace: dict[str, Any] = {"__name__": f"migrations_{commit}"}
    kept = []
    for line in source.splitlines():
        imported = re.match(r"from (pm_hub\.store\.\w+) import (.+)$", line)
        if imported and imported.group(1) not in ("pm_hub.store.migrations_pg",):
            names = [n.strip() for n in imported.group(2).split(",")]
            namespace.update(_constants(commit, imported.group(1), names))
        if not line.startswith(("from pm_", "import pm_")):
            kept.append(line)
    source = "\n".join(kept)
    exec(compile(source, f"{commit}:migrations.py", "exec"), namespace)
    return namespace


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> None:
    """Insert the columns ``table`` has at this version (older ones lack some)."""
    if table not in db.table_names():
        return
    have = {c.name for c in db[table].columns}
    row = {k: v for k, v in row.items() if k in have}
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


def fill(db: sqlite_utils.Database) -> None:
    """What a branch box that ran for a while holds."""
    t = 1_764_000_000.0  # late November 2025
    insert(db, "companies", {"id": 1, "name": "Default company", "created_at": t})
    insert(db, "branches", {"id": 1, "company_id": 1, "name": "Harbour St", "created_at": t})
    insert(
        db,
        "licenses",
        {"id": 1, "key_hash": "0" * 64, "key_prefix": "pmk_abcd", "company_id": 1,
         "branch_id": 1, "device_id": "dev-1", "label": "back office", "created_at": t,
         "bound_at": t},
    )  # fmt: skip
    insert(
        db,
        "agents",
        {"id": 1, "device_id": "dev-1", "license_id": 1, "company_id": 1, "branch_id": 1,
         "name": "backoffice", "version": "0.1", "hostname": "box", "connected": 0,
         "first_seen": t, "last_seen": t + 50, "last_disconnect": t + 50},
    )  # fmt: skip
    for pid, name, station in ((1, "Kitchen-1", "kitchen"), (2, "Bar", "bar")):
        insert(
            db,
            "printers",
            {"id": pid, "company_id": 1, "branch_id": 1, "agent_id": 1,
             "identity": f"tcp://10.0.0.{pid}:9100", "name": name,
             "address": f"tcp://10.0.0.{pid}:9100", "station": station, "status": "online",
             "flags": "{}", "last_seen": t + 40, "created_at": t, "updated_at": t + 40},
        )  # fmt: skip
        insert(
            db,
            "printer_events",
            {"printer_id": pid, "at": t + 1, "status": "online", "flags": "{}"},
        )
    if "stations" in db.table_names() and not db.execute("SELECT 1 FROM stations").fetchone():
        for name in ("kitchen", "bar"):
            insert(db, "stations", {"company_id": 1, "branch_id": 1, "name": name,
                                    "created_at": t})  # fmt: skip
    logo = {"blocks": [{"type": "image", "png_base64": LOGO_PNG}, {"type": "text",
            "text": "2x Burger"}, {"type": "cut"}]}  # fmt: skip
    jobs = [
        (1, 1, "completed", None, t + 10, t + 12),
        (2, 2, "failed", "paper_out", t + 20, t + 25),
        (3, 1, "queued", None, t + 30, None),
    ]
    for jid, pid, status, error, created, finished in jobs:
        insert(
            db,
            "jobs",
            {"id": jid, "company_id": 1, "branch_id": 1, "printer_id": pid,
             "station": "kitchen" if pid == 1 else "bar", "status": status,
             "document": json.dumps(logo), "copies": 1, "submitted_by": "test-admin",
             "attempts": 1 if finished else 0, "error_code": error, "created_at": created,
             "updated_at": finished or created, "finished_at": finished},
        )  # fmt: skip
        # From version 11 documents live apart (``insert`` skips a table not there yet).
        insert(db, "job_documents", {"job_id": jid, "document": json.dumps(logo)})
        insert(db, "job_events", {"job_id": jid, "at": created, "status": "queued",
                                  "actor": "test-admin"})  # fmt: skip
        if finished:
            insert(db, "job_events", {"job_id": jid, "at": finished, "status": status,
                                      "actor": "agent:1", "reason": error})  # fmt: skip
    insert(
        db,
        "alerts",
        {"id": 1, "company_id": 1, "branch_id": 1, "kind": "printer_offline",
         "severity": "critical", "subject": "printer:2", "message": "Bar is offline",
         "state": "open", "details": "{}", "opened_at": t + 30},
    )  # fmt: skip
    insert(
        db,
        "health_samples",
        {"agent_id": 1, "at": t + 5, "resolution": "raw", "latency_ms": 1.5,
         "latency_max_ms": 1.5, "loss": 0.0, "samples": 1},
    )  # fmt: skip
    insert(
        db,
        "tokens",
        {"jti": "tok1", "session": "tok1", "sub": "test-admin", "role": "admin",
         "company_id": 1, "branch_ids": None, "issued_at": t, "expires_at": t + 3600},
    )  # fmt: skip


def make(version: int, commit: str) -> str:
    module = migrations_of(commit)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    db = sqlite_utils.Database(conn)
    module["migrate"](db, target=version)
    assert module["schema_version"](db) == version, (version, commit)
    fill(db)
    # When each migration ran: a fixed time, so the files only change with their content.
    conn.execute("UPDATE schema_migrations SET applied_at = 1764000000.0 + version")
    header = (
        f"-- A PrinterMaster hub database at schema version {version}, made by the\n"
        f"-- migrations of commit {commit} (tools/make_schema_fixtures.py).\n"
    )
    return header + "\n".join(conn.iterdump()) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for version, commit in SHIPPED.items():
        path = OUT / f"v{version}.sql"
        path.write_text(make(version, commit))
        print(f"{path.relative_to(ROOT)}: schema version {version} from {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
