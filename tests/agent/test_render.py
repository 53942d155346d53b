"""Job documents: validation messages name the bad field, and rendering
produces python-escpos bytes that decode back to what the document says."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from escpos import constants
from PIL import Image as PILImage

from pm_agent.escpos_events import (
    Barcode,
    Cut,
    Drawer,
    Event,
    Image,
    Init,
    LineFeed,
    QRCode,
    Style,
    Text,
)
from pm_agent.escpos_stream import (
    decode_all,
)
from pm_agent.render import TEST_PAGE_TITLE, render_document, render_test_page
from pm_core.protocol.documents import (
    BARCODE_FORMATS,
    MAX_BLOCKS,
    validate_document,
)
from pm_core.protocol.errors import ErrorCode, ProtocolError


def png(width: int = 100, height: int = 50) -> str:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), "black").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def lines(events: list[Event]) -> list[str]:
    text = "".join(
        e.text if isinstance(e, Text) else "\n" for e in events if isinstance(e, Text | LineFeed)
    )
    return text.split("\n")


def doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"blocks": list(blocks)}


# --------------------------------------------------------------------------- rendering


def test_every_block_type_renders_and_decodes_back() -> None:
    data = render_document(
        doc(
            {"type": "text", "text": "Table 12", "bold": True, "align": "center"},
            {"type": "line", "char": "="},
            {"type": "feed", "lines": 2},
            {"type": "barcode", "data": "ORDER-42"},
            {"type": "barcode", "data": "4006381333931", "kind": "ean-13"},
            {"type": "qr", "data": "https://example.com/r/42", "size": 4},
            {"type": "image", "png_base64": png(100, 50)},
            {"type": "drawer", "pin": 5},
            {"type": "cut", "partial": True},
        ),
        columns=32,
    )
    events = decode_all(data)
    assert events[0] == Init()
    assert lines(events)[:4] == ["Table 12", "=" * 32, "", ""]
    assert only(events, Barcode) == [
        Barcode("CODE128", "ORDER-42"),
        Barcode("EAN13", "4006381333931"),
    ]
    assert only(events, QRCode) == [QRCode("https://example.com/r/42")]
    assert only(events, Image) == [Image(104, 50)]
    assert only(events, Drawer) == [Drawer(5)]
    assert only(events, Cut) == [Cut(partial=True)]  # no extra cut appended
    assert events[-1] == Cut(partial=True)


def only(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_text_styles_are_set_then_reset() -> None:
    events = decode_all(
        render_document(
            doc(
                {
                    "type": "text",
                    "text": "BIG",
                    "bold": True,
                    "underline": True,
                    "align": "right",
                    "width": 2,
                    "height": 3,
                },
                {"type": "text", "text": "small"},
            )
        )
    )
    big = events.index(Text("BIG"))
    small = events.index(Text("small"))
    before, between = events[:big], events[big:small]
    for style in (
        Style("size", (2, 3)),
        Style("bold", True),
        Style("underline", 1),
        Style("align", "right"),
    ):
        assert style in before
    for style in (
        Style("size", (1, 1)),
        Style("bold", False),
        Style("underline", 0),
        Style("align", "left"),
    ):
        assert style in between


def test_text_with_accents_and_euro_survives() -> None:
    events = decode_all(render_document(doc({"type": "text", "text": "Crème brûlée 4,50 €"})))
    assert "Crème brûlée 4,50 €" in lines(events)


def test_multi_line_text_keeps_its_lines() -> None:
    events = decode_all(render_document(doc({"type": "text", "text": "one\ntwo\n"})))
    assert lines(events)[:3] == ["one", "two", ""]


def test_header_is_printed_first_bold_and_centred() -> None:
    data = render_document(doc({"type": "text", "text": "1x Soup"}), header="BACKUP FROM Kitchen-1")
    events = decode_all(data)
    assert lines(events)[:2] == ["BACKUP FROM Kitchen-1", "1x Soup"]
    head = events.index(Text("BACKUP FROM Kitchen-1"))
    assert Style("bold", True) in events[:head]
    assert Style("align", "center") in events[:head]


def test_a_header_carries_no_printer_commands() -> None:
    """The failover header names a printer: whatever the name holds prints as text
    (issue 12, finding 7): no cut, no drawer kick, no reset from it."""
    hostile = "BACKUP FROM Bar\x1dV\x00\x1bp\x00\x19\xfa\x1b@"
    events = decode_all(render_document(doc({"type": "text", "text": "1x Soup"}), header=hostile))
    assert lines(events)[0].startswith("BACKUP FROM Bar") and lines(events)[1] == "1x Soup"
    assert sum(isinstance(e, Cut) for e in events) == 1  # the ticket's own, at the end
    assert sum(isinstance(e, Init) for e in events) == 1  # the ticket's own, at the start
    assert not any(isinstance(e, Drawer) for e in events)


def test_a_job_always_ends_with_exactly_one_cut() -> None:
    plain = decode_all(render_document(doc({"type": "text", "text": "a"})))
    assert only(plain, Cut) == [Cut(partial=False)]
    assert plain[-1] == Cut(partial=False)
    # a cut in the middle and text after it: the tail is cut too
    tail = decode_all(
        render_document(
            doc({"type": "text", "text": "a"}, {"type": "cut"}, {"type": "text", "text": "b"})
        )
    )
    assert only(tail, Cut) == [Cut(), Cut()]
    # a drawer kick after the last cut does not need another cut
    drawer = decode_all(
        render_document(doc({"type": "text", "text": "a"}, {"type": "cut"}, {"type": "drawer"}))
    )
    assert only(drawer, Cut) == [Cut()]


def test_raw_documents_pass_through_and_get_a_cut_only_if_missing() -> None:
    raw = b"\x1b@RAW LINE\n"
    data = render_document({"raw_base64": base64.b64encode(raw).decode()}, header="COPY")
    events = decode_all(data)
    assert lines(events)[:2] == ["COPY", "RAW LINE"]
    assert raw in data
    assert only(events, Cut) == [Cut()]

    with_cut = b"RAW\n\x1dV\x01"
    data = render_document({"raw_base64": base64.b64encode(with_cut).decode()})
    assert data.endswith(with_cut)
    assert only(decode_all(data), Cut) == [Cut(partial=True)]


def test_wide_images_are_scaled_to_the_paper() -> None:
    events = decode_all(render_document(doc({"type": "image", "png_base64": png(1500, 300)})))
    assert only(events, Image) == [Image(504, 101)]
    tm_t88 = decode_all(
        render_document(doc({"type": "image", "png_base64": png(1500, 300)}), profile="TM-T88V")
    )
    assert only(tm_t88, Image) == [Image(512, 102)]


def test_odd_column_counts_still_fit_images_in_whole_bytes() -> None:
    events = decode_all(
        render_document(doc({"type": "image", "png_base64": png(1500, 300)}), columns=31)
    )
    assert only(events, Image) == [Image(368, 74)]  # 31 x 12 = 372, down to 8-dot bytes


def test_qr_is_native_only_where_the_profile_has_it() -> None:
    """A POS-5890 draws no QR codes: it gets the code as an image, scaled down to fit
    its 58 mm paper; a TM-T20II draws it itself."""
    qr = {"type": "qr", "data": "https://example.com/r/42", "size": 16}
    native = decode_all(render_document(doc(qr), profile="TM-T20II"))
    assert only(native, QRCode) == [QRCode("https://example.com/r/42")]
    assert only(native, Image) == []
    drawn = decode_all(render_document(doc(qr), profile="POS-5890"), profile="POS-5890")
    assert only(drawn, QRCode) == []
    [image] = only(drawn, Image)
    assert 300 < image.height <= image.width <= 384  # square (width padded to bytes), 58 mm


def test_images_use_a_command_the_printer_has_or_are_left_out() -> None:
    """An impact TM-U220 prints images in column mode only; an AF-240 customer display
    prints none (and shows a QR code's text instead)."""
    blocks = doc(
        {"type": "text", "text": "Logo:"},
        {"type": "image", "png_base64": png(100, 50)},
        {"type": "qr", "data": "PAY-42"},
    )
    impact = render_document(blocks, profile="TM-U220")
    assert b"\x1dv0" not in impact and b"\x1b*" in impact  # ESC * column images only
    assert len(only(decode_all(impact, profile="TM-U220"), Image)) == 2
    display = decode_all(render_document(blocks, profile="AF-240"), profile="AF-240")
    assert only(display, Image) == [] and only(display, QRCode) == []
    assert lines(display)[:2] == ["Logo:", "PAY-42"]


def test_the_cut_follows_the_printers_word_over_its_profile() -> None:
    """A POS-5890 profile lists no cutter, but many such printers have one and say so
    (GS I 2): then the cut is sent; a printer that says it has none only feeds."""
    ticket = doc({"type": "text", "text": "x"})

    def cuts(**kw: Any) -> int:
        return len(only(decode_all(render_document(ticket, **kw)), Cut))

    assert cuts(profile="POS-5890") == 0
    assert cuts(profile="POS-5890", cutter=True) == 1
    assert cuts(profile="TM-T20II") == 1
    assert cuts(profile="TM-T20II", cutter=False) == 0


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown printer profile"):
        render_document(doc({"type": "text", "text": "x"}), profile="no-such-printer")


def test_rendering_never_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    render_document(
        doc(
            {"type": "barcode", "data": "12345678", "kind": "EAN8"},
            {"type": "image", "png_base64": png()},
            {"type": "qr", "data": "x"},
        )
    )
    assert capsys.readouterr().out == ""


def test_test_page_is_recognisable() -> None:
    when = datetime(2024, 5, 17, 12, 30, 5, tzinfo=UTC)
    data = render_test_page(
        printer_name="Kitchen-1", address="tcp://127.0.0.1:9100", columns=42, when=when
    )
    events = decode_all(data)
    text = lines(events)
    assert text[0] == TEST_PAGE_TITLE == "PRINTERMASTER TEST PAGE"
    assert "Printer: Kitchen-1" in text
    assert "Address: tcp://127.0.0.1:9100" in text
    assert any("2024-05-17 12:30:05" in line for line in text)
    assert "....:....1....:....2....:....3....:....4.." in text
    assert events[-1] == Cut()


# --------------------------------------------------------------------------- validation


def test_defaults_are_filled_in() -> None:
    normalized = validate_document(
        doc(
            {"type": "text", "text": "x"},
            {"type": "line"},
            {"type": "feed"},
            {"type": "barcode", "data": "123", "kind": "code 128"},
            {"type": "qr", "data": "q"},
            {"type": "cut"},
            {"type": "drawer"},
        )
    )
    assert normalized["blocks"] == [
        {
            "type": "text",
            "text": "x",
            "bold": False,
            "underline": 0,
            "align": "left",
            "width": 1,
            "height": 1,
        },
        {"type": "line", "char": "-"},
        {"type": "feed", "lines": 1},
        {"type": "barcode", "data": "123", "kind": "CODE128", "height": 64, "width": 3},
        {"type": "qr", "data": "q", "size": 6},
        {"type": "cut", "partial": False},
        {"type": "drawer", "pin": 2},
    ]


def test_validation_returns_a_copy() -> None:
    original = doc({"type": "text", "text": "x"})
    normalized = validate_document(original)
    normalized["blocks"][0]["text"] = "changed"
    assert original["blocks"][0] == {"type": "text", "text": "x"}


def test_underline_true_means_one_dot() -> None:
    normalized = validate_document(doc({"type": "text", "text": "x", "underline": True}))
    assert normalized["blocks"][0]["underline"] == 1


BIG_RAW = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("print this", "document must be an object"),
        ({}, "document must have blocks or raw_base64"),
        ({"blocks": [], "raw_base64": "AA=="}, "not both"),
        ({"blocks": [{"type": "text", "text": "x"}], "title": "x"}, "unknown key 'title'"),
        ({"blocks": "text"}, "blocks must be a list"),
        ({"blocks": []}, "blocks must hold 1 to 500 blocks"),
        ({"blocks": [{"type": "cut"}] * (MAX_BLOCKS + 1)}, "blocks must hold 1 to 500"),
        ({"blocks": ["text"]}, "blocks[0] must be an object"),
        (doc({"text": "x"}), "blocks[0].type is required"),
        (doc({"type": "poem"}), "blocks[0].type must be one of text, line, feed"),
        (doc({"type": "cut"}, {"type": "text"}), "blocks[1].text is required"),
        (doc({"type": "text", "text": 5}), "blocks[0].text must be a string"),
        (doc({"type": "text", "text": "x" * 4097}), "blocks[0].text must be at most 4096"),
        (doc({"type": "text", "text": "x", "colour": "red"}), "blocks[0] has unknown key 'colour'"),
        (
            doc(
                {"type": "cut"},
                {"type": "cut"},
                {"type": "cut"},
                {"type": "text", "text": "x", "align": "middle"},
            ),
            "blocks[3].align must be one of left, center, right",
        ),
        (doc({"type": "text", "text": "x", "bold": "yes"}), "blocks[0].bold must be true or false"),
        (doc({"type": "text", "text": "x", "underline": 3}), "blocks[0].underline must be"),
        (
            doc({"type": "text", "text": "x", "width": 9}),
            "blocks[0].width must be an integer from 1 to 8",
        ),
        (
            doc({"type": "text", "text": "x", "height": 0}),
            "blocks[0].height must be an integer from 1 to 8",
        ),
        (doc({"type": "text", "text": "x", "width": True}), "blocks[0].width must be an integer"),
        (doc({"type": "line", "char": "=="}), "blocks[0].char must be a single"),
        (doc({"type": "feed", "lines": 21}), "blocks[0].lines must be an integer from 1 to 20"),
        (doc({"type": "feed", "lines": "2"}), "blocks[0].lines must be an integer"),
        (doc({"type": "barcode"}), "blocks[0].data is required"),
        (
            doc({"type": "barcode", "data": "1", "kind": "QRX"}),
            "blocks[0].kind must be one of UPC-A",
        ),
        (
            doc({"type": "barcode", "data": "12ab", "kind": "EAN13"}),
            "blocks[0].data is not valid EAN13 data",
        ),
        (doc({"type": "barcode", "data": "Zürich"}), "blocks[0].data is not valid CODE128 data"),
        (
            doc({"type": "barcode", "data": "1234", "width": 7}),
            "blocks[0].width must be an integer from 2 to 6",
        ),
        (doc({"type": "qr", "data": ""}), "blocks[0].data must not be empty"),
        (doc({"type": "qr", "data": "q" * 2001}), "blocks[0].data must be at most 2000"),
        (
            doc({"type": "qr", "data": "q", "size": 17}),
            "blocks[0].size must be an integer from 1 to 16",
        ),
        (doc({"type": "image"}), "blocks[0].png_base64 is required"),
        (
            doc({"type": "image", "png_base64": "not base64!"}),
            "blocks[0].png_base64 is not valid base64",
        ),
        (
            doc({"type": "image", "png_base64": base64.b64encode(b"GIF89a....").decode()}),
            "blocks[0].png_base64 is not a PNG image",
        ),
        (doc({"type": "image", "png_base64": png(5000, 1)}), "at most 4096x4096"),
        (
            doc(
                {
                    "type": "image",
                    "png_base64": base64.b64encode(b"\x89PNG" + b"0" * 600_000).decode(),
                }
            ),
            "blocks[0].png_base64 must decode to at most 524288 bytes",
        ),
        (doc({"type": "cut", "partial": 1}), "blocks[0].partial must be true or false"),
        (doc({"type": "drawer", "pin": 3}), "blocks[0].pin must be 2 or 5"),
        ({"raw_base64": 42}, "raw_base64 must be a base64 string"),
        ({"raw_base64": "%%%"}, "raw_base64 is not valid base64"),
        ({"raw_base64": ""}, "raw_base64 must not be empty"),
        ({"raw_base64": BIG_RAW}, "raw_base64 must decode to at most 1048576 bytes"),
        (
            doc(
                {"type": "text", "text": "x" * 4000}, *[{"type": "text", "text": "x" * 4000}] * 400
            ),
            "document is",
        ),
        (doc({"type": "text", "text": float("nan")}), "blocks[0].text must be a string"),
        ({"blocks": [{"type": "text", "text": b"x"}]}, "document must be plain JSON"),
    ],
)
def test_invalid_documents_name_the_bad_field(document: object, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_document(document)
    assert caught.value.code == ErrorCode.INVALID_PAYLOAD
    assert message in caught.value.message
    ack = caught.value.to_ack()
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload"


def test_render_refuses_invalid_documents() -> None:
    with pytest.raises(ProtocolError, match=r"blocks\[0\]\.align"):
        render_document(doc({"type": "text", "text": "x", "align": "justify"}))


def test_barcode_rules_match_python_escpos() -> None:
    assert set(BARCODE_FORMATS) == set(constants.BARCODE_FORMATS)
    for kind, rule in BARCODE_FORMATS.items():
        assert rule == constants.BARCODE_FORMATS[kind], kind
    assert set(constants.BARCODE_TYPE_B) <= set(BARCODE_FORMATS)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("UPC-A", "12345678901"),
        ("UPC-E", "01234565"),
        ("EAN13", "4006381333931"),
        ("EAN8", "12345670"),
        ("CODE39", "ABC-123"),
        ("ITF", "1234"),
        ("NW7", "A123B"),
        ("CODE93", "Hello"),
        ("CODE128", "Table {7}"),
        ("GS1-128", "0101234567890128"),
    ],
)
def test_every_accepted_barcode_prints(kind: str, data: str) -> None:
    events = decode_all(render_document(doc({"type": "barcode", "kind": kind, "data": data})))
    barcodes = only(events, Barcode)
    assert len(barcodes) == 1
    assert barcodes[0].data == data
