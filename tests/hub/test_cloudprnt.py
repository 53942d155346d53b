"""Star CloudPRNT printers polling the hub: enrolled by MAC with a secret, refused
without it, printing through poll -> jobReady -> GET PNG -> DELETE, a fetched ticket
never confirmed ending outcome_unknown (and never served again), status and
silence shown on the printer record like any other printer's."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl
from PIL import Image

from pm_agent.sim.cloudprnt_client import SimulatedCloudPrntPrinter, basic_auth
from pm_core.protocol.star_asb import status_of_code
from pm_hub.cloudprnt import normalise_mac, status_code_text
from pm_hub.server import RunningHub, start_hub
from pm_hub.store import cloudprnt as cloudprnt_store
from tests.conftest import hub_settings
from tests.support.helpers import OpsClient, eventually, receipt_doc
from tests.support.raw_agent import RawAgent

MAC = "00:11:62:0a:0b:0c"
SECRET = "cp_test-secret-0123456789"


@pytest.fixture
async def cloud_hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    running = await start_hub(
        hub_settings(
            tmp_path / "hub",
            cloudprnt_offline_after_s=1.5,
            cloudprnt_confirm_timeout_s=1.0,
            cloudprnt_rate_limit=50.0,
        )
    )
    yield running
    await running.stop()


@pytest.fixture
async def cloud_ops(cloud_hub: RunningHub) -> AsyncIterator[OpsClient]:
    assert cloud_hub.hub.tokens is not None
    token = cloud_hub.hub.tokens.create(role="admin", sub="test-admin")
    client = await OpsClient(cloud_hub.url, token).connect()
    yield client
    await client.close()


async def enroll(hub: RunningHub, mac: str = MAC, dots: int = 576) -> dict[str, Any]:
    """Enrolled while the hub runs (as ``pm printer cloudprnt add`` does), then picked
    up by the hub."""
    row = await hub.hub.db.write(
        lambda d: cloudprnt_store.enroll(d, mac=mac, name="Pass", secret=SECRET, dots=dots)
    )
    assert hub.hub.cloudprnt is not None
    await hub.hub.cloudprnt.load_enrollments()
    return row


async def printer_record(ops: OpsClient, printer_id: int) -> dict[str, Any]:
    """The record operators see (empty until the hub holds the printer: enrolled
    while it runs, it joins at its first poll)."""
    ack = await ops.call("printer:get", {"printer_id": printer_id})
    return ack["printer"] if ack["ok"] else {}


async def submit(ops: OpsClient, printer_id: int, marker: str) -> int:
    ack = await ops.call("job:submit", {"printer_id": printer_id, "document": receipt_doc(marker)})
    assert ack["ok"], ack
    return int(ack["job"]["id"])


async def final(ops: OpsClient, job_id: int, timeout: float = 10) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await ops.call("job:get", {"job_id": job_id}))["job"]
        return job if job["status"] in ("completed", "failed", "cancelled", "expired") else None

    return await eventually(done, timeout=timeout, what=f"job {job_id} finished")


def test_pm_printer_cloudprnt_add_prints_a_secret_and_lists_the_printer(tmp_path: Path) -> None:
    def pm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pm",
                "printer",
                "cloudprnt",
                *args,
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = pm("add", "--mac", "00-11-62-AA-BB-CC", "--name", "Pass", "--dots", "576")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("cp_") and len(secret) > 20
    assert "/cloudprnt" in made.stderr
    listed = pm("list")
    assert "00:11:62:aa:bb:cc" in listed.stdout and "Pass" in listed.stdout
    row = listed.stdout.splitlines()[1].split()
    assert row[-1] == "-", listed.stdout  # never polled: no last poll shown
    bad = pm("add", "--mac", "not-a-mac", "--name", "X")
    assert bad.returncode == 2 and "MAC" in bad.stderr and "Traceback" not in bad.stderr


async def test_wrong_secret_unknown_mac_and_bad_input_are_refused(cloud_hub: RunningHub) -> None:
    await enroll(cloud_hub)
    url = f"{cloud_hub.url}/cloudprnt"
    body = {"printerMAC": MAC, "statusCode": "200 OK"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url, json=body, headers={"Authorization": basic_auth("pass", "wrong")}
        ) as r:
            assert r.status == 401 and "Basic" in r.headers["WWW-Authenticate"]
        async with http.post(url, json=body) as r:
            assert r.status == 401
        other = {**body, "printerMAC": "00:11:62:ff:ff:ff"}
        async with http.post(
            url, json=other, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 401
        async with http.post(
            url, json={"printerMAC": "zz"}, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 400
        async with http.post(
            url, data=b"{" * 20_000, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 413
        params = {"mac": MAC, "type": "image/png"}
        async with http.get(
            url, params=params, headers={"Authorization": basic_auth("pass", "wrong")}
        ) as r:
            assert r.status == 401
        async with http.post(
            url, json=body, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 200 and (await r.json())["jobReady"] is False
        async with http.get(
            url, params=params, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 404  # nothing to fetch


async def test_poll_fetch_confirm_completes_the_job(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    """A job for an enrolled printer: the poll says jobReady with image/png, the GET
    gives a PNG as wide as the paper and moves the job to printing, the DELETE with
    200 OK completes it; the printer shows online with no agent."""
    row = await enroll(cloud_hub, dots=384)
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:

        async def online() -> bool:
            return (await printer_record(cloud_ops, row["id"])).get("status") == "online"

        await eventually(online, what="CloudPRNT printer online")
        record = await printer_record(cloud_ops, row["id"])
        assert record["agent_id"] is None and record["kind"] == "cloudprnt"
        test = await cloud_ops.call("printer:test", {"printer_id": row["id"]})
        assert test["error"]["code"] == "conflict" and "submit a job" in test["error"]["message"]
        job_id = await submit(cloud_ops, row["id"], "CP-1")
        job = await final(cloud_ops, job_id)
        assert job["status"] == "completed", job
        receipts = await printer.wait_for_receipts(1)
        assert receipts[0].images[0].width == 384
        events = (await cloud_ops.call("job:get", {"job_id": job_id}))["job"]["events"]
        assert [e["status"] for e in events][-2:] == ["printing", "completed"]
        assert events[-1]["actor"] == f"cloudprnt:{MAC}"
        # What it was sent, for the dashboard: the thumbnail of the PNG it fetched.
        got = await cloud_ops.call("job:get", {"job_id": job_id, "document": True})
        image = receipts[0].images[0]
        lines = got["job"]["sent_preview"]["lines"]
        assert lines[0] == f"[image {image.width}x{image.height} dots]"
        assert 1 < len(lines) <= 13 and all(len(line) <= 40 for line in lines[1:])
        assert got["job"]["sent_preview"]["language"] == "cloudprnt"


async def test_two_jobs_one_confirmed_one_dropped_and_paper_out_shows(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    """The issue's test: a simulated CloudPRNT printer prints two jobs, confirms one
    and drops the other: completed and outcome_unknown; the dropped one is never
    served again; a paper-out in its status shows on the printer record."""
    row = await enroll(cloud_hub)
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:
        first = await submit(cloud_ops, row["id"], "KEEP")
        assert (await final(cloud_ops, first))["status"] == "completed"
        printer.drop_next = 1
        second = await submit(cloud_ops, row["id"], "DROP")
        job = await final(cloud_ops, second)
        assert job["status"] == "failed" and job["error"]["code"] == "outcome_unknown", job
        assert "reprint" in job["error"]["message"]
        polls = printer.polls
        await eventually(lambda: printer.polls >= polls + 5, what="more polls")
        assert len(printer.receipts) == 1  # the dropped ticket was not served again
        assert printer.last_answer == {"jobReady": False}

        await printer.set_state("paper_out")

        async def paper_out() -> dict[str, Any] | None:
            record = await printer_record(cloud_ops, row["id"])
            return record if record.get("status") == "paper_out" else None

        record = await eventually(paper_out, what="paper out on the dashboard record")
        assert record["flags"].get("paper_end")
        third = await submit(cloud_ops, row["id"], "WAIT")
        await asyncio.sleep(0.5)
        assert (await cloud_ops.call("job:get", {"job_id": third}))["job"]["status"] == "queued"
        await printer.set_state("online")
        assert (await final(cloud_ops, third))["status"] == "completed"


async def test_printer_goes_offline_when_it_stops_polling(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    row = await enroll(cloud_hub)
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:

        async def status(want: str) -> bool:
            return (await printer_record(cloud_ops, row["id"])).get("status") == want

        await eventually(lambda: status("online"), what="online")
        await printer.set_state("offline")  # switched off: no more polls
        await eventually(lambda: status("offline"), timeout=6, what="offline after silence")
        record = await printer_record(cloud_ops, row["id"])
        assert record["flags"].get("not_polling")
        await printer.set_state("online")
        await eventually(lambda: status("online"), what="online again")


async def test_a_cloudprnt_ticket_is_a_png_of_the_document(cloud_hub: RunningHub) -> None:
    """The GET answers a real PNG the printer can decode."""
    row = await enroll(cloud_hub)
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:
        assert cloud_hub.hub.tokens is not None
        token = cloud_hub.hub.tokens.create(role="operator", sub="pos", branch_ids=[1])
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{cloud_hub.url}/api/v1/jobs",
                json={"printer_id": row["id"], "document": receipt_doc("PNG")},
                headers={"Authorization": f"Bearer {token}"},
            ) as r,
        ):
            assert r.status == 201
        receipts = await printer.wait_for_receipts(1)
        with Image.open(io.BytesIO(receipts[0].raw)) as image:
            assert image.format == "PNG" and image.width == 576 and image.height > 20


async def test_a_ticket_fetched_before_a_hub_restart_is_not_served_again(
    tmp_path: Path,
) -> None:
    """The hub stops after the printer fetched a ticket and before it confirmed it:
    at the next start that job ends outcome_unknown, and the printer is not offered it
    again."""
    settings = hub_settings(tmp_path / "hub", cloudprnt_confirm_timeout_s=60.0)
    first = await start_hub(settings)
    try:
        row = await enroll(first)
        assert first.hub.tokens is not None
        token = first.hub.tokens.create(role="admin", sub="t")
        ops = await OpsClient(first.url, token).connect()
        try:
            job_id = await submit(ops, row["id"], "HALF")
        finally:
            await ops.close()
        printer = SimulatedCloudPrntPrinter(f"{first.url}/cloudprnt", mac=MAC, secret=SECRET)
        printer.drop_next = 1
        async with printer:
            await eventually(lambda: printer.polls >= 1 and printer.drop_next == 0, what="fetched")
    finally:
        await first.stop()
    second = await start_hub(settings)
    try:
        assert second.hub.tokens is not None
        ops = await OpsClient(second.url, second.hub.tokens.create(role="admin", sub="t")).connect()
        try:
            job = await final(ops, job_id)
            assert job["status"] == "failed" and job["error"]["code"] == "outcome_unknown"
        finally:
            await ops.close()
        async with SimulatedCloudPrntPrinter(
            f"{second.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.05
        ) as again:
            await eventually(lambda: again.polls >= 3, what="polls after the restart")
            assert again.receipts == [] and again.last_answer == {"jobReady": False}
    finally:
        await second.stop()


async def test_pm_sim_cloudprnt_polls_prints_and_confirms(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    """``pm sim --cloudprnt URL --mac MAC`` (secret from PM_CLOUDPRNT_SECRET) is a
    CloudPRNT printer a demo or a person can run: it prints a job and confirms it."""
    row = await enroll(cloud_hub)
    env = {**os.environ, "PM_CLOUDPRNT_SECRET": SECRET}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pm", "sim", "--cloudprnt", f"{cloud_hub.url}/cloudprnt",
        "--mac", MAC, "--poll-every", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert b"polling" in first
        job_id = await submit(cloud_ops, row["id"], "SIM")
        assert (await final(cloud_ops, job_id, timeout=20))["status"] == "completed"
        printed = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert printed.startswith(b"printed [PNG 576x")
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_station_job_goes_to_the_cloudprnt_printer_that_polls(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    """CloudPRNT printers serve their station like agents' printers: with the first
    one silent (offline), a job sent to the station goes to the one that polls."""

    def enroll_in_station(mac: str, name: str) -> Any:
        return cloud_hub.hub.db.write(
            lambda d: cloudprnt_store.enroll(
                d, mac=mac, name=name, secret=SECRET, dots=576, station="pass"
            )
        )

    silent = await enroll_in_station("00:11:62:00:00:01", "Pass-1")
    polling = await enroll_in_station(MAC, "Pass-2")
    assert cloud_hub.hub.cloudprnt is not None
    await cloud_hub.hub.cloudprnt.load_enrollments()
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:

        async def ready() -> bool:
            first = await printer_record(cloud_ops, silent["id"])
            second = await printer_record(cloud_ops, polling["id"])
            return first.get("status") == "offline" and second.get("status") == "online"

        await eventually(ready, what="Pass-1 offline, Pass-2 online")
        ack = await cloud_ops.call("job:submit", {"station": "pass", "document": receipt_doc("S")})
        assert ack["ok"], ack
        assert ack["job"]["printer_id"] == polling["id"]
        assert (await final(cloud_ops, ack["job"]["id"]))["status"] == "completed"
        assert len(await printer.wait_for_receipts(1)) == 1


async def test_an_agent_cannot_take_over_a_cloudprnt_printer(cloud_hub: RunningHub) -> None:
    """An agent that registers a printer under a CloudPRNT printer's identity (or
    claims it as its previous identity) is refused; the record stays the server's."""
    row = await enroll(cloud_hub)
    key = await cloud_hub.hub.create_license()
    agent = await RawAgent(cloud_hub.url, key, "device-cloud-test").connect()
    try:
        for printer in (
            {"address": "tcp://127.0.0.1:9100", "identity": f"cloudprnt:{MAC}"},
            {"address": f"cloudprnt://{MAC}", "identity": "x"},
        ):
            ack = await agent.call("printer:discovered", {"name": "Mine", **printer})
            assert not ack["ok"] and ack["error"]["code"] == "invalid_payload", ack
        ack = await agent.call(
            "printer:discovered",
            {"name": "Mine", "address": "tcp://127.0.0.1:9100", "identity": "serial:Z",
             "previous_identity": f"cloudprnt:{MAC}"},
        )  # fmt: skip
        assert ack["ok"] and ack["printer_id"] != row["id"]
    finally:
        await agent.close()
    stored = cloud_hub.hub.state.printers[row["id"]]
    assert stored["agent_id"] is None and stored["kind"] == "cloudprnt"


