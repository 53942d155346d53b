"""Star's status on the agent's side: ``ESC ACK SOH`` asks a Star printer for its
Automatic Status Back (ASB) bytes, whose meaning is in
:mod:`pm_core.protocol.star_asb`; here they become the
:class:`~pm_agent.escpos_status.StatusReport` the ESC/POS path makes, so everything
after the port is the same for both kinds of printer."""

from __future__ import annotations

from pm_agent.escpos_status import StatusReport
from pm_core.protocol import star_asb
from pm_core.protocol.star_asb import asb_length, encode_asb, encode_asb_hex

#: ``ESC ACK SOH``: "send the automatic status now".
STATUS_REQUEST = b"\x1b\x06\x01"

__all__ = ["STATUS_REQUEST", "asb_length", "decode_asb", "decode_asb_hex", "encode_asb",
           "encode_asb_hex"]  # fmt: skip


def decode_asb(answer: bytes) -> StatusReport:
    """The status in an ASB answer; ValueError for bytes that are not one."""
    status, flags = star_asb.decode_asb(answer)
    return StatusReport(status=status, flags=flags)


def decode_asb_hex(text: str) -> StatusReport:
    """The ASB bytes as hex (CloudPRNT's ``status``); ValueError for anything else."""
    status, flags = star_asb.decode_asb_hex(text)
    return StatusReport(status=status, flags=flags)
