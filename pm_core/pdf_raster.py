"""PDF pages drawn by pdfium in a child process, so a PDF crafted to keep pdfium busy
(or to eat memory) costs a child, not the hub or the agent.

:func:`render_pdf_pages` hands the PDF to one long-lived child (``python -m
pm_core.pdf_raster``, started on first use: a fresh interpreter that shares none of
the parent's threads, locks or ``__main__``) and waits at most
:data:`PDF_RENDER_LIMIT_S` for its pages. A child that takes longer is killed, and the
document fails with :class:`PdfRenderTimeout` ("PDF took too long to render"); the
next PDF starts a new child. The child's address space is capped
(:data:`PDF_CHILD_MEMORY`, ``RLIMIT_AS``): a PDF that needs more fails there, alone.

Requests and answers are pickled frames (a 4-byte length, then the pickle) on the
child's stdin and stdout; the child points its own stdout at stderr, so nothing pdfium
prints can break a frame. One PDF at a time goes to the child, under
:func:`~pm_core.protocol.documents.pdfium_turn` (the same turn the in-process page
size check takes), so the wait for a turn stays bounded as before. Everything
blocks: call it off the event loop.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from PIL import Image

from pm_core.protocol.documents import pdfium_turn

log = logging.getLogger(__name__)

#: The longest one PDF may take to draw (the child's start included, about a second).
PDF_RENDER_LIMIT_S = 20.0
#: The child's address-space limit: far above what the page and pixel limits let a
#: PDF draw, far below what would hurt the box.
PDF_CHILD_MEMORY = 1024 * 1024 * 1024


class PdfRenderTimeout(TimeoutError):
    """The PDF took longer than :data:`PDF_RENDER_LIMIT_S`; its child was killed."""


class PdfRenderFailed(RuntimeError):
    """The child drawing the PDF died (out of memory, a crash in pdfium)."""


#: A drawn page on the wire: mode, size, pixels.
_Page = tuple[str, tuple[int, int], bytes]


def _draw(data: bytes, dots: int) -> list[_Page]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        pages: list[_Page] = []
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                width, _ = page.get_size()
                bitmap = page.render(scale=dots / max(1.0, width), grayscale=True)
                image = bitmap.to_pil().convert("L")
                pages.append((image.mode, image.size, image.tobytes()))
            finally:
                page.close()
        return pages
    finally:
        pdf.close()


_HEADER = struct.Struct(">I")


def _write_frame(out: IO[bytes], value: object) -> None:
    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(blob)) + blob)
    out.flush()


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    """``count`` bytes from ``fd``; TimeoutError past ``deadline``, EOFError when
    the other end closed."""
    data = bytearray()
    while len(data) < count:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _read_frame(fd: int, deadline: float | None) -> Any:
    (length,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exactly(fd, length, deadline))


def _serve() -> None:
    """The child: draw each ``(pdf, dots)`` it is sent; answer ``("ok", pages)`` or
    ``("error", message)``."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (PDF_CHILD_MEMORY, PDF_CHILD_MEMORY))
    except (ImportError, ValueError, OSError):  # not on this platform: no cap
        pass
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into a frame
    requests = sys.stdin.buffer.fileno()
    while True:
        try:
            data, dots = _read_frame(requests, None)
        except EOFError:
            return  # the parent is gone
        try:
            answer: tuple[str, Any] = ("ok", _draw(data, dots))
        except MemoryError:
            answer = ("error", "the PDF needs too much memory to render")
        except Exception as exc:
            answer = ("error", f"the PDF could not be rendered: {exc}")
        _write_frame(answers, answer)


class _Child:
    """The child process, its stdin (requests) and stdout (answers)."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)  # where pm_core is
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pm_core.pdf_raster"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
            close_fds=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, data: bytes, dots: int, limit: float) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        _write_frame(self.process.stdin, (data, dots))
        return _read_frame(self.process.stdout.fileno(), time.monotonic() + limit)

    def kill(self) -> None:
        self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            log.warning("the PDF renderer (pid %s) did not stop", self.process.pid)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


_child: _Child | None = None
_child_lock = threading.Lock()


def _take_child() -> _Child:
    global _child
    with _child_lock:
        if _child is None or not _child.alive():
            _child = _Child()
        return _child


def _drop_child(child: _Child) -> None:
    global _child
    with _child_lock:
        if _child is child:
            _child = None
    child.kill()


def render_pdf_pages(
    data: bytes, dots: int, *, time_limit: float | None = None
) -> list[Image.Image]:
    """Each page of a PDF drawn ``dots`` wide, in grey (``L``), by the child.
    :class:`PdfRenderTimeout` after ``time_limit`` (default
    :data:`PDF_RENDER_LIMIT_S`), :class:`PdfRenderFailed` when the child dies,
    ValueError when pdfium cannot draw it,
    :class:`~pm_core.protocol.documents.PdfReaderBusy` when another PDF holds the
    turn too long."""
    limit = PDF_RENDER_LIMIT_S if time_limit is None else time_limit
    with pdfium_turn():
        child = _take_child()
        try:
            status, payload = child.ask(data, dots, limit)
        except TimeoutError:
            log.warning("a PDF took more than %.0f s to render; its renderer was stopped", limit)
            _drop_child(child)
            raise PdfRenderTimeout("PDF took too long to render") from None
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            _drop_child(child)
            raise PdfRenderFailed(
                "the PDF renderer stopped while drawing it (too much memory?)"
            ) from exc
    if status != "ok":
        raise ValueError(str(payload))
    return [Image.frombytes(mode, size, pixels) for mode, size, pixels in payload]


if __name__ == "__main__":
    _serve()
