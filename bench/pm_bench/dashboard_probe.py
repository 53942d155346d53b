"""How fast a status change reaches the dashboard, and how long a key press waits,
under load.

``python -m pm_bench.dashboard_probe [--printers 500] [--branches 0] [--rate 100]
[--duration 10] [--json FILE]``

With ``--branches 0`` it starts a real branch hub (``pm hub``) and a stand-in agent
(``--agent`` mode of this module) in their own processes; with ``--branches B`` a
company hub (``pm hub --company-mode``) and B branch links carrying the printers
(``--links`` mode, :mod:`pm_bench.dashboard_branches`). The dashboard runs headless
in this process, as an admin. Once it shows the N printers, RATE status changes a
second are made, spread over them. For every change the dashboard puts on screen the
benchmark takes ``time.time()`` minus the printer's ``status_changed_at`` (stamped
where the change was made, on the same machine): once when the row's cells are
updated, and once after the next screen refresh (painted).

Key presses are real: every ``KEY_INTERVAL`` seconds a down (then an up) arrow goes
to the printers table the way a terminal's keys arrive, and the wait is the time
until the table's handler has moved the cursor and the screen has been refreshed.
It also samples the event-loop lag (how late a 50 ms timer fires) and the
dashboard's CPU time.

``run_bench()`` returns the figures as a dict, for ``pm bench`` to print.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pm_core.protocol import AgentEvent, Namespace
from pm_core.protocol.records import PrinterRecord

STATUSES = ("online", "paper_low", "paper_out", "cover_open", "offline", "error")
#: Seconds between two key presses during the load.
KEY_INTERVAL = 0.1


class BenchError(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pm(*args: str, data_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pm", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"pm {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[0]


@contextmanager
def _process(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.PIPE)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the hub stopped: {log.read_text()[-1000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError("the hub did not start in 30 s")


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(v * 1000 for v in values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50": at(0.50),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


# -- the stand-in agent (its own process) ------------------------------------------------


async def fake_agent(
    url: str, key: str, printers: int, rate: float, duration: float
) -> dict[str, Any]:
    """Register ``printers`` printers, wait for a line on stdin, then change statuses."""
    import socketio

    ns = Namespace.AGENT
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        namespaces=[ns],
        auth={"license_key": key, "device_id": "bench-agent", "name": "bench agent"},
        transports=["websocket"],
        wait_timeout=10,
    )
    ids: list[int] = []
    gate = asyncio.Semaphore(32)

    async def register(i: int) -> None:
        async with gate:
            ack = await sio.call(
                AgentEvent.PRINTER_DISCOVERED,
                {
                    "name": f"P-{i + 1:03d}",
                    "address": f"tcp://10.{i // 250}.{i % 250}.9:9100",
                    "station": ("kitchen", "bar", "receipt", "grill")[i % 4],
                    "status": "online",
                    "flags": {},
                },
                namespace=ns,
                timeout=30,
            )
            ids.append(int(ack["printer_id"]))

    await asyncio.gather(*(register(i) for i in range(printers)))
    print(json.dumps({"registered": len(ids)}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    rng = random.Random(7)
    current = dict.fromkeys(ids, "online")
    interval = 1 / rate
    sent = 0
    started = time.monotonic()
    next_at = started
    while time.monotonic() - started < duration:
        printer_id = rng.choice(ids)
        status = rng.choice([s for s in STATUSES if s != current[printer_id]])
        current[printer_id] = status
        await sio.emit(
            AgentEvent.PRINTER_STATUS,
            {"printer_id": printer_id, "status": status, "flags": {}},
            namespace=ns,
        )
        sent += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.sleep(0.5)
    await sio.disconnect()
    return {"sent": sent, "seconds": round(time.monotonic() - started, 2)}


# -- the dashboard side (this process) -----------------------------------------------------


async def measure_dashboard(
    url: str,
    token: str,
    printers: int,
    duration: float,
    go: Callable[[], None],
    size: tuple[int, int],
    watch: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``watch`` raises :class:`BenchError` when a process the run needs has stopped
    (checked while the dashboard waits for the printers)."""
    from textual import events

    from pm_tui.app import PrinterMasterApp
    from pm_tui.data.state import Changes
    from pm_tui.widgets.tables import LiveTable

    app = PrinterMasterApp(hub_url=url, token=token, health_interval=0)
    link: Any = app.link
    forward = link.on_event
    received: dict[tuple[int, float], float] = {}
    arrived: list[float] = []
    inside: list[float] = []

    def on_event(event: str, data: Any) -> None:
        if measuring and isinstance(data, dict):
            if event == "printers:update" and isinstance(data.get("printers"), list):
                printers = data["printers"]
            else:
                printers = [data] if event == "printer:update" else []
            now = time.time()
            for printer in printers:
                at = printer.get("status_changed_at") if isinstance(printer, dict) else None
                if isinstance(at, int | float):
                    received[(printer["id"], float(at))] = now
                    arrived.append(now - at)
        forward(event, data)

    link.on_event = on_event
    updated: list[float] = []
    painted: list[float] = []
    lags: list[float] = []
    batches = 0
    measuring = False

    def painted_now(changed_at: list[float]) -> None:
        now = time.time()
        painted.extend(now - at for at in changed_at)

    def shown(changes: Changes) -> None:
        nonlocal batches
        if not measuring:
            return
        now = time.time()
        batches += 1
        changed_at = []
        for old, new in changes.printers.values():
            if old is not None and old.get("status") != new.get("status"):
                at = new.get("status_changed_at")
                if isinstance(at, int | float):
                    updated.append(now - at)
                    changed_at.append(float(at))
                    got = received.pop((new["id"], float(at)), None)
                    if got is not None:
                        inside.append(now - got)
        if changed_at:
            app.call_after_refresh(painted_now, changed_at)

    app.on_changes_shown = shown

    async def lag_probe() -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.05)
            lags.append(time.monotonic() - started - 0.05)

    #: When each key press not handled yet was sent (perf_counter), oldest first.
    key_sent: deque[float] = deque()
    key_handled: list[float] = []
    key_painted: list[float] = []
    keys_pressed = 0

    def key_painted_now(sent: float) -> None:
        key_painted.append(time.perf_counter() - sent)

    def watch_keys(table: LiveTable) -> None:
        """Note when the table's cursor handler has run for each key sent."""
        move = table._user_move

        def moved(index: int) -> None:
            move(index)
            if key_sent:
                sent = key_sent.popleft()
                key_handled.append(time.perf_counter() - sent)
                app.call_after_refresh(key_painted_now, sent)

        setattr(table, "_user_move", moved)  # noqa: B010 (an instance's method, wrapped)

    async def key_probe() -> None:
        nonlocal keys_pressed
        for key in itertools.cycle(("down", "up")):
            await asyncio.sleep(KEY_INTERVAL)
            key_sent.append(time.perf_counter())
            keys_pressed += 1
            # As a terminal's key arrives: a Key event in the app's queue, dispatched
            # to the focused table's bindings.
            app.post_message(events.Key(key, None))

    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 120
        while len(app.state.printers) < printers:
            watch()
            if app.link_state.state == "refused":
                raise BenchError(f"the hub refused the dashboard: {app.link_state.message}")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the dashboard shows {len(app.state.printers)} printers of {printers} "
                    f"after 120 s (its link: {app.link_state.state}, {app.link_state.message})"
                )
            await pilot.pause(0.1)
        table = app.screen.query_one("#printers", LiveTable)
        table.focus()
        await pilot.pause(0.5)
        watch_keys(table)
        rebuilds_before, writes_before = table.rebuilds, table.cell_writes
        received_before = app.buffer.received
        probe = asyncio.create_task(lag_probe())
        keys = asyncio.create_task(key_probe())
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        wall_before = time.monotonic()
        measuring = True
        go()
        await asyncio.sleep(duration + 1.0)
        measuring = False
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - wall_before
        probe.cancel()
        keys.cancel()
        await pilot.pause(0.5)
        mismatched = [
            pid
            for pid in table.row_ids
            if table.cell_text(pid, "status")
            not in _words(app.state.printers[pid].get("status"), app.state.printers[pid])
        ]
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )
        return {
            "rows_updated": len(updated),
            "hub_events_received": app.buffer.received - received_before,
            "ui_batches": batches,
            "cell_writes": table.cell_writes - writes_before,
            "table_rebuilds_during_load": table.rebuilds - rebuilds_before,
            "rows_wrong_at_end": len(mismatched),
            "latency_received_ms": _percentiles(arrived),
            "latency_inside_dashboard_ms": _percentiles(inside),
            "latency_updated_ms": _percentiles(updated),
            "latency_painted_ms": _percentiles(painted),
            "event_loop_lag_ms": _percentiles(lags),
            "keys_pressed": keys_pressed,
            "key_handled_ms": _percentiles(key_handled),
            "key_painted_ms": _percentiles(key_painted),
            "dashboard_cpu_percent": round(100 * cpu / wall, 1),
        }


