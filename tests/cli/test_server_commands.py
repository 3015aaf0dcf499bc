"""The operator commands through the real console script: init, users, clients, keys, audit.

One data directory is initialized per module (RSA key generation and argon2 with its
production parameters cost real time) and the tests build on it; each test asserts on
state it made itself or that `init` made.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import argon2
import pytest

from tokensmith.server.services import admin_audience
from tokensmith.server.settings import Settings

from ._server_cli import PASSWORD, SCRIPT, Cli, clean_env, parse_table


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    # A directory that does not exist yet: init must create it.
    runner = Cli(tmp_path_factory.mktemp("server") / "var")
    out = runner.ok("init", "--admin", "Root", stdin=PASSWORD + "\n")
    assert "(created)" in out
    assert "admin user root: created with role ADMIN" in out
    assert "admin client tokensmith-admin: created" in out
    return runner


def db_rows(cli: Cli, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        return conn.execute(query, params).fetchall()


def stored_password_hash(cli: Cli, username: str) -> str:
    rows = db_rows(cli, "SELECT password_hash FROM users WHERE username = ?", username)
    assert len(rows) == 1
    return str(rows[0][0])


def key_states(cli: Cli) -> dict[str, str]:
    return {
        str(kid): str(state) for kid, state in db_rows(cli, "SELECT kid, state FROM signing_keys")
    }


def user_row(cli: Cli, username: str) -> tuple[str, bool, str]:
    """(roles JSON, disabled, profile JSON) as stored."""
    (row,) = db_rows(cli, "SELECT roles, disabled, profile FROM users WHERE username = ?", username)
    return str(row[0]), bool(row[1]), str(row[2])


def test_init_creates_data_dir_master_key_database_and_current_key(cli: Cli) -> None:
    assert stat.S_IMODE(cli.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cli.data_dir / "master.key").stat().st_mode) == 0o600
    assert (cli.data_dir / "tokensmith.db").is_file()
    keys = cli.json("keys", "list")
    assert [(k["alg"], k["state"]) for k in keys] == [("RS256", "current")]
    assert "private" not in str(keys) and '"d"' not in str(keys)
    assert user_row(cli, "root")[:2] == ('["ADMIN"]', False)
    # The password read from stdin is the one stored (as an argon2id hash, never in clear).
    stored = stored_password_hash(cli, "root")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert argon2.PasswordHasher().verify(stored, PASSWORD)
    # The public client an admin logs in through, for the admin API's audience only.
    (admin_client,) = db_rows(
        cli, "SELECT secret_hash, audiences FROM clients WHERE client_id = 'tokensmith-admin'"
    )
    assert admin_client[0] is None
    assert json.loads(str(admin_client[1])) == [
        admin_audience(Settings.model_fields["issuer"].default)
    ]


def test_init_twice_changes_nothing(cli: Cli) -> None:
    key_file = (cli.data_dir / "master.key").read_bytes()
    keys = key_states(cli)
    stored = stored_password_hash(cli, "root")
    # No password on stdin: an existing admin is not asked for one.
    out = cli.ok("init", "--admin", "root")
    assert "exists, left unchanged" in out
    assert "admin client tokensmith-admin: exists" in out
    assert "(created" not in out
    assert (cli.data_dir / "master.key").read_bytes() == key_file
    assert key_states(cli) == keys
    assert stored_password_hash(cli, "root") == stored


def test_passwords_are_never_taken_from_argv(cli: Cli) -> None:
    result = cli.run("users", "add", "eve", "--password", PASSWORD)
    assert result.returncode == 2
    assert "No such option '--password'" in result.stderr
    assert not db_rows(cli, "SELECT id FROM users WHERE username = 'eve'")


def test_users_add_set_roles_disable_enable_passwd(cli: Cli) -> None:
    out = cli.ok(
        "users", "add", "Bob", "--role", "editor", "--name", "Bob B", "--email", "b@example.com",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert "created user bob" in out
    assert user_row(cli, "bob") == (
        '["EDITOR"]',
        False,
        '{"email": "b@example.com", "name": "Bob B"}',
    )
    cli.ok("users", "set-roles", "BOB", "EDITOR", "ADMIN")
    cli.ok("users", "disable", "bob")
    assert user_row(cli, "bob")[:2] == ('["ADMIN", "EDITOR"]', True)
    (bob,) = [u for u in cli.json("users", "list") if u["username"] == "bob"]
    assert bob["roles"] == ["ADMIN", "EDITOR"] and bob["disabled"] is True
    assert bob["profile"] == {"name": "Bob B", "email": "b@example.com"}
    assert "argon2" not in str(bob)
    cli.ok("users", "disable", "bob", "--enable")
    assert user_row(cli, "bob")[1] is False
    new_password = "another long password"
    cli.ok("users", "passwd", "bob", stdin=new_password + "\n")
    assert argon2.PasswordHasher().verify(stored_password_hash(cli, "bob"), new_password)


def test_weak_password_and_unknown_user_are_refused(cli: Cli) -> None:
    result = cli.run("users", "add", "shorty", stdin="tiny-pw\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: weak_password:")
    assert "tiny-pw" not in result.stderr
    assert not db_rows(cli, "SELECT id FROM users WHERE username = 'shorty'")
    result = cli.run("users", "set-roles", "nobody", "ADMIN")
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown_user:")


def test_clients_add_prints_the_secret_once_and_list_never_shows_it(cli: Cli) -> None:
    result = cli.run(
        "clients", "add", "web", "--grant", "password", "--grant", "refresh_token",
        "--scope", "read", "--scope", "write", "--audience", "https://api.example.com",
        "--lifetime", "10m",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no --audience" not in result.stderr
    secret = result.stdout.strip()
    assert len(secret) >= 43 and "\n" not in secret  # 256 bits, alone on stdout
    # A resource server that only reads the feed needs no audience, and is told so.
    feed = cli.run("clients", "add", "feed-reader", "--grant", "client_credentials")
    assert feed.returncode == 0 and "no --audience" in feed.stderr
    (stored,) = db_rows(cli, "SELECT secret_hash FROM clients WHERE client_id = 'web'")
    assert stored[0] == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    table = cli.ok("clients", "list")
    listed = cli.json("clients", "list")
    assert secret not in table and secret not in str(listed)
    assert "sha256$" not in table and "sha256$" not in str(listed)
    rows = parse_table(table)
    assert [r["CLIENT_ID"] for r in rows] == [c["client_id"] for c in listed]
    (web_row,) = [r for r in rows if r["CLIENT_ID"] == "web"]
    assert web_row == {
        "CLIENT_ID": "web",
        "TYPE": "confidential",
        "GRANTS": "password,refresh_token",
        "SCOPES": "read,write",
        "AUDIENCES": "https://api.example.com",
        "LIFETIME": "600s",
        "DISABLED": "no",
        "CREATED": web_row["CREATED"],
    }
    assert web_row["CREATED"].endswith("Z") and len(web_row["CREATED"]) == 20
    (web,) = [c for c in listed if c["client_id"] == "web"]
    assert web["grant_types"] == ["password", "refresh_token"]
    assert web["scopes"] == ["read", "write"]
    assert web["audiences"] == ["https://api.example.com"]
    assert web["access_token_lifetime"] == 600 and web["public"] is False


def test_keys_rotate_retire_revoke_prune(cli: Cli) -> None:
    (first,) = [kid for kid, state in key_states(cli).items() if state == "current"]
    assert "created a new RS256 key (next)" in cli.ok("keys", "rotate")
    (upcoming,) = [kid for kid, state in key_states(cli).items() if state == "next"]
    # The next key was just published: verifiers' caches may not know it yet.
    early = cli.run("keys", "rotate")
    assert early.returncode == 1 and early.stderr.startswith("error: rotation_too_early:")
    # "--": a kid may start with "-" (base64url), which click would take for an option.
    not_current = cli.run("keys", "retire", "--", upcoming)
    assert not_current.returncode == 1
    assert not_current.stderr.startswith("error: not_current_key:")
    out = cli.ok("keys", "retire", "--", first)
    assert f"retired {first}" in out and f"activated {upcoming}" in out
    assert key_states(cli) == {first: "retired", upcoming: "current"}
    cli.ok("keys", "revoke", "--yes", "--", first)
    assert key_states(cli) == {first: "revoked", upcoming: "current"}
    assert "nothing due" in cli.ok("keys", "prune")
    assert key_states(cli) == {first: "revoked", upcoming: "current"}
    rows = parse_table(cli.ok("keys", "list"))
    assert {r["KID"]: r["STATE"] for r in rows} == key_states(cli)  # kids whole, one row each
    assert len(rows) == 2 and {r["ALG"] for r in rows} == {"RS256"}
    (revoked,) = [r for r in rows if r["KID"] == first]
    assert revoked["RETIRED/REVOKED"] != "-" and revoked["DELETED AFTER"] != "-"


def test_audit_shows_the_changes_made_by_commands(cli: Cli) -> None:
    cli.ok("users", "set-roles", "root", "ADMIN", "AUDITOR")
    entries = cli.json("audit", "--since", "1h", "--limit", "1000")
    events = {(e["event"], e["actor"]) for e in entries}
    assert {("user_created", "cli"), ("user_changed", "cli")} <= events
    assert any(e["event"] == "key_created" for e in entries)
    assert entries[0]["event"] == "user_changed"  # newest first
    assert entries[0]["detail"] == {
        "username": "root",
        "change": "roles",
        "roles": ["ADMIN", "AUDITOR"],
    }
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert PASSWORD not in str(entries)
    rows = parse_table(cli.ok("audit", "--since", "1h", "--limit", "2"))
    assert len(rows) == 2
    assert rows[0]["EVENT"] == "user_changed" and rows[0]["ACTOR"] == "cli"
    assert rows[0]["SUBJECT"] == str(entries[0]["subject"] or "-")
    assert rows[0]["DETAIL"] == '{"change":"roles","roles":["ADMIN","AUDITOR"],"username":"root"}'
    table = cli.ok("audit", "--since", "@4102444800")  # year 2100: nothing yet
    assert table.strip() == "no events"


def test_users_list_table_shows_untrusted_values_literally(cli: Cli) -> None:
    hostile_name = "\x1b[2J\x1b]0;pwned\x07Mal\r\nlory"
    refused = cli.run("users", "add", "eve", "--name", hostile_name, stdin=PASSWORD + "\n")
    assert refused.returncode == 1 and "invalid_user_data" in refused.stderr
    cli.ok(
        "users", "add", "[red]Mallory[/red]", "--name", "Mallory", "--email", "m@example.com",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    # Stored before profile values were checked, or by another tool: still shown safely.
    profile = json.dumps({"email": "m@example.com", "name": hostile_name})
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        conn.execute(
            "UPDATE users SET profile = ? WHERE username = '[red]mallory[/red]'", (profile,)
        )
    table = cli.ok("users", "list")
    assert "\x1b" not in table and "\x07" not in table and "\r" not in table
    rows = parse_table(table)
    listed = cli.json("users", "list")
    assert [r["USERNAME"] for r in rows] == [u["username"] for u in listed]  # one row each
    (mallory,) = [r for r in rows if r["USERNAME"] == "[red]mallory[/red]"]
    assert mallory["NAME"] == "\\x1b[2J\\x1b]0;pwned\\x07Mal\\r\\nlory"
    assert mallory["EMAIL"] == "m@example.com" and mallory["DISABLED"] == "no"
    (as_json,) = [u for u in listed if u["username"] == "[red]mallory[/red]"]
    assert as_json["profile"]["name"] == hostile_name  # --json: the stored value, exactly


def imports_rich(cli: Cli, *args: str) -> bool:
    """Run the console script under ``-X importtime``: was rich imported?"""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cli.env,
    )
    assert result.returncode == 0, result.stderr
    return any(line.rsplit("|", 1)[-1].strip() == "rich" for line in result.stderr.splitlines())


def test_rich_is_imported_only_to_print_a_table(cli: Cli) -> None:
    assert not imports_rich(cli, "keys", "list", "--json")
    assert not imports_rich(cli, "audit", "--since", "@4102444800")  # "no events"
    assert imports_rich(cli, "keys", "list")


def test_bad_settings_exit_1_naming_the_setting(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    env = clean_env(tmp_path / "var", TOKENSMITH_ISSUER="http://example.com")
    result = cli.run("users", "list", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: invalid_settings:")
    assert "TOKENSMITH_ISSUER" in result.stderr
    assert not (tmp_path / "var").exists()  # refused before anything was created
