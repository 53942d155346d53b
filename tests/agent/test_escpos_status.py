"""DLE EOT status bytes: what the agent reads from a printer and what the
simulator answers, cross-checked against python-escpos's own status logic."""

from __future__ import annotations

import pytest
from escpos import constants
from escpos.printer import Dummy
from hypothesis import given
from hypothesis import strategies as st

from pm_agent.escpos_status import (
    FLAG_NAMES,
    STATUS_QUERIES,
    STATUSES,
    StatusReport,
    decode_status,
    encode_state,
    encode_status,
)


class AnsweringDummy(Dummy):
    """python-escpos's own Dummy printer that answers status reads with fixed
    bytes, so its real ``is_online``/``paper_status`` code runs on our bytes."""

    def __init__(self, answers: dict[int, int]) -> None:
        super().__init__()
        self.answers = answers

    def _read(self) -> bytes:
        query = self.output[-3:]
        return bytes([self.answers[query[2]]])


def decode(answers: dict[int, int]) -> StatusReport:
    return decode_status(answers[1], answers[2], answers[3], answers[4])


def test_queries_are_dle_eot_n() -> None:
    assert STATUS_QUERIES == {
        1: b"\x10\x04\x01",
        2: b"\x10\x04\x02",
        3: b"\x10\x04\x03",
        4: b"\x10\x04\x04",
    }
    assert STATUS_QUERIES[1] == constants.RT_STATUS_ONLINE
    assert STATUS_QUERIES[4] == constants.RT_STATUS_PAPER


def test_healthy_printer_answers_fixed_bits_only() -> None:
    assert encode_status() == {1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}
    report = decode_status(0x12, 0x12, 0x12, 0x12)
    assert report.status == "online"
    assert report.can_print
    assert not any(report.flags.values())


@pytest.mark.parametrize("state", STATUSES)
def test_every_simulator_state_decodes_to_itself(state: str) -> None:
    assert decode(encode_state(state)).status == state


@pytest.mark.parametrize(
    ("condition", "online", "paper"),
    [
        ({}, True, 2),
        ({"paper_near_end": True}, True, 1),
        ({"paper_end": True}, False, 0),
        ({"cover_open": True}, False, 2),
        ({"cutter_error": True}, False, 2),
        ({"offline": True}, False, 2),
    ],
)
def test_python_escpos_reads_our_bytes_the_same_way(
    condition: dict[str, bool], online: bool, paper: int
) -> None:
    printer = AnsweringDummy(encode_status(**condition))
    assert printer.is_online() is online
    assert printer.paper_status() == paper
    # and the masks python-escpos uses are the bit patterns we document
    answers = encode_status(**condition)
    assert answers[4] & constants.RT_MASK_PAPER == constants.RT_MASK_PAPER
    assert bool(answers[1] & constants.RT_MASK_ONLINE) is not online


def test_status_comes_from_the_cause_not_the_offline_bit() -> None:
    # A real printer with its cover open also sets the offline bit.
    answers = encode_status(cover_open=True)
    assert answers[1] & 0x08
    report = decode(answers)
    assert report.status == "cover_open"
    assert report.flags["offline"] and report.flags["cover_open"]
    # The offline bit with no cause at all is plain "offline".
    assert decode_status(0x1A, 0x12, 0x12, 0x12).status == "offline"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"cover_open": True, "paper_end": True, "cutter_error": True}, "error"),
        ({"cover_open": True, "paper_end": True}, "cover_open"),
        ({"paper_end": True, "paper_near_end": True}, "paper_out"),
        ({"paper_near_end": True}, "paper_low"),
        ({"unrecoverable_error": True}, "error"),
        ({"auto_recoverable_error": True}, "error"),
        ({"recoverable_error": True}, "error"),
    ],
)
def test_status_priority(condition: dict[str, bool], expected: str) -> None:
    assert decode(encode_status(**condition)).status == expected


def test_paper_low_still_prints_but_paper_out_does_not() -> None:
    assert decode(encode_state("paper_low")).can_print
    assert not decode(encode_state("paper_out")).can_print


def test_flags_report_every_bit_with_the_documented_keys() -> None:
    report = decode_status(0x12 | 0x04 | 0x40, 0x12, 0x12 | 0x08, 0x12)
    assert set(report.flags) == set(FLAG_NAMES)
    assert report.flags["drawer_open"]
    assert report.flags["feed_button"]
    assert report.flags["cutter_error"]
    assert report.status == "error"


@pytest.mark.parametrize("garbage", [0x00, 0xFF, 0x13, 0x92, 0x02, 0x10])
def test_garbage_answers_are_rejected(garbage: int) -> None:
    with pytest.raises(ValueError, match="not a DLE EOT answer"):
        decode_status(0x12, 0x12, garbage, 0x12)
    with pytest.raises(ValueError):
        decode_status(garbage, 0x12, 0x12, 0x12)


def test_out_of_range_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="byte"):
        decode_status(0x112, 0x12, 0x12, 0x12)


def test_unknown_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown printer state"):
        encode_state("on fire")


_CONDITIONS = st.fixed_dictionaries(
    {
        name: st.booleans()
        for name in (
            "offline",
            "cover_open",
            "paper_near_end",
            "paper_end",
            "cutter_error",
            "unrecoverable_error",
            "auto_recoverable_error",
        )
    }
)


@given(_CONDITIONS)
def test_encode_then_decode_keeps_every_condition(condition: dict[str, bool]) -> None:
    answers = encode_status(**condition)
    assert all(byte & 0x93 == 0x12 for byte in answers.values())
    report = decode(answers)
    errors = (
        condition["cutter_error"]
        or condition["unrecoverable_error"]
        or condition["auto_recoverable_error"]
    )
    for name in ("cover_open", "paper_end", "cutter_error", "unrecoverable_error"):
        assert report.flags[name] == condition[name]
    assert report.flags["paper_near_end"] == (condition["paper_near_end"] or condition["paper_end"])
    assert report.flags["offline"] == (
        condition["offline"] or condition["cover_open"] or condition["paper_end"] or errors
    )
    if errors:
        assert report.status == "error"
    elif condition["cover_open"]:
        assert report.status == "cover_open"
    elif condition["paper_end"]:
        assert report.status == "paper_out"
    elif condition["paper_near_end"]:
        assert report.status == "paper_low"
    elif condition["offline"]:
        assert report.status == "offline"
    else:
        assert report.status == "online"


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_decode_never_fails_on_valid_pattern_and_always_on_invalid(
    a: int, b: int, c: int, d: int
) -> None:
    valid = all(x & 0x93 == 0x12 for x in (a, b, c, d))
    if valid:
        assert decode_status(a, b, c, d).status in STATUSES
    else:
        with pytest.raises(ValueError):
            decode_status(a, b, c, d)
