"""How long the agent takes to lay out a 40-line receipt whose text is drawn (raster):
Arabic and Chinese, on the default profile and a TM-T88V, with ``text_mode`` auto and
raster; and the whole ticket as one image (what a raster-only printer gets).

    .venv/bin/python tools/render_timing.py [--runs N]

Prints, in milliseconds, the first run (fonts found and opened), then the median and
slowest of the others in CPU time of the rendering thread (what the work costs; wall
time on a busy machine adds other processes' turns), and the median wall time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from pm_agent.render import render_document
from pm_core.ticket_image import ticket_image

LINES = {
    "arabic": ["شاورما دجاج كبيرة", "حمص بالطحينة", "فلافل مع خبز", "عصير برتقال طازج"],
    "chinese": ["宫保鸡丁", "麻婆豆腐 米饭", "酸辣汤 小份", "青岛啤酒 两瓶"],
}


def receipt(script: str) -> dict[str, Any]:
    lines = LINES[script]
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": "TABLE 12", "bold": True, "align": "center", "height": 2}
    ]
    for i in range(40):
        blocks.append({"type": "text", "text": f"{i % 3 + 1}x {lines[i % len(lines)]}  {9 + i}.50"})
    blocks += [{"type": "line"}, {"type": "qr", "data": "https://example.com/r/12"}]
    return {"blocks": blocks}


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, float, float]:
    started = time.thread_time()
    fn()
    first = time.thread_time() - started
    cpu, wall = [], []
    for _ in range(runs):
        started, started_wall = time.thread_time(), time.perf_counter()
        fn()
        cpu.append(time.thread_time() - started)
        wall.append(time.perf_counter() - started_wall)
    ms = 1000
    return first * ms, statistics.median(cpu) * ms, max(cpu) * ms, statistics.median(wall) * ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"{'case':<44} {'first':>8} {'median':>8} {'max':>8} {'wall':>8}  (ms)")
    for script in LINES:
        doc = receipt(script)
        cases: list[tuple[str, Callable[[], object]]] = [
            (f"{script}: ESC/POS default, auto", lambda d=doc: render_document(d)),
            (
                f"{script}: ESC/POS TM-T88V, raster",
                lambda d=doc: render_document(d, profile="TM-T88V", text_mode="raster"),
            ),
            (f"{script}: whole ticket image, 576 dots", lambda d=doc: ticket_image(d, dots=576)),
        ]
        for name, fn in cases:
            first, median, worst, wall = timed(fn, args.runs)
            print(f"{name:<44} {first:8.1f} {median:8.1f} {worst:8.1f} {wall:8.1f}")


if __name__ == "__main__":
    main()
