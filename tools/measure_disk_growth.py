"""How much a branch hub's file grows per day, with and without a logo on every ticket,
and where it levels off under the default retention (docs/performance.md, "Disk").

Simulates days of a busy branch on a real hub database through the store's own
functions: N jobs a day, each queued, dispatched, printing and completed (four events),
a few printer status changes, an agent's pings (every 15 s) and 5-minute reports,
health downsampling and the hub's pruning once a day (``pm_hub.retention``), with the
clock moved on a day at a time. Prints the file size each ``--every`` days.

    .venv/bin/python tools/measure_disk_growth.py --days 60 --jobs-per-day 1000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from pm_core.database import Database
from pm_core.sql import Session
from pm_hub.config import HubSettings
from pm_hub.retention import RetentionKeeper
from pm_hub.store import health as health_store
from pm_hub.store import jobs as job_store
from pm_hub.store import prepare_hub_db, tenants

DAY = 86400.0


def logo_png() -> str:
    """A 384 x 120 dot logo (a 80 mm printer's full width), dithered to 1 bit the way a
    shop's logo is prepared for a thermal printer; base64 as documents carry it."""
    image = Image.new("L", (384, 120), 255)
    draw = ImageDraw.Draw(image)
    for r in range(60, 0, -2):
        draw.ellipse((40 - r // 2, 60 - r, 40 + r * 2, 60 + r), fill=int(255 * r / 60))
    draw.rectangle((150, 30, 370, 90), outline=0, width=4)
    draw.text((165, 45), "HARBOUR ST KITCHEN", fill=0)
    buf = io.BytesIO()
    image.convert("1").save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def ticket(n: int, logo: str | None) -> dict[str, Any]:
    """A kitchen ticket: a header, eight lines, a QR code, a cut (about 700 bytes)."""
    blocks: list[dict[str, Any]] = []
    if logo:
        blocks.append({"type": "image", "png_base64": logo, "align": "center"})
    blocks += [
        {"type": "text", "text": f"Table {n % 40 + 1}  order {n}", "bold": True, "height": 2},
        {"type": "line"},
        *(
            {"type": "text", "text": f"{i + 1}x Dish number {(n + i) % 90:02d}  no onions"}
            for i in range(8)
        ),
        {"type": "line"},
        {"type": "qr", "data": f"https://pos.example/o/{n:08d}"},
        {"type": "feed", "lines": 3},
        {"type": "cut"},
    ]
    return {"blocks": blocks}


def one_day(d: Session, *, day_start: float, jobs: int, first: int, logo: str | None) -> None:
    company_id, branch_id = tenants.ensure_default_tenant(d)
    printer_id = d.execute("SELECT id FROM printers ORDER BY id LIMIT 1").fetchone()[0]
    agent_id = d.execute("SELECT id FROM agents ORDER BY id LIMIT 1").fetchone()[0]
    for i in range(jobs):
        at = day_start + 8 * 3600 + i * (14 * 3600 / jobs)  # service hours
        row, _ = job_store.insert_job(
            d, company_id=company_id, branch_id=branch_id, printer_id=printer_id,
            station="kitchen", document=ticket(first + i, logo), copies=1,
            idempotency_key=f"pos-{first + i}", submitted_by="pos", expires_at=at + 600,
        )  # fmt: skip
        for status in ("dispatched", "printing", "completed"):
            job_store.transition(d, row["id"], status, actor="agent:1")
        d.execute(
            "UPDATE jobs SET created_at = ?, updated_at = ?, finished_at = ? WHERE id = ?",
            (at, at + 2, at + 2, row["id"]),
        )
        d.execute("UPDATE job_events SET at = ? WHERE job_id = ?", (at, row["id"]))
    d.conn.executemany(
        "INSERT INTO printer_events (printer_id, at, status, flags) VALUES (?, ?, ?, '{}')",
        [(printer_id, day_start + k * 3600, ("paper_low", "online")[k % 2]) for k in range(20)],
    )
    pings = [(agent_id, day_start + k * 15, 1.5 + (k % 7) / 10, 0.0) for k in range(5760)]
    health_store.insert_samples(d, pings)
    reports = json.dumps({"uptime_s": 1, "spool_depth": 0, "latency_avg_ms": 1.6})
    health_store.insert_reports(d, [(agent_id, day_start + k * 300, reports) for k in range(288)])


def seed(d: Session, now: float) -> None:
    company_id, branch_id = tenants.ensure_default_tenant(d)
    d.execute(
        "INSERT INTO agents (device_id, company_id, branch_id, first_seen, last_seen) "
        "VALUES ('box', ?, ?, ?, ?)",
        (company_id, branch_id, now, now),
    )
    d.execute(
        "INSERT INTO printers (company_id, branch_id, identity, name, address, station, "
        "created_at, updated_at) VALUES (?, ?, 'tcp://k', 'Kitchen-1', 'tcp://k', 'kitchen', "
        "?, ?)",
        (company_id, branch_id, now, now),
    )


async def simulate(
    days: int, jobs: int, logo: str | None, every: int, retention: dict[str, float]
) -> list[tuple[int, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = HubSettings(data_dir=Path(tmp), sqlite_synchronous="OFF", **retention)
        db = Database(settings.db_path, synchronous="OFF")
        db.start(prepare_hub_db)
        keeper = RetentionKeeper(settings, db=db)
        start = time.time() - days * DAY
        await db.write(lambda d: seed(d, start))
        sizes = []
        try:
            for day in range(days):
                day_start = start + day * DAY

                def write(d: Session, day_start: float = day_start, day: int = day) -> None:
                    one_day(d, day_start=day_start, jobs=jobs, first=day * jobs, logo=logo)

                await db.write(write)
                end = day_start + DAY
                await db.write(
                    lambda d, end=end: health_store.downsample(
                        d, now=end, raw_window=settings.health_raw_window_s,
                        minute_window=settings.health_minute_window_s,
                        retention=settings.health_retention_s,
                    )
                )  # fmt: skip
                await keeper.run_once(now=end)
                side = sqlite3.connect(settings.db_path)  # the WAL into the file, to measure
                side.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                side.close()
                if (day + 1) % every == 0 or day + 1 == days:
                    sizes.append((day + 1, settings.db_path.stat().st_size))
        finally:
            db.close()
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--jobs-per-day", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="print the size every N days")
    parser.add_argument(
        "--document-days", type=float, help="job_document_retention_s in days (default 30)"
    )
    parser.add_argument("--job-days", type=float, help="job_retention_s in days (default 365)")
    args = parser.parse_args()
    retention = {}
    if args.document_days:
        retention["job_document_retention_s"] = args.document_days * DAY
    if args.job_days:
        retention["job_retention_s"] = args.job_days * DAY
    logo = logo_png()
    print(f"logo: 384x120 dots, {math.ceil(len(logo) * 3 / 4)} bytes of PNG")
    for name, with_logo in (("without logo", None), ("with logo", logo)):
        started = time.perf_counter()
        sizes = asyncio.run(
            simulate(args.days, args.jobs_per_day, with_logo, args.every, retention)
        )
        print(f"\n{args.jobs_per_day} jobs/day {name} ({time.perf_counter() - started:.0f} s)")
        previous = (0, 0)
        for day, size in sizes:
            per_day = (size - previous[1]) / max(1, day - previous[0])
            print(f"  day {day:4d}: {size / 2**20:8.1f} MiB  ({per_day / 2**20:+.2f} MiB/day)")
            previous = (day, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
