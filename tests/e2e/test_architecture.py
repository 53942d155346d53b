"""The import rules in ``make lint`` catch what they are there for: on a scratch copy
of the code, each forbidden import (also one inside a function) breaks its contract,
and the untouched copy keeps them all (docs/architecture.md lists the rules)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "pm": ROOT / "pm",
    "pm_core": ROOT / "pm_core",
    "pm_hub": ROOT / "pm_hub",
    "pm_agent": ROOT / "pm_agent",
    "pm_tui": ROOT / "pm_tui",
    "pm_bench": ROOT / "bench" / "pm_bench",
}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of every package and of pyproject.toml (the contracts)."""
    for name, source in PACKAGES.items():
        shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(scratch: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(scratch)}  # the copy, not the installed code
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(scratch / "pyproject.toml"), "--no-cache"],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def broken(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The names of the contracts the run reports broken."""
    return [
        line.removesuffix(" BROKEN").strip()
        for line in result.stdout.splitlines()
        if line.endswith(" BROKEN")
    ]


def test_the_code_as_it_is_keeps_every_contract(scratch: Path) -> None:
    result = lint(scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    assert broken(result) == []


@pytest.mark.parametrize(
    ("module", "code", "contract"),
    [
        ("pm_core/leak.py", "import pm_hub.server\n", "Layers"),
        ("pm_hub/leak.py", "def f():\n    import pm_agent.agent\n", "Layers"),
        ("pm_tui/leak.py", "from pm_hub import auth\n", "Layers"),
        ("pm_agent/leak.py", "import pm.cli\n", "Layers"),
        ("pm_agent/leak.py", "import textual.app\n", "Only the dashboard imports Textual"),
        ("pm_hub/leak.py", "from textual.widget import Widget\n", "Only the dashboard"),
        ("pm/leak.py", "import textual\n", "The composition root does not import Textual"),
        ("pm_hub/leak.py", "def f():\n    import pm_bench.runner\n", "Nothing shipped"),
        ("pm/leak.py", "import pm_bench.command\n", "Nothing shipped"),
        ("pm_hub/circle.py", "import pm_hub.wiring\n", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    scratch: Path, module: str, code: str, contract: str
) -> None:
    (scratch / module).write_text(code)
    if module == "pm_hub/circle.py":  # and a module the wiring imports imports it back
        alerts = scratch / "pm_hub" / "alerts.py"
        alerts.write_text(alerts.read_text() + "\nimport pm_hub.circle  # noqa\n")
    result = lint(scratch)
    assert result.returncode == 1, result.stdout
    assert any(name.startswith(contract) for name in broken(result)), result.stdout
