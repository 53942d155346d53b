"""``pm up --sim-cloudprnt`` (what ``pm demo`` runs): a simulated Star CloudPRNT
printer is enrolled, polls the hub over HTTP and prints a station's job, as a person
trying the demo sees it."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from pm.branch_box import SIM_CLOUDPRNT_MAC
from pm_hub import auth
from tests.support.fault_harness import Proc, free_port, wait_healthy
from tests.support.fonts import need_fonts


def _api(port: int, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def test_pm_up_sim_cloudprnt_prints_a_station_job(tmp_path: Path) -> None:
    need_fonts("latin", "chinese")  # the hub draws the ticket
    port = free_port()
    proc = Proc(
        "up",
        ["up", "--data-dir", str(tmp_path), "--port", str(port), "--no-mdns", "--sim-cloudprnt"],
        tmp_path / "up.log",
    )
    proc.start()
    try:
        asyncio.run(wait_healthy(f"http://127.0.0.1:{port}"))
        token = auth.TokenIssuer(auth.load_or_create_secret(tmp_path)).create(role="admin")
        printer: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and printer.get("status") != "online":
            printers = _api(port, token, "/api/v1/printers")["printers"]
            printer = next((p for p in printers if p["kind"] == "cloudprnt"), {})
            time.sleep(0.2)
        assert printer.get("status") == "online", (printer, proc.tail())
        assert printer["name"] == "Pass-Cloud" and printer["station"] == "pass"
        assert printer["mac"] == SIM_CLOUDPRNT_MAC and printer["agent_id"] is None

        document = {"blocks": [{"type": "text", "text": "Table 4: 2x 宫保鸡丁"}, {"type": "cut"}]}
        job = _api(port, token, "/api/v1/jobs", {"station": "pass", "document": document})
        job_id = job.get("job", job)["id"]
        status = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status not in ("completed", "failed"):
            found = _api(port, token, f"/api/v1/jobs/{job_id}")
            status = found.get("job", found)["status"]
            time.sleep(0.2)
        assert status == "completed", (found, proc.tail())
        events = found.get("job", found)["events"]
        assert events[-1]["actor"] == f"cloudprnt:{SIM_CLOUDPRNT_MAC}"
    finally:
        proc.stop()
