"""Credentials that can be taken back, as an admin runs the commands (issue 12,
finding 10): ``pm token create / list / revoke`` and ``pm license create / list /
revoke``, lifetimes bounded by role, tokens that carry an id."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from pm_hub import auth

PM = [sys.executable, "-m", "pm"]


def pm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PM, *args], capture_output=True, text=True, timeout=60)


def listed(data: Path, *extra: str) -> dict[str, list[str]]:
    """``pm token list`` / ``pm license list`` rows by their first column."""
    result = pm(*extra, "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return {line.split()[0]: line.split() for line in lines[1:]}


def test_a_token_has_an_id_it_is_listed_by_and_revoked_by(tmp_path: Path) -> None:
    made = pm("token", "create", "--role", "viewer", "--branch", "1", "--sub", "pass-tablet",
              "--data-dir", str(tmp_path))  # fmt: skip
    assert made.returncode == 0, made.stderr
    claims = jwt.decode(made.stdout.strip(), options={"verify_signature": False})
    token_id = claims["jti"]
    assert f"pm token revoke {token_id}" in made.stderr
    assert listed(tmp_path, "token", "list")[token_id][1:3] == ["viewer", "pass-tablet"]

    revoked = pm("token", "revoke", token_id, "--data-dir", str(tmp_path))
    assert revoked.returncode == 0 and "revoked 1 token" in revoked.stdout
    assert token_id not in listed(tmp_path, "token", "list")  # only usable ones by default
    assert "revoked" in listed(tmp_path, "token", "list", "--all")[token_id]
    again = pm("token", "revoke", token_id, "--data-dir", str(tmp_path))
    assert again.returncode == 0 and "already revoked" in again.stdout


def test_revoking_an_unknown_token_says_so(tmp_path: Path) -> None:
    result = pm("token", "revoke", "nope", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no token 'nope' (see pm token list)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("role", "ttl", "longest"),
    [("admin", "13h", "12h"), ("operator", "100d", "12h"), ("branch", "365d", "30d")],
)
def test_a_lifetime_over_the_roles_maximum_is_refused(
    tmp_path: Path, role: str, ttl: str, longest: str
) -> None:
    result = pm("token", "create", "--role", role, "--branch", "1", "--ttl", ttl,
                "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    assert f"token may live at most {longest}" in result.stderr


def test_the_maximum_lifetime_is_a_setting(tmp_path: Path) -> None:
    config = tmp_path / "pm.toml"
    config.write_text("token_max_ttl_s = 172800\n")
    result = pm("token", "create", "--role", "admin", "--ttl", "2d", "--config", str(config),
                "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_hub_refuses_a_token_signed_for_too_long_even_with_its_key(tmp_path: Path) -> None:
    """The 100-year token of the finding: signed with the hub's own key, still refused."""
    secret = auth.load_or_create_secret(tmp_path)
    now = int(time.time())
    forged = jwt.encode(
        {"sub": "x", "role": "admin", "company_id": 1, "iat": now, "exp": now + 100 * 365 * 86400,
         "iss": auth.ISSUER, "jti": "abc"},
        secret, algorithm="HS256",
    )  # fmt: skip
    with pytest.raises(auth.AuthError, match="lives longer than this hub allows"):
        auth.TokenIssuer(secret).verify(forged)


def test_a_token_without_an_id_cannot_be_revoked_so_it_is_refused(tmp_path: Path) -> None:
    secret = auth.load_or_create_secret(tmp_path)
    now = int(time.time())
    old = jwt.encode(
        {"sub": "x", "role": "admin", "company_id": 1, "iat": now, "exp": now + 600,
         "iss": auth.ISSUER},
        secret, algorithm="HS256",
    )  # fmt: skip
    with pytest.raises(auth.AuthError, match="jti"):
        auth.TokenIssuer(secret).verify(old)


def test_licenses_are_listed_without_their_keys_and_revoked_by_id_or_prefix(
    tmp_path: Path,
) -> None:
    first = pm("license", "create", "--label", "bar till", "--data-dir", str(tmp_path))
    second = pm("license", "create", "--data-dir", str(tmp_path))
    keys = [first.stdout.strip(), second.stdout.strip()]
    result = pm("license", "list", "--data-dir", str(tmp_path))
    assert result.returncode == 0
    assert not any(key in result.stdout for key in keys)  # never the key itself
    rows = listed(tmp_path, "license", "list")
    assert rows["1"][-1] == "valid" and "bar" in rows["1"]

    by_prefix = pm("license", "revoke", keys[1][:12], "--data-dir", str(tmp_path))
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert "license 2" in by_prefix.stdout
    assert pm("license", "revoke", "1", "--data-dir", str(tmp_path)).returncode == 0
    assert all("revoked" in row for row in listed(tmp_path, "license", "list").values())

    missing = pm("license", "revoke", "99", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "no license '99'" in missing.stderr


# -- secrets from files, not the command line (ps shows arguments to every user) ----------


def test_the_agent_reads_its_license_key_from_a_file(tmp_path: Path) -> None:
    missing = pm("agent", "--hub", "http://127.0.0.1:9", "--license-file", str(tmp_path / "nope"),
                 "--data-dir", str(tmp_path))  # fmt: skip
    assert missing.returncode == 2
    assert "cannot read license key from" in missing.stderr and "Traceback" not in missing.stderr
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    result = pm("agent", "--hub", "http://127.0.0.1:9", "--license-file", str(empty),
                "--data-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and "is empty: it should hold the license key" in result.stderr


def test_the_branch_token_comes_from_a_file(tmp_path: Path) -> None:
    from pm_hub.config import load_settings

    token_file = tmp_path / "branch.token"
    token_file.write_text("eyJ.branch.token\n")
    settings = load_settings(
        overrides={"upstream_url": "http://company:3001", "upstream_token_file": token_file}
    )
    assert settings.upstream_token == "eyJ.branch.token"


def test_the_dashboard_reads_its_token_from_a_file(tmp_path: Path) -> None:
    from pm_tui.config import resolve

    token_file = tmp_path / "ops.token"
    token_file.write_text("eyJ.ops.token\n")
    settings = resolve(
        hub="http://127.0.0.1:3001", token_file=token_file, env={}, discover=lambda: None
    )
    assert (settings.token, settings.token_from) == ("eyJ.ops.token", str(token_file))


def test_token_ids_never_look_like_an_option(tmp_path: Path) -> None:
    """A token id that began with '-' (1 in 64 of them) could not be revoked:
    `pm token revoke -ZmC9h3bcVVtCGaR` was read as an option. Ids are hex now."""
    issuer = auth.TokenIssuer(auth.load_or_create_secret(tmp_path))
    ids = [issuer.issue(role="viewer", branch_ids=[1]).token_id for _ in range(400)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
