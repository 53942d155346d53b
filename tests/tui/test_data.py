"""The dashboard's data layer (no Textual): coalescing, state, filters, previews, config."""

from __future__ import annotations

import base64
import calendar
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pm_core.protocol import HubEvent
from pm_tui.config import DEFAULT_HUB, TuiConfigError, check_url, preflight, resolve
from pm_tui.data.buffer import EventBuffer
from pm_tui.data.documents import document_text, raw_text
from pm_tui.data.filters import JobQuery, QueryError, printer_matches
from pm_tui.data.state import FleetState
from pm_tui.widgets.tables import ColumnSpec, fit_columns
from tests.support.sample_hub import SampleHub


def printer(pid: int, status: str = "online", **extra: object) -> dict[str, object]:
    return {"id": pid, "name": f"P{pid}", "status": status, "flags": {}, "branch_id": 1, **extra}


def test_buffer_keeps_the_newest_state_of_each_object() -> None:
    """A burst of updates for one printer becomes one entry: the last one."""
    buffer = EventBuffer()
    for status in ("paper_low", "paper_out", "online"):
        buffer.add(HubEvent.PRINTER_UPDATE, printer(1, status))
    buffer.add(HubEvent.PRINTER_UPDATE, printer(2, "offline"))
    buffer.add(HubEvent.PRINTERS_SEEN, {"at": 5.0, "printer_ids": [3, 4]})
    buffer.add(HubEvent.PRINTERS_SEEN, {"at": 7.0, "printer_ids": [3]})
    buffer.add(HubEvent.JOB_UPDATE, {"id": 9, "status": "queued"})
    buffer.add(HubEvent.JOB_UPDATE, {"id": 9, "status": "completed"})
    buffer.add("something:else", {"id": 1})
    buffer.add(HubEvent.PRINTER_UPDATE, "not an object")
    batch = buffer.drain()
    assert {pid: p["status"] for pid, p in batch.printers.items()} == {1: "online", 2: "offline"}
    assert batch.seen == {3: 7.0, 4: 5.0}
    assert batch.jobs[9]["status"] == "completed"
    assert buffer.ignored == 2
    assert not buffer.drain()


def test_state_reports_what_changed_and_toasts_only_new_alerts() -> None:
    state = FleetState()
    state.load(printers=[printer(1), printer(2)], alerts=[], jobs=[])
    buffer = EventBuffer()
    buffer.add(HubEvent.PRINTER_UPDATE, printer(1, "paper_out"))
    buffer.add(HubEvent.PRINTERS_SEEN, {"at": 100.0, "printer_ids": [2, 99]})
    alert = {"id": 5, "state": "open", "severity": "critical", "branch_id": 1}
    buffer.add(HubEvent.HEALTH_ALERT, alert)
    buffer.add(HubEvent.ALERT_UPDATE, {**alert, "state": "acknowledged"})
    changes = state.apply(buffer.drain())
    assert set(changes.printers) == {1}
    assert changes.printers[1][0] is not None and changes.printers[1][0]["status"] == "online"
    assert changes.seen == {2}
    assert [a["id"] for a in changes.opened] == [5]
    assert state.alerts[5]["state"] == "acknowledged"
    assert [p["id"] for p in state.problems()] == [1]
    assert state.alert_counts() == {"critical": 0, "warning": 0, "info": 0}


def test_status_only_entries_are_merged_into_the_printer_the_dashboard_has() -> None:
    """``printers:update`` entries without a name carry only status fields: they update
    the printer in place; one for a printer the dashboard lacks is asked for."""
    state = FleetState()
    state.load(printers=[printer(1, station="bar"), printer(2)], alerts=[], jobs=[])
    buffer = EventBuffer()
    status = {"id": 1, "status": "paper_low", "flags": {"paper_near_end": True}, "queue": 2}
    buffer.add(HubEvent.PRINTERS_UPDATE, {"printers": [status, {"id": 7, "status": "online"}]})
    buffer.add(HubEvent.PRINTERS_UPDATE, {"printers": [{"id": 1, "status": "paper_out"}]})
    buffer.add(HubEvent.PRINTERS_UPDATE, {"printers": [printer(2, "offline", station="x")]})
    changes = state.apply(buffer.drain())
    assert state.printers[1] == {
        **printer(1, station="bar"),
        "status": "paper_out",
        "flags": {"paper_near_end": True},
        "queue": 2,
    }
    assert changes.printers[1][0] == printer(1, station="bar")
    assert state.printers[2]["station"] == "x"  # a whole printer replaces what was there
    assert 7 not in state.printers and changes.unknown_printers == {7}


