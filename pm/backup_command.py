"""``pm backup FILE`` and ``pm restore FILE``: the branch hub's state in one file.

What is backed up: ``hub.sqlite`` (printers, stations, jobs, alerts, agents, licenses,
tokens) and the small files of the data dir it needs (:func:`kept_files`). What is not:
the local agent's spool (``agent-spool.sqlite``: jobs it holds are the hub's, and it
asks the hub again) and the lock. The work is in :mod:`pm_hub.backup`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pm_core.private_files import private_dir
from pm_hub.command import settings_from


def kept_files() -> tuple[str, ...]:
    """The data dir's files a backup carries: without the signing secret every token
    made before is refused; without the local key ``pm up``'s agent needs a new
    license; the webhook secret, the local agent's device id and what it learned of its
    printers. (Imported here: ``pm --help`` does not load the agent.)"""
    from pm.branch_box import LOCAL_KEY_FILE
    from pm_agent.device_id import FILE_NAME as DEVICE_ID_FILE
    from pm_agent.identity_cache import FILE_NAME as IDENTITY_FILE
    from pm_hub.auth import SECRET_FILE as JWT_SECRET_FILE
    from pm_hub.webhooks import SECRET_FILE as WEBHOOK_SECRET_FILE

    return (JWT_SECRET_FILE, WEBHOOK_SECRET_FILE, LOCAL_KEY_FILE, DEVICE_ID_FILE, IDENTITY_FILE)


def add_backup_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, helptext, file_help in (
        (
            "backup",
            "copy the hub's state to FILE (safe while the hub runs)",
            "the backup to write (must not exist)",
        ),
        (
            "restore",
            "replace the hub's state with a backup (the hub must be stopped)",
            "a file made by pm backup",
        ),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("file", type=Path, metavar="FILE", help=file_help)
        p.add_argument("--data-dir", type=Path, help="the hub's data dir")
        p.add_argument("--config", type=Path, help="TOML settings file (its data_dir)")
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")


class _Progress:
    """Progress on stderr in steps of 10 % (only for files of more than a few MB)."""

    def __init__(self, verb: str, quiet: bool) -> None:
        self.verb = verb
        self.quiet = quiet
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total < 2048 or not total:  # under 8 MB: over at once
            return
        tenth = done * 10 // total
        if tenth != self.shown:
            self.shown = tenth
            print(f"{self.verb}: {tenth * 10}% ({done}/{total} pages)", file=sys.stderr)


def run_backup_command(args: argparse.Namespace) -> int:
    from pm_hub import backup as hub_backup

    settings = settings_from(args)
    if settings.on_postgresql:
        raise ValueError(
            "this hub keeps its state in PostgreSQL: back it up with pg_dump "
            "(docs/operations.md); pm backup is for the SQLite file of a branch box"
        )
    data_dir = settings.data_dir
    if args.command == "backup":
        info = hub_backup.backup(
            settings.db_path,
            args.file,
            files={name: data_dir / name for name in kept_files()},
            progress=_Progress("backup", args.quiet),
        )
        print(
            f"backed up {settings.db_path} to {info.path}: schema version "
            f"{info.schema_version}, {info.printers} printers, {info.jobs} jobs, "
            f"{info.size_bytes // 1024} KiB; with {', '.join(info.files) or 'no other files'}"
        )
        return 0
    private_dir(data_dir)
    restored = hub_backup.restore(
        args.file,
        data_dir,
        allowed_files=kept_files(),
        progress=_Progress("restore", args.quiet),
    )
    kept = f"; the database it replaced is {restored.previous}" if restored.previous else ""
    print(
        f"restored {args.file} into {data_dir} (schema version "
        f"{restored.backup.schema_version}: {restored.backup.printers} printers, "
        f"{restored.backup.jobs} jobs; files: {', '.join(restored.files) or 'none'}){kept}. "
        "Start the hub: it upgrades an older backup on start."
    )
    return 0
