"""``pm bench`` end to end at toy sizes: every scenario runs against real processes and
produces sane figures. Never a timing threshold: this pins that the tool works."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pm.cli import main
from pm_bench.procs import CA_ENV
from pm_bench.runner import SCENARIOS, BenchConfig, run_bench

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run of every scenario (about half a minute), as the JSON it writes."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    table = tmp_path_factory.mktemp("bench") / "table.txt"
    with table.open("w") as fh:
        code = run_bench(None, duration=0.5, json_path=out, config=BenchConfig.tiny(), out=fh)
    data: dict[str, Any] = json.loads(out.read_text())
    data["exit_code"] = code
    data["table"] = table.read_text()
    return data


def figures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in report["figures"]}


def test_every_scenario_ran_without_error(report: dict[str, Any]) -> None:
    errors = {n: s["error"] for n, s in report["scenarios"].items() if s["error"]}
    assert errors == {}
    assert report["exit_code"] == 0
    assert list(report["scenarios"]) == list(SCENARIOS)
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["python"]
    assert report["machine"]["versions"]["python-socketio"]


def test_every_figure_has_a_value_and_the_table_shows_it(report: dict[str, Any]) -> None:
    missing = [f["key"] for f in report["figures"] if f["value"] is None]
    assert missing == []
    for f in report["figures"]:
        assert f["label"] in report["table"]
    assert "targets met" in report["table"]


def test_roundtrip_figures_are_sane(report: dict[str, Any]) -> None:
    fig = figures(report)
    for prefix in ("roundtrip", "roundtrip_real", "baseline.roundtrip"):
        assert 0 < fig[f"{prefix}.median_ms"]["value"] <= fig[f"{prefix}.p99_ms"]["value"]
        assert fig[f"{prefix}.failed"]["value"] == 0
    # Measured against the bare relay in the same run: the ratio is there.
    assert fig["roundtrip.median_ms"]["ratio"] > 0
    real = report["scenarios"]["roundtrip"]["details"]["roundtrip-real"]
    # The real agent printed a test page at the simulated printer for each round trip.
    assert real["agent_counts"]["receipts"] >= real["completed"]


def test_throughput_completes_and_persists_every_job(report: dict[str, Any]) -> None:
    fig = figures(report)
    for prefix in ("throughput", "throughput_real"):
        assert fig[f"{prefix}.completed_per_s"]["value"] > 0
        assert fig[f"{prefix}.not_completed"]["value"] == 0
        assert fig[f"{prefix}.submits_refused"]["value"] == 0
    real = report["scenarios"]["throughput"]["details"]["throughput-real"]
    assert real["persisted_all"] is True
    assert real["agent_counts"]["receipts"] == real["accepted_total"]


def test_fanout_reaches_every_operator(report: dict[str, Any]) -> None:
    fig = figures(report)
    for prefix in ("fanout", "baseline.fanout"):
        assert fig[f"{prefix}.incomplete"]["value"] == 0
        assert fig[f"{prefix}.max_ingest_per_s"]["value"] > 0
        assert fig[f"{prefix}.steady_last_p99_ms"]["value"] > 0
    assert report["scenarios"]["fanout"]["details"]["operators"] == BenchConfig.tiny().fo_operators


def test_connections_all_answer(report: dict[str, Any]) -> None:
    fig = figures(report)
    asked = BenchConfig.tiny().cn_connections
    assert fig["connections.answered"]["value"] == asked
    assert fig["baseline.connections.answered"]["value"] == asked
    assert fig["connections.connect_rate"]["value"] > 0
    assert fig["idle.start_s"]["value"] > 0 and fig["idle.rss_mb"]["value"] > 0


def test_dashboard_rows_follow_the_hub(report: dict[str, Any]) -> None:
    fig = figures(report)
    assert fig["dashboard.rows_wrong"]["value"] == 0
    assert fig["dashboard.updated_p50_ms"]["value"] > 0
    assert fig["dashboard.painted_p99_ms"]["value"] >= fig["dashboard.updated_p50_ms"]["value"]
    assert report["scenarios"]["dashboard"]["details"]["printers"] == BenchConfig.tiny().db_printers


def test_company_syncs_every_change_on_each_setup(report: dict[str, Any]) -> None:
    """Each setup the machine can run (PostgreSQL and Redis from PM_BENCH_POSTGRES_URL /
    PM_BENCH_REDIS_URL, the local ones by default) produced its figures: every change
    made was acknowledged and reached every operator."""
    from tests.support.services import services_required

    fig = figures(report)
    details = report["scenarios"]["company"]["details"]
    tiny = BenchConfig.tiny()
    for setup in ("sqlite", "postgresql", "postgresql+redis"):
        if "not_run" in details[setup]:
            assert setup != "sqlite" and not services_required(), details[setup]
            continue
        assert details[setup]["branches"] == tiny.co_branches
        assert details[setup]["operators"] == tiny.co_operators
        assert details[setup]["changes_acked"] == details[setup]["changes_made"] > 0
        assert fig[f"company.{setup}.incomplete"]["value"] == 0
        assert fig[f"company.{setup}.max_applied_per_s"]["value"] > 0
    assert details["postgresql+redis"].get("processes", 2) == 2


def test_unknown_company_setup_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "company", "--company-setups", "sqlite,oracle"]) == 2
    assert "unknown company setup oracle" in capsys.readouterr().err


def test_unknown_scenario_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nonsense"]) == 2
    assert "unknown scenario nonsense" in capsys.readouterr().err


def test_json_records_the_command(report: dict[str, Any], tmp_path: Path) -> None:
    assert report["run"]["command"].startswith("pm bench --duration 0.5 --json ")
    assert report["run"]["config"]["cn_connections"] == BenchConfig.tiny().cn_connections


async def test_fanout_listeners_credit_every_change_a_batch_skipped_over() -> None:
    """A batch may move a printer from change 3 to change 7 at once: each operator then
    has 4..7 from that moment; the next collect starts where this one ended."""
    from pm_bench.fanout import StatusListeners

    listeners = StatusListeners(url="http://127.0.0.1:9", token="t", connections=2)
    try:
        first, second = listeners._handler(0), listeners._handler(1)
        first(1, 3)
        second(1, 2)
        second(1, 3)
        first(1, 7)
        first(1, 5)  # older than what it has: nothing new
        second(2, 1)
        progress = await listeners.cmd_progress()
        assert progress["deliveries"] == 7 + 3 + 1
        rows = {
            (p, s): (count, a <= b)
            for p, s, count, a, b in (await listeners.cmd_collect())["arrivals"]
        }
        assert rows == {
            (1, 1): (2, True), (1, 2): (2, True), (1, 3): (2, True),
            (1, 4): (1, True), (1, 5): (1, True), (1, 6): (1, True), (1, 7): (1, True),
            (2, 1): (1, True),
        }  # fmt: skip
        second(1, 8)
        assert (await listeners.cmd_progress())["deliveries"] == 5  # 4..8 for the second
        again = (await listeners.cmd_collect())["arrivals"]
        assert sorted((p, s, c) for p, s, c, _, _ in again) == [(1, s, 1) for s in range(4, 9)]
    finally:
        await listeners.close()


def test_the_round_trip_and_connections_run_over_tls(tmp_path: Path) -> None:
    """``pm bench --tls``: the hub serves https/wss with a CA made for the run, and the
    load processes, real agents included, trust it."""
    from dataclasses import replace

    out = tmp_path / "tls.json"
    with (tmp_path / "table.txt").open("w") as fh:
        code = run_bench(
            ["roundtrip", "connections"],
            duration=0.5,
            json_path=out,
            config=replace(BenchConfig.tiny(), tls=True),
            out=fh,
        )
    data = json.loads(out.read_text())
    assert code == 0 and data["run"]["config"]["tls"] is True
    assert "--tls" in data["run"]["command"]
    assert "over TLS" in (tmp_path / "table.txt").read_text()
    values = {f["key"]: f["value"] for f in data["figures"]}
    assert values["roundtrip.failed"] == 0 and values["roundtrip_real.failed"] == 0
    assert values["connections.answered"] == 40
    # The run's CA is gone with the run: a later run in this process (another test,
    # pm bench dashboard) is not told to trust a file that no longer exists.
    assert CA_ENV not in os.environ