def test_an_agent_update_keeps_the_printers_the_list_gave() -> None:
    """``agent:update`` carries the agent without the printer ids ``agents:list`` adds:
    the PRN column keeps them when an agent reconnects."""
    state = FleetState()
    state.load(agents=[{"id": 1, "name": "box", "connected": True, "printers": [1, 2]}])
    buffer = EventBuffer()
    buffer.add(HubEvent.AGENT_UPDATE, {"id": 1, "name": "box", "connected": False})
    changes = state.apply(buffer.drain())
    assert state.agents[1] == {"id": 1, "name": "box", "connected": False, "printers": [1, 2]}
    assert changes.agents == {1}


def test_printer_filter_matches_every_word_anywhere() -> None:
    state = FleetState()
    kitchen = printer(1, "paper_out", name="Kitchen-1", station="kitchen", address="tcp://x")
    assert printer_matches(kitchen, "kitch paper", state)
    assert printer_matches(kitchen, "problem", state)
    assert printer_matches(kitchen, "PAPER OUT", state)
    assert not printer_matches(kitchen, "bar", state)
    assert printer_matches({**kitchen, "paused": True, "status": "online"}, "paused", state)


def test_job_query_turns_into_a_jobs_list_request() -> None:
    state = FleetState()
    state.load(printers=[printer(3, name="Kitchen-1")])
    now = calendar.timegm((2026, 11, 25, 10, 42, 0, 0, 0, 0))
    query = JobQuery.parse(
        "status:failed printer:kitchen-1 station:Bar since:30m until:10:30 burger",
        now=now,
        struct=time.gmtime,
    )
    assert query.statuses == ("failed", "expired")
    assert query.payload(state) == {
        "limit": 200,
        "status": ["failed", "expired"],
        "printer_id": 3,
        "station": "bar",
        "since": now - 1800,
        "until": now - 12 * 60,
    }
    assert query.words == ["burger"]
    job = {"id": 1, "status": "failed", "printer_id": 3, "station": "bar", "created_at": now - 900}
    assert not query.matches(job, state)  # no "burger" anywhere
    assert JobQuery.parse("status:active").statuses == ("queued", "dispatched", "printing")
    for bad in ("status:nope", "since:yesterday", "until:25:00", "printer:"):
        with pytest.raises(QueryError):
            JobQuery.parse(bad).payload(state)
    with pytest.raises(QueryError):
        JobQuery.parse("printer:Nowhere").payload(state)
    assert JobQuery.parse("printer:#3 x").with_status("failed") == "status:failed printer:#3 x"


def test_document_preview_reads_like_the_ticket() -> None:
    """A kitchen ticket as the hub hands it back (job:get, blocks filled in)."""
    document = SampleHub().details[1]["document"]
    preview = document_text(document, header="BACKUP FROM Kitchen-1")
    lines = preview.splitlines()
    assert lines[0].strip() == "BACKUP FROM Kitchen-1"
    assert lines[1].strip() == "TABLE 5"
    assert "-" * 42 in lines
    assert "2x Burger" in lines
    assert "[QR: order:901]" in preview
    assert lines[-1].strip("-").strip() == "cut"
    png = base64.b64encode(
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (384).to_bytes(4, "big") + b"\x00\x00\x00x"
    ).decode()
    unusual = {
        "blocks": [
            {"type": "text", "text": "right", "align": "right"},
            {"type": "image", "png_base64": png},
            {"type": "barcode", "data": "123", "kind": "EAN13"},
            {"type": "feed", "lines": 2},
            {"type": "drawer"},
        ]
    }
    text = document_text(unusual, width=20)
    assert text.splitlines()[0] == "               right"
    assert "[image 384x120 px]" in text and "[barcode EAN13: 123]" in text
    assert "[open cash drawer]" in text and text.splitlines()[-1].endswith("-")


