"""What a user installs: the base wheel holds the product and no tooling; the
benchmark comes with the bench extra, and ``pm bench`` without it says how to get it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pm.cli
from pm.cli import BENCH_MISSING, main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel .`` builds from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (built,) = out.glob("printermaster-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_base_wheel_ships_the_product(wheel_files: list[str]) -> None:
    packages = {name.split("/")[0] for name in wheel_files if name.endswith(".py")}
    assert packages == {"pm", "pm_core", "pm_hub", "pm_agent", "pm_tui"}
    assert "pm_tui/app.tcss" in wheel_files  # the dashboard's styles travel with it
    assert "pm_tui/web/app_index.html" in wheel_files  # and the --web page


def test_the_base_wheel_holds_no_bench_sample_hub_or_screenshot_module(
    wheel_files: list[str],
) -> None:
    tooling = [
        name
        for name in wheel_files
        if any(word in name for word in ("bench", "sample", "screenshot", "tests/"))
    ]
    assert tooling == []


def test_the_wheel_offers_the_bench_extra(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    assert "Provides-Extra: bench" in metadata.splitlines()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [line for line in requires if "extra == 'bench'" in line] == [
        f"Requires-Dist: printermaster-bench @ {(ROOT / 'bench').as_uri()} ; extra == 'bench'"
    ]


def test_pm_bench_without_the_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pm.cli, "_plugins", dict)  # as if printermaster-bench were absent
    assert main(["bench", "--duration", "5"]) == 2
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err.count(BENCH_MISSING) == 2
    assert "pip install 'printermaster[bench]'" in err


def test_pm_bench_comes_from_the_installed_extra() -> None:
    """The dev install has the bench package: ``pm bench`` is its command, found
    through the ``printermaster.commands`` entry point, not imported by the product."""
    plugins = pm.cli._plugins()
    assert "bench" in plugins
    assert plugins["bench"].__name__ == "pm_bench.command"
    parser = pm.cli.build_parser(plugins)
    args = parser.parse_args(["bench", "roundtrip", "--duration", "2"])
    assert (args.command, args.scenarios, args.duration) == ("bench", ["roundtrip"], 2.0)
