"""``pm bench dashboard`` against a company hub at toy size: the options reach the
scenario and every figure comes out sane. Never a timing threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pm.cli import main

pytestmark = pytest.mark.timeout(180)


def test_dashboard_against_a_company_hub_with_branch_links(tmp_path: Path) -> None:
    """200 printers over 4 branch links of a company hub, 50 changes/s for a second:
    every change reaches its row, the arrow keys pressed during the load were timed,
    and the targets show in the table."""
    out = tmp_path / "bench.json"
    options = ["--printers", "200", "--branches", "4", "--rate", "50", "--duration", "1"]
    code = main(["bench", "dashboard", *options, "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    details = report["scenarios"]["dashboard"]["details"]
    assert report["scenarios"]["dashboard"]["error"] is None
    assert (details["hub"], details["branches"], details["printers"]) == ("company", 4, 200)
    assert details["rate_per_s"] == 50
    assert details["changes_sent"] > 0
    assert details["rows_updated"] > 0
    assert details["rows_wrong_at_end"] == 0
    assert details["keys_pressed"] > 0
    assert details["key_painted_ms"]["n"] > 0
    figures = {f["key"]: f for f in report["figures"]}
    assert (
        0
        < figures["dashboard.painted_p50_ms"]["value"]
        <= figures["dashboard.painted_p99_ms"]["value"]
    )
    assert 0 < figures["dashboard.key_p50_ms"]["value"] <= figures["dashboard.key_p99_ms"]["value"]
    for key in ("dashboard.painted_p99_ms", "dashboard.key_p99_ms"):
        assert figures[key]["target"] and figures[key]["met"] in (True, False)


@pytest.mark.parametrize(
    ("printers", "branches", "rate", "expected"),
    [
        (None, None, None, (500, 0, 100.0)),
        (5000, None, None, (5000, 100, 200.0)),
        (500, 10, None, (500, 10, 100.0)),
        (5000, 0, 50.0, (5000, 0, 50.0)),
    ],
)
def test_printers_pick_the_hub_and_the_rate(
    printers: int | None, branches: int | None, rate: float | None, expected: tuple[int, int, float]
) -> None:
    """Plain ``pm bench`` keeps 500 printers on a branch hub; ``--printers 5000`` is the
    company scale (100 branches, 200 changes/s); ``--branches`` / ``--rate`` override."""
    import argparse

    from pm_bench.command import _config

    args = argparse.Namespace(
        tls=False, company_setups=None, printers=printers, branches=branches, rate=rate
    )
    config = _config(args)
    assert (config.db_printers, config.db_branches, config.db_rate) == expected


def test_impossible_dashboard_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "dashboard", "--printers", "10", "--branches", "20"]) == 2
    assert "--branches must be between 0 and the number of printers" in capsys.readouterr().err