def _words(status: Any, printer: PrinterRecord) -> set[str]:
    from pm_tui.formatting import status_text

    return {status_text(str(status), paused=bool(printer.get("paused"))).plain}


def _run_measured(
    url: str,
    token: str,
    printers: int,
    duration: float,
    go: Callable[[], None],
    size: tuple[int, int],
    watch: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    profile = os.environ.get("PM_TUI_BENCH_PROFILE")
    coro = measure_dashboard(url, token, printers, duration, go, size, watch)
    if not profile:
        return asyncio.run(coro)
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, coro)
    finally:
        profiler.dump_stats(profile)


def run_bench(
    *,
    printers: int = 500,
    rate: float = 100.0,
    duration: float = 10.0,
    branches: int = 0,
    size: tuple[int, int] = (120, 40),
) -> dict[str, Any]:
    """The hub and what feeds it in child processes, the dashboard here; returns the
    figures. ``branches`` > 0: a company hub and that many branch links sharing the
    printers (``printers // branches`` each)."""
    with tempfile.TemporaryDirectory(prefix="pm-tui-bench-") as tmp:
        data = Path(tmp)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        hub_cmd = [sys.executable, "-m", "pm", "hub", "--data-dir", str(data)]
        hub_cmd += ["--port", str(port), "--no-mdns", "--log-level", "WARNING"]
        if branches > 0:
            per_branch = max(1, printers // branches)
            printers = per_branch * branches
            hub_cmd.append("--company-mode")
        else:
            key = _pm("license", "create", data_dir=data)
            token = _pm("token", "create", "--role", "admin", data_dir=data)
        with _process(hub_cmd, data / "hub.log") as hub:
            _wait_healthy(url, hub, data / "hub.log")
            feeder_cmd = [sys.executable, "-m", "pm_bench.dashboard_probe", "--hub", url]
            feeder_cmd += ["--printers", str(printers), "--rate", str(rate)]
            feeder_cmd += ["--duration", str(duration)]
            if branches > 0:
                from pm_bench.dashboard_branches import admin_token, branch_tokens

                tokens = data / "branch-tokens.json"
                tokens.write_text(json.dumps(branch_tokens(data, branches)))
                token = admin_token(data)
                feeder_cmd += ["--links", "--tokens", str(tokens), "--branches", str(branches)]
            else:
                feeder_cmd += ["--agent", "--license", key]
            with _process(feeder_cmd, data / "feeder.log") as feeder:

                def go() -> None:
                    assert feeder.stdin is not None
                    feeder.stdin.write(b"go\n")
                    feeder.stdin.flush()

                def watch() -> None:
                    # A hub that lost its port to another process, links refused, a
                    # crash: say which and why now, not after the 120 s wait.
                    for name, proc, log in (
                        ("the hub", hub, data / "hub.log"),
                        ("the branch links" if branches else "the stand-in agent",
                         feeder, data / "feeder.log"),
                    ):  # fmt: skip
                        if proc.poll() is not None:
                            tail = log.read_text(errors="replace")[-1000:]
                            raise BenchError(f"{name} stopped (exit {proc.returncode}): {tail}")

                figures = _run_measured(url, token, printers, duration, go, size, watch)
                try:
                    feeder.wait(timeout=duration + 60)
                except subprocess.TimeoutExpired:
                    raise BenchError("the branch links or stand-in agent did not finish") from None
                lines = (data / "feeder.log").read_text().strip().splitlines()
                sent = json.loads(lines[-1]).get("sent") if lines else None
            hub.poll()
            if hub.returncode is not None:
                raise BenchError(f"the hub stopped: {(data / 'hub.log').read_text()[-1000:]}")
    return {
        "printers": printers,
        "branches": branches,
        "hub": "company" if branches > 0 else "branch",
        "rate_per_s": rate,
        "duration_s": duration,
        "terminal": f"{size[0]}x{size[1]}",
        "changes_sent": sent,
        **figures,
    }


def report(figures: dict[str, Any]) -> str:
    def row(label: str, stats: dict[str, Any]) -> str:
        return (
            f"  {label:<34} p50 {stats['p50']:>7} ms   p95 {stats['p95']:>7} ms   "
            f"p99 {stats['p99']:>7} ms   max {stats['max']:>7} ms"
        )

    lines = [
        f"dashboard under load: {figures['hub']} hub, {figures['branches']} branches, "
        f"{figures['printers']} printers, "
        f"{figures['rate_per_s']:g} status changes/s for {figures['duration_s']:g} s "
        f"(terminal {figures['terminal']})",
        f"  changes made                       {figures['changes_sent']}",
        f"  rows updated on screen             {figures['rows_updated']}",
        f"  UI batches (coalesced)             {figures['ui_batches']}",
        f"  table rebuilds during the load     {figures['table_rebuilds_during_load']}",
        f"  rows wrong at the end              {figures['rows_wrong_at_end']}",
        row("hub change -> event received", figures["latency_received_ms"]),
        row("event received -> row updated", figures["latency_inside_dashboard_ms"]),
        row("hub change -> row updated", figures["latency_updated_ms"]),
        row("hub change -> screen refreshed", figures["latency_painted_ms"]),
        row("event-loop lag", figures["event_loop_lag_ms"]),
        row("key press -> handled", figures["key_handled_ms"]),
        row("key press -> screen refreshed", figures["key_painted_ms"]),
        f"  keys pressed                       {figures['keys_pressed']}",
        f"  dashboard CPU                      {figures['dashboard_cpu_percent']}% of one core",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pm_bench.dashboard_probe", description=__doc__)
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0, help="status changes per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument(
        "--branches",
        type=int,
        default=0,
        help="0: a branch hub and one agent; B: a company hub and B branch links",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--links", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hub", help=argparse.SUPPRESS)
    parser.add_argument("--license", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent or args.links:
        if args.links:
            from pm_bench.dashboard_branches import branch_links

            per_branch = max(1, args.printers // max(1, args.branches))
            tokens = json.loads(args.tokens.read_text())
            run = branch_links(args.hub, tokens, per_branch, args.rate, args.duration)
        else:
            run = fake_agent(args.hub, args.license, args.printers, args.rate, args.duration)
        print(json.dumps(asyncio.run(run)), flush=True)
        return 0
    if args.printers < 1 or args.rate <= 0 or args.branches < 0:
        parser.error("--printers and --rate must be positive, --branches 0 or more")
    os.environ.setdefault("PM_LOG_LEVEL", "WARNING")
    try:
        figures = run_bench(
            printers=args.printers,
            rate=args.rate,
            duration=args.duration,
            branches=args.branches,
        )
    except BenchError as exc:
        print(f"pm_bench.dashboard_probe: {exc}", file=sys.stderr)
        return 2
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
