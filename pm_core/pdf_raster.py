"""PDFs opened by pdfium in a child process, so a PDF crafted to keep pdfium busy (or
to eat memory, or to crash it) costs a child, not the hub or the agent.

Both uses go to one long-lived child (``python -m pm_core.pdf_raster``, started on
first use: a fresh interpreter that shares none of the parent's threads, locks or
``__main__``): :func:`pdf_page_sizes`, the hub's check of a submitted PDF (how many
pages, how big), and :func:`render_pdf_pages`, the agent's drawing of its pages. A
child that takes longer than the limit (:data:`PDF_RENDER_LIMIT_S`,
:data:`PDF_CHECK_LIMIT_S`) is killed; drawing fails with :class:`PdfRenderTimeout`
("PDF took too long to render"), the check says the PDF cannot be read; the next PDF
starts a new child. The child's address space is capped (:data:`PDF_CHILD_MEMORY`,
``RLIMIT_AS``): a PDF that needs more fails there, alone. pdfium itself is never
loaded by the parent.

Requests and answers are length-prefixed binary frames on the child's stdin and
stdout (no pickle: the child has read hostile bytes, so what it says back is parsed
as plain numbers and pixels, never as objects); the child points its own stdout at
stderr, so nothing pdfium prints can break a frame. One PDF at a time goes to the
child, under :func:`pdfium_turn`, whose wait is bounded (:data:`PDFIUM_WAIT_S`).
Everything blocks: call it off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from PIL import Image

log = logging.getLogger(__name__)

#: The longest one PDF may take to draw (the child's start included, about a second).
PDF_RENDER_LIMIT_S = 20.0
#: The longest the check of a submitted PDF (its pages and their sizes) may take.
PDF_CHECK_LIMIT_S = 10.0
#: The child's address-space limit: far above what the page and pixel limits let a
#: PDF draw, far below what would hurt the box.
PDF_CHILD_MEMORY = 1024 * 1024 * 1024
#: The most pages the child measures: past this a PDF is refused anyway (the
#: document rules allow 10), so it only says how many there are.
MEASURED_PAGES = 64
#: The largest answer the parent reads (pages of at most 4096 x 16384 grey pixels,
#: 10 of them, are far below): a child that claims more is not believed.
MAX_ANSWER_BYTES = 256 * 1024 * 1024

#: Held around every use of the child: one PDF at a time (a hub checks PDFs off its
#: event loop while a CloudPRNT ticket is drawn; each printer of an agent draws on its
#: own thread).
PDFIUM_LOCK = threading.Lock()
#: The longest a thread waits for its turn: a PDF that takes the child that long (a
#: hostile one) makes the next PDFs fail with a reason instead of waiting with it.
PDFIUM_WAIT_S = 30.0


class PdfReaderBusy(TimeoutError):
    """The PDF reader was busy with another PDF for :data:`PDFIUM_WAIT_S`."""


class PdfRenderTimeout(TimeoutError):
    """The PDF took longer than its limit; its child was killed."""


class PdfRenderFailed(RuntimeError):
    """The child reading the PDF died (out of memory, a crash in pdfium)."""


@contextlib.contextmanager
def pdfium_turn() -> Iterator[None]:
    """Hold :data:`PDFIUM_LOCK`; :class:`PdfReaderBusy` after :data:`PDFIUM_WAIT_S`."""
    if not PDFIUM_LOCK.acquire(timeout=PDFIUM_WAIT_S):
        raise PdfReaderBusy(
            f"the PDF reader was busy with another PDF for {PDFIUM_WAIT_S:.0f} s; "
            "send the document again"
        )
    try:
        yield
    finally:
        PDFIUM_LOCK.release()


# -- frames: a 4-byte length, then the bytes ---------------------------------------------

_LENGTH = struct.Struct(">I")
#: A request: what (``R`` render, ``S`` page sizes), the width in dots, then the PDF.
_REQUEST = struct.Struct(">cI")
#: In an answer: a count, a page's size in pixels, a page's size in points.
_COUNT = struct.Struct(">I")
_PIXELS = struct.Struct(">II")
_POINTS = struct.Struct(">dd")
RENDER, SIZES = b"R", b"S"
OK, ERROR = b"K", b"E"


def _write_frame(out: IO[bytes], blob: bytes) -> None:
    out.write(_LENGTH.pack(len(blob)) + blob)
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
        chunk = os.read(fd, min(count - len(data), 1 << 20))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _read_frame(fd: int, deadline: float | None, limit: int) -> bytes:
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    if length > limit:
        raise ValueError(f"a frame of {length} bytes (at most {limit})")
    return _read_exactly(fd, length, deadline)


# -- the child ---------------------------------------------------------------------------


def _draw(data: bytes, dots: int) -> bytes:
    """Every page ``dots`` wide in grey: a count, then each page's width, height and
    pixels (one byte each)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        out = [_COUNT.pack(len(pdf))]
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                width, _ = page.get_size()
                bitmap = page.render(scale=dots / max(1.0, width), grayscale=True)
                image = bitmap.to_pil().convert("L")
                out += [_PIXELS.pack(*image.size), image.tobytes()]
            finally:
                page.close()
        return b"".join(out)
    finally:
        pdf.close()


