"""Input the floor refuses before any component stores, prints or shows it: printer
commands hidden in ticket text or names, lone surrogates, hostile nesting, and more
image than a ticket can hold (issue 12: findings 3, 7 and 11)."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest

from pm_core.protocol import ErrorCode, ProtocolError
from pm_core.protocol.documents import MAX_DOCUMENT_PIXELS, validate_document
from pm_core.protocol.validation import check_payload_shape, control_characters, get_name


def refusal(call: object) -> str:
    with pytest.raises(ProtocolError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == ErrorCode.INVALID_PAYLOAD
    return caught.value.message


def png(width: int, height: int) -> str:
    """A PNG header with these dimensions (the hub reads only the header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + body).decode()


@pytest.mark.parametrize(
    "text",
    [
        "2x Burger\x1bp\x00\x19\xfa",  # ESC p: kick the cash drawer
        "Table 4\x1dV\x00more",  # GS V: cut, one ticket becomes two receipts
        "Soup\x1b@",  # ESC @: reset the printer's settings
        "\x9b31m red",  # C1 CSI
        "bell\x07",
        "carriage\rreturn",
    ],
)
def test_a_text_block_with_printer_commands_is_refused_naming_the_field(text: str) -> None:
    message = refusal(
        lambda: validate_document({"blocks": [{"type": "line"}, {"type": "text", "text": text}]})
    )
    assert message.startswith("blocks[1].text has control characters")
    assert "raw_base64" in message


def test_line_feeds_tabs_and_every_script_still_print() -> None:
    text = "2x Burger\t12.50 €\nشاي بالنعناع\n拉面\nสวัสดี\u200d"  # noqa: RUF001
    document = validate_document({"blocks": [{"type": "text", "text": text}]})
    assert document["blocks"][0]["text"] == text


def test_raw_documents_still_carry_printer_commands() -> None:
    raw = base64.b64encode(b"\x1b@hello\x1dV\x00").decode()
    assert validate_document({"raw_base64": raw}) == {"raw_base64": raw}


def test_the_images_of_one_document_are_bounded_together() -> None:
    wide = {"type": "image", "png_base64": png(576, 4096)}  # a 51 cm strip of receipt
    fits = MAX_DOCUMENT_PIXELS // (576 * 4096)
    assert len(validate_document({"blocks": [wide] * fits})["blocks"]) == fits
    message = refusal(lambda: validate_document({"blocks": [wide] * (fits + 1)}))
    assert message.startswith("blocks hold images of")


@pytest.mark.parametrize(
    ("name", "bad"),
    [("Kitchen\x1b]0;pwned\x07", "\\x1b, \\x07"), ("Bar\n2", "\\x0a"), ("x\x85", "\\x85")],
)
def test_a_name_with_control_characters_is_refused(name: str, bad: str) -> None:
    message = refusal(lambda: get_name({"name": name}, "name"))
    assert message == f"name must not hold control characters ({bad})"


def test_plain_names_pass() -> None:
    assert get_name({"name": "Küche 1 – Pass"}, "name") == "Küche 1 – Pass"  # noqa: RUF001
    assert get_name({}, "name") is None


def test_control_characters_are_listed_once_each() -> None:
    assert control_characters("a\x1bb\x1bc\x07") == ["\\x1b", "\\x07"]
    assert control_characters("a\nb", allowed="\n") == []


def test_a_lone_surrogate_anywhere_is_refused() -> None:
    for payload in ('{"a": "\\ud800"}', '{"\\udfff": 1}', '[[["x\\ud83d"]]]'):
        message = refusal(lambda p=payload: check_payload_shape(json.loads(p)))
        assert "surrogate" in message
    check_payload_shape(json.loads('{"emoji": "\\ud83d\\ude00"}'))  # a whole pair is text


def test_hostile_nesting_is_refused_without_recursion() -> None:
    deep: list[object] = []
    inner = deep
    for _ in range(50_000):
        nxt: list[object] = []
        inner.append(nxt)
        inner = nxt
    assert "nested deeper" in refusal(lambda: check_payload_shape(deep))
    check_payload_shape({"document": {"blocks": [{"type": "text", "text": "ok"}]}})
