"""Starting the dashboard from the command line: settings, a quick check of the hub,
then the terminal app (or ``--web``: the same app in a browser via textual-serve)."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from pm_core.tls import client_context
from pm_tui.config import TuiConfigError, default_config_path, discover_hub, preflight, resolve
from pm_tui.scrub import scrub_text

#: Browser dashboards open at once (each runs a dashboard process).
DEFAULT_WEB_SESSIONS = 4

NO_TOKEN = """\
pm tui: no token. Pass --token, set PM_TOKEN, or put it in {path}:
    token = "eyJ..."
Make one on the hub with:  pm token create --role admin"""


def _say(message: str) -> None:
    # What the hub answered may be in it: no terminal commands reach the screen.
    print(scrub_text(message), file=sys.stderr, flush=True)


def setup_logging(level: str) -> None:
    """Log through Textual (visible with `textual console`), never onto the screen."""
    from textual.logging import TextualHandler  # Textual loads only once the hub answered

    root = logging.getLogger()
    root.handlers[:] = [TextualHandler()]
    root.setLevel(level.upper())
    for noisy in ("socketio", "engineio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def launch(
    *,
    hub_url: str | None,
    token: str | None,
    token_file: Path | None = None,
    ca_file: Path | None = None,
    log_level: str = "WARNING",
    config_file: Path | None = None,
    mdns_interfaces: list[str] | None = None,
    hub_branch: str | None = None,
    web: bool = False,
    web_host: str = "127.0.0.1",
    web_port: int = 8080,
    web_sessions: int = DEFAULT_WEB_SESSIONS,
    notice: str | None = None,
) -> int:
    """``pm tui``: resolve where and how to connect, check the hub, run the dashboard."""
    try:
        settings = resolve(
            hub=hub_url,
            token=token,
            token_file=token_file,
            config_file=config_file,
            discover=lambda: discover_hub(interfaces=mdns_interfaces, branch=hub_branch),
        )
    except TuiConfigError as exc:
        _say(f"pm tui: {exc}")
        return 2
    for warning in settings.warnings:
        _say(f"pm tui: warning: {warning}")
    if not settings.token:
        _say(NO_TOKEN.format(path=config_file or default_config_path()))
        return 2
    try:
        tls = client_context(ca_file) if settings.hub_url.startswith("https://") else None
    except ValueError as exc:
        _say(f"pm tui: {exc}")
        return 2
    try:
        health = preflight(settings.hub_url, tls=tls)
    except TuiConfigError as exc:
        where = "" if settings.hub_from in ("--hub", "default") else f" (from {settings.hub_from})"
        _say(f"pm tui: {exc}{where}")
        return 1
    if web:
        if ca_file is not None:
            os.environ["PM_CA_FILE"] = str(ca_file)  # for the dashboards it starts
        return serve_web(
            settings.hub_url, settings.token, web_host, web_port, log_level, web_sessions
        )

    from pm_tui.app import PrinterMasterApp  # lazy: a refused start says so without Textual

    setup_logging(log_level)
    logging.getLogger(__name__).info("hub %s (%s)", settings.hub_url, health.get("branch"))
    app = PrinterMasterApp(
        hub_url=settings.hub_url,
        token=settings.token,
        exit_on_refusal=True,
        tls=tls,
        notice=notice,
        handle_signals=True,
    )
    result = app.run()
    if app.link_state.state == "refused":
        _say(
            f"pm tui: {app.link_state.message}.\n"
            f"Make a new token on the hub with:  pm token create --role admin"
            + (f"\n(the token came from {settings.token_from})" if settings.token_from else "")
        )
        return 3
    return result or 0


def serve_web(
    hub_url: str,
    token: str,
    host: str,
    port: int,
    log_level: str,
    max_sessions: int = DEFAULT_WEB_SESSIONS,
) -> int:
    """The same dashboard in a browser, behind a secret printed in its URL. Each browser
    tab runs its own ``pm tui`` (at most ``max_sessions`` at once)."""
    try:
        from pm_tui.web_server import DashboardWebServer, new_secret
    except ImportError:
        _say("pm tui --web needs textual-serve:  pip install textual-serve")
        return 2
    if host not in ("127.0.0.1", "localhost", "::1"):
        _say(
            f"pm tui: warning: serving on {host}: anyone who can reach port {port} and has "
            "the address below acts with this token. Prefer 127.0.0.1 and an SSH tunnel "
            "(ssh -L 8080:127.0.0.1:8080 box)."
        )
    # The token travels in the environment, not on a command line others can read.
    os.environ["PM_HUB"] = hub_url
    os.environ["PM_TOKEN"] = token
    command = shlex.join([sys.executable, "-m", "pm_tui", "--log-level", log_level])
    server = DashboardWebServer(
        command, host=host, port=port, secret=new_secret(), max_sessions=max_sessions
    )
    _say(f"Serving the dashboard on {server.url}\n(open that address; ctrl+c stops)")
    server.serve()
    return 0