async def test_a_drawer_only_job_fails_on_a_cloudprnt_printer_instead_of_blank_paper(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    row = await enroll(cloud_hub)
    async with SimulatedCloudPrntPrinter(
        f"{cloud_hub.url}/cloudprnt", mac=MAC, secret=SECRET, poll_interval=0.1
    ) as printer:
        ack = await cloud_ops.call(
            "job:submit", {"printer_id": row["id"], "document": {"blocks": [{"type": "drawer"}]}}
        )
        job = await final(cloud_ops, ack["job"]["id"])
        assert job["status"] == "failed" and job["error"]["code"] == "render_error", job
        assert "drawer" in job["error"]["message"]
        assert printer.receipts == []


@pytest.mark.parametrize(
    "form", ["00:11:62:0A:0B:0C", "00-11-62-0a-0b-0c", "0011.620a.0b0c", "0011620a0b0c"]
)
def test_a_mac_in_any_usual_form_is_the_same_printer(form: str) -> None:
    assert normalise_mac(form) == MAC


def test_status_codes_as_star_printers_send_them() -> None:
    """Star printers URL-encode their status codes (``200%20OK`` in a poll's JSON,
    sometimes encoded twice in a DELETE's query)."""
    assert status_code_text("200%20OK") == "200 OK"
    assert status_code_text("520%2520Job%2520download%2520failed") == "520 Job download failed"
    assert status_code_text("410+Out+of+paper") == "410 Out of paper"
    assert status_of_code(status_code_text("410%20Out%20of%20paper"))[0] == "paper_out"


async def test_requests_without_credentials_do_not_lock_a_printer_out(
    cloud_hub: RunningHub,
) -> None:
    """A printer polling before its secret is set (or a client that waits for HTTP's
    401 challenge) sends no credentials: that guesses nothing and is not a failed
    login. Before, the sixth such poll in a minute locked the address out (429, for
    longer and longer), so the printer stayed refused after its secret was set."""
    await enroll(cloud_hub)
    url = f"{cloud_hub.url}/cloudprnt"
    body = {"printerMAC": MAC, "statusCode": "200%20OK"}
    async with aiohttp.ClientSession() as http:
        for _ in range(10):
            async with http.post(url, json=body) as r:
                assert r.status == 401 and "Basic" in r.headers["WWW-Authenticate"]
        async with http.post(
            url, json=body, headers={"Authorization": basic_auth("pass", SECRET)}
        ) as r:
            assert r.status == 200, await r.text()
        for _ in range(7):  # a wrong secret still counts
            async with http.post(
                url, json=body, headers={"Authorization": basic_auth("pass", "guess")}
            ) as r:
                last = r.status
        assert last == 429


async def test_a_failure_code_in_the_delete_is_shown_decoded(
    cloud_hub: RunningHub, cloud_ops: OpsClient
) -> None:
    """The printer's result code reaches the job's error readable, whichever way the
    printer encoded it."""
    row = await enroll(cloud_hub)
    job_id = await submit(cloud_ops, row["id"], "CODE")
    url = f"{cloud_hub.url}/cloudprnt"
    auth = {"Authorization": basic_auth("pass", SECRET)}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"printerMAC": MAC, "statusCode": "200%20OK"},
                             headers=auth) as r:  # fmt: skip
            answer = await r.json()
        assert answer["jobReady"] is True and answer["mediaTypes"] == ["image/png"]
        token = answer["jobToken"]
        async with http.get(
            url, params={"mac": MAC, "type": "image/png", "token": token}, headers=auth
        ) as r:
            assert r.status == 200 and r.content_type == "image/png"
        encoded = yarl.URL(
            f"{url}?mac=00%3A11%3A62%3A0a%3A0b%3A0c&code=520%2520Job%2520download%2520failed"
            f"&token={token}",
            encoded=True,
        )
        async with http.delete(encoded, headers=auth) as r:
            assert r.status == 200
    job = await final(cloud_ops, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "printer_error"
    assert "520 Job download failed" in job["error"]["message"], job["error"]
