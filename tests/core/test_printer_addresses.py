"""Printer addresses an operator sends (``printer:add``): the forms the agent drives
pass the hub's check, and the agent parses what passed; the rest is refused saying
what to use. Nothing here contacts any address."""

from __future__ import annotations

import pytest

from pm_agent.printer_uri import parse_printer_spec
from pm_core.protocol import ProtocolError
from pm_core.protocol.printer_addresses import check_printer_uri


@pytest.mark.parametrize(
    "uri",
    [
        "tcp://8.8.8.8:9100",  # checked only: nothing is contacted
        "tcp://printer.local",
        "tcp://[::1]:9100",
        "usb://04b8:0202?serial=A1",
        "serial:///dev/ttyUSB0?baudrate=19200",
        "serial://socket://127.0.0.1:4001",
        "file:///dev/usb/lp0",
        "tcp://10.0.0.5:9100?profile=TM-T88V",
    ],
)
def test_the_addresses_the_agent_drives_pass_the_check(uri: str) -> None:
    assert check_printer_uri(f" {uri} ") == uri
    parse_printer_spec(uri)  # and the agent parses what the hub let through


def test_a_refused_address_says_what_to_use() -> None:
    with pytest.raises(ProtocolError, match="use tcp://HOST:PORT"):
        check_printer_uri("http://127.0.0.1:9100")