def _measure(data: bytes) -> bytes:
    """The page count, then the size in points of each page (of the first
    :data:`MEASURED_PAGES`)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        pages = len(pdf)
        sizes = [pdf.get_page_size(i) for i in range(min(pages, MEASURED_PAGES))]
        return _COUNT.pack(pages) + b"".join(_POINTS.pack(w, h) for w, h in sizes)
    finally:
        pdf.close()


def _serve() -> None:
    """The child: answer each request ``OK`` + its result or ``ERROR`` + why."""
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
            request = _read_frame(requests, None, MAX_ANSWER_BYTES)
        except EOFError:
            return  # the parent is gone
        what, dots = _REQUEST.unpack_from(request)
        data = request[_REQUEST.size :]
        try:
            answer = OK + (_draw(data, dots) if what == RENDER else _measure(data))
        except MemoryError:
            answer = ERROR + b"the PDF needs too much memory to open"
        except Exception as exc:
            answer = ERROR + f"the PDF could not be read: {exc}".encode()[:500]
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

    def ask(self, what: bytes, data: bytes, dots: int, limit: float) -> bytes:
        """Send one request; its answer (``OK``/``ERROR`` and the rest) within ``limit``."""
        assert self.process.stdin is not None and self.process.stdout is not None
        _write_frame(self.process.stdin, _REQUEST.pack(what, dots) + data)
        return _read_frame(self.process.stdout.fileno(), time.monotonic() + limit, MAX_ANSWER_BYTES)

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


def _ask(what: bytes, data: bytes, dots: int, limit: float) -> tuple[bool, bytes]:
    """One request to the child, in turn: (ok, what it answered). A child past
    ``limit`` is killed (:class:`PdfRenderTimeout`); one that died or answered
    nonsense is dropped (:class:`PdfRenderFailed`)."""
    with pdfium_turn():
        child = _take_child()
        try:
            answer = child.ask(what, data, dots, limit)
        except TimeoutError:
            log.warning("a PDF took more than %.0f s to read; its reader was stopped", limit)
            _drop_child(child)
            raise PdfRenderTimeout("PDF took too long to render") from None
        except (EOFError, OSError, ValueError) as exc:
            _drop_child(child)
            raise PdfRenderFailed(
                "the PDF reader stopped while reading it (too much memory?)"
            ) from exc
    return answer[:1] == OK, answer[1:]


def _pages(blob: bytes) -> list[Image.Image]:
    """The pages of a render answer; ValueError when it does not add up."""
    (count,) = _COUNT.unpack_from(blob)
    offset, pages = _COUNT.size, []
    for _ in range(count):
        width, height = _PIXELS.unpack_from(blob, offset)
        offset += _PIXELS.size
        pixels = blob[offset : offset + width * height]
        if len(pixels) != width * height:
            raise ValueError("a page's pixels are cut short")
        pages.append(Image.frombytes("L", (width, height), pixels))
        offset += width * height
    if offset != len(blob):
        raise ValueError("bytes after the last page")
    return pages


def render_pdf_pages(
    data: bytes, dots: int, *, time_limit: float | None = None
) -> list[Image.Image]:
    """Each page of a PDF drawn ``dots`` wide, in grey (``L``), by the child.
    :class:`PdfRenderTimeout` after ``time_limit`` (default
    :data:`PDF_RENDER_LIMIT_S`), :class:`PdfRenderFailed` when the child dies,
    ValueError when pdfium cannot draw it, :class:`PdfReaderBusy` when another PDF
    holds the turn too long."""
    limit = PDF_RENDER_LIMIT_S if time_limit is None else time_limit
    ok, blob = _ask(RENDER, data, dots, limit)
    if not ok:
        raise ValueError(blob.decode(errors="replace"))
    try:
        return _pages(blob)
    except (struct.error, ValueError) as exc:
        raise PdfRenderFailed(f"the PDF reader's answer was not readable: {exc}") from None


def pdf_page_sizes(data: bytes) -> list[tuple[float, float]] | None:
    """The size in points of each page of a PDF, or None when it cannot be opened
    (damaged, password-protected, too slow or too big to open). Past
    :data:`MEASURED_PAGES` pages, only their number counts: each is ``(1, 1)``.
    :class:`PdfReaderBusy` when another PDF holds the turn too long."""
    try:
        ok, blob = _ask(SIZES, data, 0, PDF_CHECK_LIMIT_S)
    except (PdfRenderTimeout, PdfRenderFailed) as exc:
        log.warning("a submitted PDF could not be opened: %s", exc)
        return None
    if not ok:
        return None
    try:
        (count,) = _COUNT.unpack_from(blob)
        sizes = [
            _POINTS.unpack_from(blob, _COUNT.size + i * _POINTS.size)
            for i in range(min(count, MEASURED_PAGES))
        ]
    except struct.error:
        return None
    return [(float(w), float(h)) for w, h in sizes] + [(1.0, 1.0)] * (count - len(sizes))


if __name__ == "__main__":
    _serve()
