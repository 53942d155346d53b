"""``pm tui``: the terminal dashboard (Textual)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from pm_hub.protocol import HubEvent as Ev
from pm_hub.protocol import OpsEvent
from pm_tui.formatting import STATUS_ORDER, ago, paper_text, status_text
from pm_tui.hub_link import HubLink, LinkState
from pm_tui.messages import HubEvent, LinkChanged

log = logging.getLogger(__name__)

COLUMNS = (
    ("status", "STATUS", 11),
    ("name", "NAME", 14),
    ("station", "STATION", 9),
    ("address", "ADDRESS", 22),
    ("paper", "PAPER", 5),
    ("queue", "QUEUE", 5),
    ("seen", "SEEN", 5),
)


class PrinterMasterApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "PrinterMaster"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "test_print", "test print"),
        Binding("r", "refresh", "refresh"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, *, hub_url: str, token: str) -> None:
        super().__init__()
        self.hub_url = hub_url
        self.link = HubLink(hub_url, token, on_event=self._hub_event, on_state=self._link_state)
        self.printers: dict[int, dict[str, Any]] = {}
        self.branch_name = ""
        self.link_state = LinkState("connecting")
        self.latency_ms: float | None = None

    def _hub_event(self, event: str, data: Any) -> None:
        self.post_message(HubEvent(event, data))

    def _link_state(self, state: LinkState) -> None:
        self.post_message(LinkChanged(state))

    def compose(self) -> ComposeResult:
        yield Static(id="topbar")
        yield Static(id="banner")
        table: DataTable[Any] = DataTable(id="printers", cursor_type="row", zebra_stripes=False)
        yield table
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#printers", DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        self.run_link()
        self.set_interval(1.0, self._tick)
        self.set_interval(5.0, self._measure_latency)
        self._render_topbar()

    @work(exclusive=True, group="link")
    async def run_link(self) -> None:
        await self.link.run()

    async def on_unmount(self) -> None:
        await self.link.close()

    # -- hub events ------------------------------------------------------------------

    async def on_link_changed(self, message: LinkChanged) -> None:
        self.link_state = message.state
        banner = self.query_one("#banner", Static)
        if message.state.state == "connected":
            banner.remove_class("visible")
            await self.load_everything()
        elif message.state.state == "refused":
            banner.update(
                f"{message.state.message}. Make a new one with: pm token create --role admin"
            )
            banner.add_class("visible")
        elif message.state.state == "reconnecting":
            banner.update(f"{message.state.message} (showing the last known state)")
            banner.add_class("visible")
        self._render_topbar()

    async def load_everything(self) -> None:
        who = await self.link.call(OpsEvent.WHOAMI)
        if who.get("ok"):
            self.branch_name = who["hub"].get("branch_name") or ""
        ack = await self.link.call(OpsEvent.PRINTERS_LIST)
        if not ack.get("ok"):
            self.notify(f"could not list printers: {ack['error']['message']}", severity="error")
            return
        self.printers = {p["id"]: p for p in ack["printers"]}
        self._rebuild_table()

    def on_hub_event(self, message: HubEvent) -> None:
        if message.event == Ev.PRINTER_UPDATE and isinstance(message.data, dict):
            self._upsert_printer(message.data)
        elif message.event == Ev.PRINTERS_SEEN and isinstance(message.data, dict):
            for printer_id in message.data.get("printer_ids") or []:
                if printer_id in self.printers:
                    self.printers[printer_id]["last_seen"] = message.data.get("at")
        elif message.event == Ev.PRINTER_TEST_COMPLETED and isinstance(message.data, dict):
            result = message.data
            name = self.printers.get(result.get("printer_id"), {}).get("name", "printer")  # type: ignore[arg-type]
            if result.get("ok"):
                self.notify(f"Test page printed on {name} ({result.get('duration_ms')} ms)")
            else:
                error = result.get("error") or {}
                self.notify(
                    f"Test print on {name} failed: {error.get('message')}", severity="error"
                )

    # -- table -------------------------------------------------------------------------

    def _cells(self, p: dict[str, Any]) -> list[Any]:
        return [
            status_text(p["status"]),
            p["name"],
            p.get("station") or "-",
            p["address"],
            paper_text(p["status"], p.get("flags") or {}),
            str(p.get("queue", 0)),
            ago(p.get("last_seen")),
        ]

    def _sort_key(self, p: dict[str, Any]) -> tuple[int, str]:
        return (STATUS_ORDER.get(p["status"], 9), p["name"].lower())

    def _rebuild_table(self) -> None:
        table = self.query_one("#printers", DataTable)
        selected = self._selected_id()
        table.clear()
        for p in sorted(self.printers.values(), key=self._sort_key):
            table.add_row(*self._cells(p), key=str(p["id"]))
        if selected is not None and str(selected) in {str(k) for k in self.printers}:
            table.move_cursor(row=table.get_row_index(str(selected)))
        self._render_topbar()
        self._render_detail()

    def _upsert_printer(self, printer: dict[str, Any]) -> None:
        old = self.printers.get(printer["id"])
        self.printers[printer["id"]] = printer
        table = self.query_one("#printers", DataTable)
        if old is None or self._sort_key(old) != self._sort_key(printer):
            self._rebuild_table()
            return
        for (key, _label, _w), value in zip(COLUMNS, self._cells(printer), strict=True):
            table.update_cell(str(printer["id"]), key, value)
        self._render_topbar()
        self._render_detail()

    def _selected_id(self) -> int | None:
        table = self.query_one("#printers", DataTable)
        if table.row_count == 0:
            return None
        try:
            row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        except Exception:
            return None
        return int(row_key.value) if row_key.value is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._render_detail()

    # -- chrome ----------------------------------------------------------------------

    def _render_topbar(self) -> None:
        state = self.link_state
        if state.state == "connected":
            latency = f" {self.latency_ms:.0f} ms" if self.latency_ms is not None else ""
            link = Text(f"● hub{latency}", style="green")
        elif state.state == "reconnecting":
            link = Text(f"◌ reconnecting {state.retry_in or 0}s", style="yellow")
        elif state.state == "refused":
            link = Text("✕ token refused", style="red")
        else:
            link = Text("◌ connecting", style="yellow")
        problems = sum(1 for p in self.printers.values() if STATUS_ORDER.get(p["status"], 9) <= 3)
        text = Text.assemble(
            ("PrinterMaster", "bold"),
            f" · {self.branch_name or self.hub_url}   ",
            link,
            "   ",
            (f"⚠ {problems} problem{'s' if problems != 1 else ''}", "bold red")
            if problems
            else ("✓ all printers ok", "green"),
            f"   {len(self.printers)} printers   {time.strftime('%H:%M:%S')}",
        )
        self.query_one("#topbar", Static).update(text)

    def _render_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        printer_id = self._selected_id()
        p = self.printers.get(printer_id) if printer_id is not None else None
        if p is None:
            detail.update("No printer selected." if self.printers else "No printers yet.")
            return
        flags = ", ".join(k.replace("_", " ") for k, v in (p.get("flags") or {}).items() if v)
        since = (
            time.strftime("%H:%M:%S", time.localtime(p["status_changed_at"]))
            if p.get("status_changed_at")
            else "?"
        )
        detail.update(
            Text.assemble(
                (p["name"], "bold"),
                "  ",
                status_text(p["status"]),
                f" since {since}",
                f" · {p.get('queue', 0)} jobs waiting",
                f" · {flags}" if flags else "",
                f"\n{p['address']} · station {p.get('station') or '-'} · agent "
                f"{'connected' if p.get('agent_connected') else 'not connected'}",
            )
        )

    def _tick(self) -> None:
        table = self.query_one("#printers", DataTable)
        now = time.time()
        for p in self.printers.values():
            try:
                table.update_cell(str(p["id"]), "seen", ago(p.get("last_seen"), now))
            except Exception:
                pass
        self._render_topbar()

    async def _measure_latency(self) -> None:
        if self.link.connected:
            self.latency_ms = await self.link.ping()

    # -- actions ---------------------------------------------------------------------

    async def action_test_print(self) -> None:
        printer_id = self._selected_id()
        if printer_id is None:
            self.notify("Select a printer first", severity="warning")
            return
        ack = await self.link.call(OpsEvent.PRINTER_TEST, {"printer_id": printer_id})
        if ack.get("ok"):
            self.notify(f"Test print sent to {self.printers[printer_id]['name']}…")
        else:
            self.notify(f"Test print refused: {ack['error']['message']}", severity="error")

    async def action_refresh(self) -> None:
        await self.load_everything()


def run_tui(*, hub_url: str, token: str | None, log_level: str = "WARNING") -> int:
    if not token:
        print(
            "pm tui: no token. Pass --token or set PM_TOKEN; on the hub, make one with\n"
            "  pm token create --role admin",
            file=sys.stderr,
        )
        return 2
    if not hub_url.startswith(("http://", "https://")):
        print(
            f"pm tui: hub URL must start with http:// or https:// (got {hub_url!r})",
            file=sys.stderr,
        )
        return 2
    logging.getLogger().handlers[:] = []
    logging.getLogger().setLevel(log_level.upper())
    app = PrinterMasterApp(hub_url=hub_url, token=token)
    result = app.run()
    if app.link_state.state == "refused":
        print(f"pm tui: {app.link_state.message}", file=sys.stderr)
        return 3
    return result or 0
