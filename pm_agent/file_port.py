"""A printer that is a file or device node (``file:///dev/usb/lp0``): bytes are
appended, there is no status (``status_supported: false``). Only for printers
nothing else works with; it blocks and runs on the printer's thread."""

from __future__ import annotations

import os

from pm_agent.escpos_status import StatusReport
from pm_agent.printer_port import BROKE_DURING, PrinterIOError, PrinterUnreachable


class FilePrinterPort:
    """A file or device node (``file:///dev/usb/lp0``): bytes appended, no status."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"file://{path}"

    def query_status(self) -> StatusReport | None:
        directory = os.path.dirname(self.path) or "."
        if not os.path.exists(self.path) and not os.access(directory, os.W_OK):
            raise PrinterUnreachable(f"{self.description}: cannot write there")
        return None

    def write(self, data: bytes, confirm_timeout: float = 30.0) -> StatusReport | None:
        opened = False
        try:
            with open(self.path, "ab") as fh:
                opened = True
                fh.write(data)
        except OSError as exc:
            if not opened:  # could not open it: nothing written
                raise PrinterUnreachable(f"{self.description}: {exc}") from exc
            raise PrinterIOError(
                f"{self.description}: {exc}", what=BROKE_DURING, sent_all=False
            ) from exc
        return None

    def close(self) -> None:
        return None
