"""Fonts the script tests need: ``make fonts`` installs them (fonts-dejavu-core for
Latin and symbols, fonts-noto-core for Arabic, Hebrew and Thai, fonts-wqy-microhei for
Chinese and Japanese)."""

from __future__ import annotations

import pytest

from pm_core.fonts import default_fonts

#: A character of each script the tests draw, and the Debian package that holds it.
SCRIPT_SAMPLES = {
    "latin": ("A", "fonts-dejavu-core"),
    "symbols": ("✂", "fonts-dejavu-core"),
    "arabic": ("ش", "fonts-noto-core"),
    "hebrew": ("ש", "fonts-noto-core"),
    "thai": ("ก", "fonts-noto-core"),
    "chinese": ("鸡", "fonts-wqy-microhei"),
    "japanese": ("ラ", "fonts-wqy-microhei"),
}


def need_fonts(*scripts: str) -> None:
    """Skip the test, saying which package to install, when no font holds a script."""
    for script in scripts:
        char, package = SCRIPT_SAMPLES[script]
        if default_fonts().face_for(char) is None:
            pytest.skip(f"no {script} font on this machine: run `make fonts` ({package})")