def test_a_drawer_kick_alone_previews_without_header_or_cut() -> None:
    """As the printer gets it: a "no sale" opens the drawer, no paper moves."""
    no_sale = {"blocks": [{"type": "drawer", "pin": 2}]}
    assert document_text(no_sale, width=20, header="BACKUP FROM Till-1").split() == [
        "[open",
        "cash",
        "drawer]",
    ]


def test_raw_escpos_preview_keeps_only_the_words() -> None:
    raw = b"\x1b@\x1ba\x01\x1bE\x01HELLO\x1bE\x00\n\x1d!\x11big\n\x1dV\x41\x03"
    assert raw_text(raw) == "HELLO\nbig\n"
    document = {"raw_base64": base64.b64encode(raw).decode()}
    assert "HELLO" in document_text(document)
    assert "raw ESC/POS" in document_text(document)


def test_columns_drop_by_priority_and_the_rest_grows() -> None:
    specs = [
        ColumnSpec("status", "S", 10),
        ColumnSpec("name", "N", 10, grow=True),
        ColumnSpec("address", "A", 20, priority=3),
        ColumnSpec("model", "M", 10, priority=6),
    ]
    assert [c.key for c in fit_columns(specs, 200)] == ["status", "name", "address", "model"]
    narrow = fit_columns(specs, 40)
    assert [c.key for c in narrow] == ["status", "name"]
    assert sum(c.width + 2 for c in narrow) == 40


