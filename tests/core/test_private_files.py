"""The data dir holds every ticket and every secret: 0700, its files 0600, also when
an older version left them readable by everyone (issue 12, finding 11)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from pm_core.database import Database
from pm_core.private_files import private_dir, private_file, write_private
from pm_hub.auth import load_or_create_secret


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = Database(data / "hub.sqlite")
    db.start(lambda d: d.execute("CREATE TABLE t (x)"))
    try:
        asyncio.run(db.write(lambda d: d.execute("INSERT INTO t VALUES (1)")))
        files = sorted(p.name for p in data.iterdir())
        assert files == ["hub.sqlite", "hub.sqlite-shm", "hub.sqlite-wal"]
        assert {p.name: mode(p) for p in data.iterdir()} == dict.fromkeys(files, 0o600)
        assert mode(data) == 0o700
    finally:
        db.close()


def test_files_an_older_version_left_world_readable_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = data / "hub.sqlite"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    private_file(old)
    assert (mode(data), mode(old)) == (0o700, 0o600)


def test_the_signing_secret_lives_in_a_private_dir(tmp_path: Path) -> None:
    load_or_create_secret(tmp_path / "hub")
    assert mode(tmp_path / "hub") == 0o700
    assert all(mode(p) == 0o600 for p in (tmp_path / "hub").iterdir())


def test_write_private_replaces_the_text(tmp_path: Path) -> None:
    target = private_dir(tmp_path / "d") / "key"
    write_private(target, "one")
    write_private(target, "two")
    assert (target.read_text(), mode(target)) == ("two", 0o600)


def test_the_agents_own_files_are_private(tmp_path: Path) -> None:
    from pm_agent.device_id import load_device_id
    from pm_agent.identity_cache import IdentityCache

    data = tmp_path / "agent"
    load_device_id(data)
    cache = IdentityCache(data / "printer-identities.json")
    cache.remember("tcp://127.0.0.1:9100", {"identity": "serial:1"})
    cache.save()
    assert mode(data) == 0o700
    assert {p.name: mode(p) for p in data.iterdir()} == {
        "agent-device-id": 0o600,
        "printer-identities.json": 0o600,
    }
