"""A printer's command language and text mode, as payloads carry them."""

from __future__ import annotations

import pytest

from pm_core.protocol.errors import ProtocolError
from pm_core.protocol.languages import (
    LANGUAGES,
    PASS_THROUGH_LANGUAGES,
    check_language_field,
    check_text_mode_field,
)


def test_known_languages_and_null_pass_others_are_refused_with_the_list() -> None:
    assert LANGUAGES == ("escpos", "star_line", "starprnt", "star_raster", "zpl", "raw")
    assert {"zpl", "raw"} == PASS_THROUGH_LANGUAGES
    assert [check_language_field(v) for v in (*LANGUAGES, None)] == [*LANGUAGES, None]
    for bad in ("ZPL2", "", 3, ["zpl"]):
        with pytest.raises(ProtocolError, match="escpos, star_line, starprnt"):
            check_language_field(bad)


def test_text_mode_is_auto_or_raster() -> None:
    assert [check_text_mode_field(v) for v in ("auto", "raster", None)] == ["auto", "raster", None]
    with pytest.raises(ProtocolError, match="text_mode must be one of auto, raster"):
        check_text_mode_field("bitmap")