def test_settings_come_from_flags_then_env_then_config_file(tmp_path: Path) -> None:
    config = tmp_path / "tui.toml"
    config.write_text('[tui]\nhub = "http://10.0.0.5:3001"\ntoken = "from-file"\n')
    config.chmod(0o600)
    found = resolve(config_file=config, env={}, discover=lambda: None)
    assert (found.hub_url, found.token) == ("http://10.0.0.5:3001", "from-file")
    assert found.warnings == []
    env = {"PM_HUB": "http://hub.local:3001/", "PM_TOKEN": "from-env"}
    found = resolve(config_file=config, env=env, discover=lambda: None)
    assert (found.hub_url, found.token, found.hub_from) == (
        "http://hub.local:3001",
        "from-env",
        "PM_HUB",
    )
    found = resolve(hub="http://a:1", token="flag", config_file=config, env=env)
    assert (found.hub_url, found.token) == ("http://a:1", "flag")

    empty = tmp_path / "empty.toml"
    empty.write_text("")
    found = resolve(config_file=empty, env={}, discover=lambda: "http://10.9.9.9:3001")
    assert (found.hub_url, found.hub_from, found.token) == ("http://10.9.9.9:3001", "mDNS", None)
    found = resolve(config_file=empty, env={}, discover=lambda: None)
    assert found.hub_url == DEFAULT_HUB

    config.chmod(0o644)
    assert "chmod 600" in resolve(config_file=config, env={}).warnings[0]
    with pytest.raises(TuiConfigError, match="does not exist"):
        resolve(config_file=tmp_path / "missing.toml", env={})
    for bad in ("hub:3001", "ftp://x", "http://", "http://x:99999"):
        with pytest.raises(TuiConfigError):
            check_url(bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def not_a_hub() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that is something else (answers 404)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_preflight_says_what_is_wrong_in_one_sentence(not_a_hub: str) -> None:
    """A hub that is down, a URL that points elsewhere, a host that does not exist."""
    with pytest.raises(TuiConfigError, match=r"nothing answers at .* `pm up`"):
        preflight(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(TuiConfigError, match="not a PrinterMaster hub"):
        preflight(not_a_hub)
    with pytest.raises(TuiConfigError, match="cannot find the host"):
        preflight("http://no-such-host.invalid:3001", timeout=2)


def test_latency_line_says_the_last_ping_before_the_first_report() -> None:
    from pm_tui.widgets.charts import latency_summary

    assert latency_summary(None) == "no figures yet"
    pings_only = {"latency_ms": {}, "series": [{"at": 1.0, "latency_ms": 2.4}]}
    assert latency_summary(pings_only) == "2.4 ms last ping"
    reported = {**pings_only, "latency_ms": {"avg": 3.0, "p95": 5.0}, "packet_loss": 0.0}
    assert latency_summary(reported).startswith("3.0 ms avg · p95 5.0 ms")


def test_a_removed_printer_leaves_the_state() -> None:
    """``printer:removed`` (an operator removed it, its agent dropped it, or its agent
    was retired) takes the printer out; an update for it after that brings it back."""
    state = FleetState()
    state.load(printers=[printer(1), printer(2)], alerts=[], jobs=[])
    buffer = EventBuffer()
    buffer.add(HubEvent.PRINTER_UPDATE, printer(2, "offline"))
    buffer.add(HubEvent.PRINTER_REMOVED, {"id": 2, "name": "P2", "branch_id": 1})
    buffer.add(HubEvent.PRINTER_REMOVED, {"id": 7})  # never known: nothing to do
    changes = state.apply(buffer.drain())
    assert changes.removed_printers == {2} and not changes.printers
    assert set(state.printers) == {1}
    buffer.add(HubEvent.PRINTER_REMOVED, {"id": 1})
    buffer.add(HubEvent.PRINTER_UPDATE, printer(1, "online"))
    changes = state.apply(buffer.drain())
    assert set(state.printers) == {1} and not changes.removed_printers


def test_a_retired_agent_leaves_the_state() -> None:
    """``agent:update`` with ``retired_at`` (``agent:retire``) takes the agent out."""
    state = FleetState()
    state.load(printers=[], alerts=[], jobs=[])
    buffer = EventBuffer()
    buffer.add(HubEvent.AGENT_UPDATE, {"id": 3, "name": "box", "connected": True, "branch_id": 1})
    state.apply(buffer.drain())
    assert set(state.agents) == {3}
    buffer.add(HubEvent.AGENT_UPDATE, {"id": 3, "connected": False, "retired_at": 5.0})
    changes = state.apply(buffer.drain())
    assert changes.agents == {3} and state.agents == {}


def test_branch_summaries_count_each_branch_on_its_own() -> None:
    """The Branches rows: printers, problems, open alerts, active jobs and agents of
    each branch, none of another's."""
    state = FleetState()
    state.load(
        who={"branches": [{"id": 1, "name": "Harbour"}, {"id": 2, "name": "Mill"}]},
        printers=[
            printer(1),
            printer(2, "paper_out"),
            printer(3, "offline", branch_id=2),
            printer(4, branch_id=2),
            printer(5, "cover_open", branch_id=2),
        ],
        alerts=[
            {"id": 1, "state": "open", "severity": "critical", "branch_id": 2},
            {"id": 2, "state": "resolved", "severity": "warning", "branch_id": 1},
        ],
        jobs=[
            {"id": 1, "status": "queued", "branch_id": 1},
            {"id": 2, "status": "completed", "branch_id": 1},
            {"id": 3, "status": "printing", "branch_id": 2},
        ],
        agents=[
            {"id": 1, "connected": True, "branch_id": 1},
            {"id": 2, "connected": False, "branch_id": 2},
        ],
    )
    rows = {s.name: s for s in state.branch_summaries()}
    harbour, mill = rows["Harbour"], rows["Mill"]
    assert (harbour.printers, harbour.problems, harbour.alerts) == (2, 1, 0)
    assert (harbour.active_jobs, harbour.agents, harbour.agents_connected) == (1, 1, 1)
    assert (mill.printers, mill.problems, mill.alerts) == (3, 2, 1)
    assert (mill.active_jobs, mill.agents, mill.agents_connected) == (1, 1, 0)
