"""The ESC/POS decoder against real python-escpos output: every command it
can emit is decoded to the right event, never loses sync, and gives the same
events however the stream is split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from escpos.printer import Dummy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from pm_agent.escpos_events import (
    Barcode,
    Buzzer,
    Cut,
    Drawer,
    Event,
    Feed,
    IdentityRequest,
    Image,
    Init,
    LineFeed,
    QRCode,
    StatusRequest,
    Style,
    Text,
    Unknown,
)
from pm_agent.escpos_stream import (
    EscPosDecoder,
    decode_all,
)

SENTINEL = b"SENTINEL\n"


def escpos(action: Callable[[Any], None], profile: str | None = None) -> bytes:
    printer = Dummy(profile=profile)
    action(printer)
    return bytes(printer.output)


def text_of(events: list[Event]) -> str:
    out = []
    for event in events:
        if isinstance(event, Text):
            out.append(event.text)
        elif isinstance(event, LineFeed):
            out.append("\n")
    return "".join(out)


def only(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[Event]:
    decoder = EscPosDecoder()
    events: list[Event] = []
    start = 0
    for cut in sorted(cuts):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.flush()


def sample_receipt() -> bytes:
    def build(p: Any) -> None:
        p.hw("INIT")
        p.set(align="center", bold=True, custom_size=True, width=2, height=2)
        p.text("Café Zürich €5\n")
        p.set_with_default()
        p.text("Tab\there\n")
        p._hw_barcode("{B12345", "CODE128", function_type="B")
        p._hw_barcode("4006381333931", "EAN13", function_type="A")
        p.qr("https://example.com/order/42", native=True)
        p.image(PILImage.new("1", (40, 30)), impl="bitImageRaster")
        p.image(PILImage.new("1", (40, 30)), impl="graphics")
        p.image(PILImage.new("1", (40, 30)), impl="bitImageColumn")
        p.cashdraw(2)
        p.line_spacing(30)
        p.buzzer(2, 3)
        p.cut(mode="PART")

    return escpos(build)


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text",
    [
        "Hello, world",
        "Crème brûlée à la carte",
        "Grüße aus Köln: Äpfel, Öl, Übermaß",
        "Precio: 5€ — señor, niño",
        "Ελληνικά γράμματα",
        "Привет, мир",
        "Dziękuję, że przyszłaś",
        "box ═║╔ and ½ ¼ °",
    ],
)
def test_magic_encoded_text_comes_back_unchanged(text: str) -> None:
    events = decode_all(escpos(lambda p: p.text(text + "\n")))
    assert text_of(events) == text + "\n"


@pytest.mark.parametrize(
    ("slot", "byte", "char"),
    [(0, 0x82, "é"), (2, 0xD5, "\u0131"), (19, 0xD5, "€"), (16, 0x80, "€"), (16, 0xE9, "é")],
)
def test_esc_t_selects_the_epson_code_pages(slot: int, byte: int, char: str) -> None:
    # PC437 (0), PC850 (2), PC858 (19), WPC1252 (16)
    events = decode_all(b"\x1bt" + bytes([slot, byte]) + b"\n")
    assert text_of(events) == char + "\n"


def test_cp437_is_the_default_and_esc_at_resets_to_it() -> None:
    assert text_of(decode_all(b"\x82\n")) == "é\n"
    assert text_of(decode_all(b"\x1bt\x10\x80\x1b@\x80\n")) == "€Ç\n"


def test_forced_charcode_is_honoured() -> None:
    def build(p: Any) -> None:
        p.charcode("CP858")
        p.text("5€\n")

    events = decode_all(escpos(build))
    assert Style("codepage", "CP858") in events
    assert text_of(events) == "5€\n"


def test_text_waits_for_its_end_so_split_words_stay_whole() -> None:
    decoder = EscPosDecoder()
    assert decoder.feed(b"Hel") == []
    assert decoder.feed(b"lo") == []
    assert decoder.feed(b"\n") == [Text("Hello"), LineFeed()]
    assert decoder.feed(b"tail") == []
    assert decoder.flush() == [Text("tail")]


# --------------------------------------------------------------------------- styles


def test_set_emits_one_style_event_per_setting() -> None:
    data = escpos(
        lambda p: p.set(
            align="right",
            font="b",
            bold=True,
            underline=2,
            density=3,
            invert=True,
            smooth=True,
            flip=True,
        )
    )
    events = decode_all(data)
    assert events == [
        Style("flip", True),
        Style("smooth", True),
        Style("bold", True),
        Style("underline", 2),
        Style("font", "b"),
        Style("align", "right"),
        Style("density", 3),
        Style("invert", True),
    ]


def test_text_sizes() -> None:
    custom = decode_all(escpos(lambda p: p.set(custom_size=True, width=3, height=5)))
    assert custom == [Style("size", (3, 5))]
    double = decode_all(escpos(lambda p: p.set(double_width=True, double_height=True)))
    assert double[-1] == Style("print_mode", 0x30)


def test_set_with_default_is_all_styles_and_nothing_else() -> None:
    events = decode_all(escpos(lambda p: p.set_with_default()))
    assert events and all(isinstance(e, Style) for e in events)
    assert Style("align", "left") in events
    assert Style("bold", False) in events


@pytest.mark.parametrize(
    ("divisor", "expected"), [(180, (40, 180)), (60, (40, 60)), (360, (40, 360))]
)
def test_line_spacing(divisor: int, expected: tuple[int, int]) -> None:
    events = decode_all(escpos(lambda p: p.line_spacing(40, divisor=divisor)))
    assert events == [Style("line_spacing", expected)]
    assert decode_all(escpos(lambda p: p.line_spacing())) == [Style("line_spacing", None)]


# --------------------------------------------------------------------------- codes


@pytest.mark.parametrize(
    ("code", "kind", "function_type", "shown"),
    [
        ("4006381333931", "EAN13", "A", "4006381333931"),
        ("4006381333931", "EAN13", "B", "4006381333931"),
        ("12345678", "EAN8", "A", "12345678"),
        ("123456789012", "UPC-A", "A", "123456789012"),
        ("CODE39 TEST", "CODE39", "A", "CODE39 TEST"),
        ("A1234B", "CODABAR", "B", "A1234B"),
        ("{BTable 12", "CODE128", "B", "Table 12"),
        ("{B{{x", "CODE128", "B", "{x"),
        ("ABC123", "CODE93", "B", "ABC123"),
    ],
)
def test_hardware_barcodes(code: str, kind: str, function_type: str, shown: str) -> None:
    data = escpos(lambda p: p.barcode(code, kind, function_type=function_type))
    events = decode_all(data + SENTINEL)
    expected = "CODABAR" if kind == "NW7" else kind
    assert only(events, Barcode) == [Barcode(expected, shown)]
    assert events[-2:] == [Text("SENTINEL"), LineFeed()]


@pytest.mark.parametrize("impl", ["graphics", "bitImageColumn", "bitImageRaster"])
def test_software_barcode_prints_an_image(impl: str) -> None:
    data = escpos(lambda p: p.barcode("4006381333931", "EAN13", force_software=impl))
    events = decode_all(data + SENTINEL)
    images = only(events, Image)
    assert len(images) == 1
    assert images[0].width > 50 and images[0].height > 20
    assert not only(events, Unknown)
    assert events[-2:] == [Text("SENTINEL"), LineFeed()]


def test_native_qr_code_carries_its_data() -> None:
    data = escpos(lambda p: p.qr("https://example.com/ü?a=1", native=True, size=8))
    events = decode_all(data + SENTINEL)
    assert events == [QRCode("https://example.com/ü?a=1"), Text("SENTINEL"), LineFeed()]


def test_image_qr_code_is_an_image_between_blank_lines() -> None:
    events = decode_all(escpos(lambda p: p.qr("hello", native=False)))
    kinds = [type(e) for e in events if not isinstance(e, Style)]
    assert kinds == [LineFeed, Image, LineFeed, LineFeed]


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("impl", "width", "height"),
    [
        ("bitImageRaster", 104, 50),  # raster width is rounded up to whole bytes
        ("graphics", 100, 50),
        ("bitImageColumn", 100, 72),  # column bands are 24 dots high
    ],
)
def test_each_image_implementation_is_one_image(impl: str, width: int, height: int) -> None:
    data = escpos(lambda p: p.image(PILImage.new("1", (100, 50)), impl=impl))
    events = decode_all(data + SENTINEL)
    assert only(events, Image) == [Image(width, height)]
    assert not only(events, Unknown)
    assert not only(events, LineFeed)[:-1]  # band line feeds belong to the image
    assert events[-2:] == [Text("SENTINEL"), LineFeed()]


def test_low_density_column_image_uses_8_dot_bands() -> None:
    data = escpos(
        lambda p: p.image(
            PILImage.new("1", (30, 20)),
            impl="bitImageColumn",
            high_density_vertical=False,
            high_density_horizontal=False,
        )
    )
    assert only(decode_all(data), Image) == [Image(30, 24)]


@pytest.mark.parametrize("impl", ["bitImageRaster", "graphics"])
def test_tall_image_fragments_are_merged_back(impl: str) -> None:
    data = escpos(lambda p: p.image(PILImage.new("1", (64, 2100)), impl=impl))
    assert only(decode_all(data), Image) == [Image(64, 2100)]


def test_two_small_images_stay_two_images() -> None:
    def build(p: Any) -> None:
        p.image(PILImage.new("1", (64, 30)))
        p.image(PILImage.new("1", (64, 30)))

    assert only(decode_all(escpos(build)), Image) == [Image(64, 30), Image(64, 30)]


# --------------------------------------------------------------------------- control


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (lambda p: p.cut(), [Feed(6), Cut(partial=False)]),
        (lambda p: p.cut(mode="PART"), [Feed(6), Cut(partial=True)]),
        (lambda p: p.cut(feed=False), [Cut(partial=True)]),
        (lambda p: p.cashdraw(2), [Drawer(2)]),
        (lambda p: p.cashdraw(5), [Drawer(5)]),
        (lambda p: p.cashdraw([27, 112, 48, 25, 255]), [Drawer(2)]),
        (lambda p: p.print_and_feed(3), [Feed(3)]),
        (lambda p: p.buzzer(3, 2), [Buzzer(3, 2)]),
        (lambda p: p.panel_buttons(False), [Style("panel_buttons", False)]),
        (lambda p: p.panel_buttons(True), [Style("panel_buttons", True)]),
        (lambda p: p.hw("INIT"), [Init()]),
        (lambda p: p.hw("SELECT"), [Style("peripheral", 1)]),
        (lambda p: p.control("LF"), [LineFeed()]),
        (lambda p: p.control("CR"), []),
        (lambda p: p.control("HT", count=4, tab_size=8), [Style("tabs", (8, 16, 24))]),
        (lambda p: p.ln(2), [Style("codepage", "CP437"), LineFeed(), LineFeed()]),
    ],
)
def test_control_commands(action: Callable[[Any], None], expected: list[Event]) -> None:
    events = decode_all(escpos(action) + SENTINEL)
    assert events[:-2] == expected
    assert events[-2:] == [Text("SENTINEL"), LineFeed()]


@pytest.mark.parametrize(
    "action",
    [
        lambda p: p.hw("RESET"),
        lambda p: p.control("FF"),
        lambda p: p.control("VT"),
        lambda p: p.target("SLIP"),
        lambda p: p.target("ROLL"),
        lambda p: p.eject_slip(),
        lambda p: p.print_and_eject_slip(),
        lambda p: p.use_slip_only(),
    ],
)
def test_rare_commands_never_swallow_the_following_text(action: Callable[[Any], None]) -> None:
    events = decode_all(escpos(action) + SENTINEL)
    assert events[-2:] == [Text("SENTINEL"), LineFeed()]
    assert text_of(events) == "SENTINEL\n"


def test_line_display_text_does_not_reach_the_paper() -> None:
    def build(p: Any) -> None:
        p.text("paper 1\n")
        p.linedisplay("DISPLAY ONLY")
        p.text("paper 2\n")

    events = decode_all(escpos(build))
    assert text_of(events) == "paper 1\npaper 2\n"
    assert Init() not in events  # the display's clear is not for the printer


def test_status_and_identity_requests() -> None:
    events = decode_all(b"\x10\x04\x01\x10\x04\x04\x1dI\x01\x1dIC")
    assert events == [StatusRequest(1), StatusRequest(4), IdentityRequest(1), IdentityRequest(0x43)]


def test_unknown_commands_keep_the_text_after_them() -> None:
    events = decode_all(b"\x1byHello\n\x1dy\x02World\n\x1b\x1bx\n")
    assert events == [
        Unknown(b"\x1by"),
        Text("Hello"),
        LineFeed(),
        Unknown(b"\x1dy\x02"),
        Text("World"),
        LineFeed(),
        Unknown(b"\x1b"),
        Unknown(b"\x1bx"),
        LineFeed(),
    ]


def test_truncated_command_at_end_of_stream_is_unknown() -> None:
    decoder = EscPosDecoder()
    assert decoder.feed(b"ok\n\x1dv0\x00\x10") == [Text("ok"), LineFeed()]
    assert decoder.flush() == [Unknown(b"\x1dv0\x00\x10")]


def test_raw_bytes_of_events_add_up_to_the_stream() -> None:
    data = sample_receipt()
    decoder = EscPosDecoder()
    pairs = decoder.feed_raw(data) + decoder.flush_raw()
    assert b"".join(raw for _, raw in pairs) == data


# --------------------------------------------------------------------------- chunking


def test_sample_receipt_decodes_to_what_was_printed() -> None:
    events = decode_all(sample_receipt())
    assert text_of(events) == "Café Zürich €5\nTab\there\n"
    assert only(events, Barcode) == [Barcode("CODE128", "12345"), Barcode("EAN13", "4006381333931")]
    assert only(events, QRCode) == [QRCode("https://example.com/order/42")]
    assert only(events, Image) == [Image(40, 30), Image(40, 30), Image(40, 48)]
    assert only(events, Drawer) == [Drawer(2)]
    assert events[-1] == Cut(partial=True)
    assert not only(events, Unknown)


def test_every_single_split_point_gives_the_same_events() -> None:
    data = sample_receipt()
    whole = decode_all(data)
    for cut in range(1, len(data)):
        assert decode_in_pieces(data, [cut]) == whole, f"split at byte {cut}"


def test_byte_by_byte_gives_the_same_events() -> None:
    data = sample_receipt()
    assert decode_in_pieces(data, list(range(1, len(data)))) == decode_all(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_chunking_gives_the_same_events(data: st.DataObject) -> None:
    stream = sample_receipt()
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=40))
    assert decode_in_pieces(stream, cuts) == decode_all(stream)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=10))
def test_garbage_never_crashes_and_chunking_never_matters(blob: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if 0 < c < len(blob)]
    assert decode_in_pieces(blob, cuts) == decode_all(blob)


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=60).map(
        # ESC, GS, FS and DLE start commands; everything else is text or a control.
        lambda b: bytes(c for c in b if c not in (0x10, 0x1B, 0x1C, 0x1D))
    )
)
def test_plain_bytes_all_become_text_or_control(blob: bytes) -> None:
    events = decode_all(b"\x1b@" + blob)
    printable = bytes(b for b in blob if b >= 0x20 or b == 0x09)
    assert len("".join(e.text for e in only(events, Text))) == len(printable)


_FRAGMENTS = st.sampled_from(
    [
        b"\x1b*\x21\x02\x00",
        b"\x1b*\x00\x01\x00",
        b"\x1dv0\x00\x01\x00\x02\x00",
        b"\x1d(k\x03\x001Q0",
        b"\x1d(k\x06\x001P0abc",
        b"\x1d(L\x0c\x000p0\x01\x011\x08\x00\x01\x00",
        b"\x1d(L\x02\x0002",
        b"\x1dkI\x03",
        b"\x1dk\x04",
        b"\x1bD\x08\x10",
        b"\x1b&\x03\x41\x42",
        b"\x1b=\x02",
        b"\x1b=\x01",
        b"\x1bt\x10",
        b"\x1c",
        b"\x10\x04",
        b"\x1b",
        b"\x1d",
        b"\n",
        b"\x00",
        b"text ",
        b"\x80\xe9",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_FRAGMENTS, st.binary(max_size=4)), max_size=30).map(b"".join),
    st.lists(st.integers(1, 400), max_size=12),
)
def test_command_soup_chunking_never_matters(blob: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c < len(blob)]
    assert decode_in_pieces(blob, cuts) == decode_all(blob)
    decoder = EscPosDecoder()
    pairs = decoder.feed_raw(blob) + decoder.flush_raw()
    assert len(b"".join(raw for _, raw in pairs)) <= len(blob)
