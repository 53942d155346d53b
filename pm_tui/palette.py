"""Command palette (ctrl+p): find printers, jobs, alerts and actions by name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from pm_core.protocol import CANCELLABLE_JOB_STATUSES
from pm_tui.bulk import BulkActions
from pm_tui.dashboard import Dashboard, as_dashboard
from pm_tui.printer_admin import PrinterAdmin

Command = Callable[[], Any] | Callable[[], Awaitable[Any]]

#: How many recent jobs the palette searches.
JOBS_SEARCHED = 300


class DashboardCommands(Provider):
    """Printers (open, test, receipt, pause, move), jobs, alerts, screens, branches."""

    @property
    def dashboard(self) -> Dashboard:
        return as_dashboard(self.app)

    def _screen_commands(self) -> list[tuple[str, Command, str]]:
        app = self.dashboard
        commands: list[tuple[str, Command, str]] = [
            ("Go to Printers", partial(app.action_show_tab, "printers"), "the live printer table"),
            ("Go to Jobs", partial(app.action_show_tab, "jobs"), "queue and history"),
            ("Go to Alerts", partial(app.action_show_tab, "alerts"), "open and recent alerts"),
            ("Go to Agents", partial(app.action_show_tab, "agents"), "agents and link health"),
            ("Go to Logs", partial(app.action_show_tab, "logs"), "the hub's recent log lines"),
            ("Print a ticket…", app.new_ticket, "type lines, choose a station or printer"),
            ("Add a printer…", app.add_printer, "its URI, through a connected agent"),
            (
                "Acknowledge every open alert",
                BulkActions(app).ack_alerts,
                "asks first; one toast says how many",
            ),
            ("Reload from the hub", app.action_reload, "ask the hub for everything again"),
            ("Show keys (help)", app.action_help, "every key on every screen"),
        ]
        if app.state.multi_branch:
            commands.append(
                ("Go to Branches", partial(app.action_show_tab, "branches"), "one row per branch")
            )
            commands.append(
                ("Show all branches", partial(app.set_branch_filter, None), "clear branch filter")
            )
            for branch in app.state.branches:
                commands.append(
                    (
                        f"Show branch {branch.get('name')}",
                        partial(app.set_branch_filter, branch.get("id")),
                        "only this branch on every screen",
                    )
                )
        return commands

    def _printer_commands(self) -> list[tuple[str, Command, str]]:
        app = self.dashboard
        actions = app.actions
        admin = PrinterAdmin(app)
        commands: list[tuple[str, Command, str]] = []
        for printer in sorted(app.state.printers.values(), key=lambda p: str(p.get("name"))):
            pid = printer["id"]
            name = str(printer.get("name"))
            status = str(printer.get("status", "")).replace("_", " ").upper()
            where = f"{printer.get('station') or 'no station'} · {printer.get('address')}"
            pause = "Resume" if printer.get("paused") else "Pause"
            commands += [
                (f"Printer {name} ({status})", partial(app.open_printer, pid), where),
                (f"Test print on {name}", partial(actions.test_print, pid), where),
                (f"Send a test receipt to {name}", partial(actions.send_test_receipt, pid), where),
                (f"{pause} {name}", partial(actions.toggle_pause, pid), where),
                (f"Move {name} to another station", partial(actions.move_printer, pid), where),
                (
                    f"Remove {name} from the hub…",
                    partial(admin.remove, pid),
                    "asks first; managers",
                ),
            ]
        return commands

    def _job_commands(self) -> list[tuple[str, Command, str]]:
        app = self.dashboard
        jobs = sorted(app.state.jobs.values(), key=lambda j: j["id"], reverse=True)
        commands: list[tuple[str, Command, str]] = []
        for job in jobs[:JOBS_SEARCHED]:
            printer = app.state.printer_name(job.get("printer_id"))
            label = f"Job #{job['id']} {job.get('status')} on {printer}"
            commands.append(
                (label, partial(app.open_job, job["id"]), str(job.get("idempotency_key") or ""))
            )
            commands.append(
                (
                    f"Reprint job #{job['id']} ({printer})",
                    partial(app.actions.reprint_job, job["id"]),
                    "",
                )
            )
            if job.get("status") in CANCELLABLE_JOB_STATUSES:
                commands.append(
                    (
                        f"Cancel job #{job['id']} ({printer})",
                        partial(app.actions.cancel_job, job["id"]),
                        "",
                    )
                )
        return commands

    def _alert_commands(self) -> list[tuple[str, Command, str]]:
        app = self.dashboard
        return [
            (
                f"Acknowledge: {alert.get('message')}",
                partial(app.actions.ack_alert, alert["id"]),
                f"{alert.get('severity')} · {alert.get('kind')}",
            )
            for alert in app.state.open_alerts()
        ]

    async def discover(self) -> Hits:
        app = self.dashboard
        for label, command, help_text in self._screen_commands():
            yield DiscoveryHit(label, command, help=help_text)
        for label, command, help_text in self._alert_commands():
            yield DiscoveryHit(label, command, help=help_text)
        for problem in app.state.problems(app.branch_filter):
            yield DiscoveryHit(
                f"Printer {problem.get('name')} ({str(problem.get('status')).upper()})",
                partial(app.open_printer, problem["id"]),
                help="has a problem",
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for group in (
            self._screen_commands,
            self._printer_commands,
            self._alert_commands,
            self._job_commands,
        ):
            for label, command, help_text in group():
                score = matcher.match(f"{label} {help_text}") if help_text else matcher.match(label)
                if score > 0:
                    yield Hit(score, matcher.highlight(label), command, text=label, help=help_text)
