"""The operator commands against a data directory that is not what they expect (missing,
its key file lost or too open, its schema newer than the code), and the client secret
reset: one ``error: CODE: message`` line and exit 1, never a traceback, and nothing made
where nothing should be.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
from pathlib import Path

import click
import pytest

from tokensmith.cli.main import cli as root_command
from tokensmith.keys import MasterKey

from ._server_cli import PASSWORD, Cli, clean_env


def _one_error_line(result_stderr: str, code: str) -> str:
    assert result_stderr.startswith(f"error: {code}: "), result_stderr
    assert result_stderr.endswith("\n") and result_stderr.count("\n") == 1, result_stderr
    return result_stderr


def _db_rows(cli: Cli, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("review") / "var")
    runner.ok("init", "--admin", "root", stdin=PASSWORD + "\n")
    return runner


@pytest.mark.parametrize(
    "command",
    [
        ("users", "list"),
        ("users", "list", "--json"),
        ("users", "add", "bob"),
        ("users", "passwd", "bob"),
        ("users", "set-roles", "bob", "EDITOR"),
        ("users", "enable", "bob", "--json"),
        ("users", "revoke-tokens", "bob"),
        ("clients", "add", "web", "--grant", "password"),
        ("clients", "list", "--json"),
        ("clients", "disable", "web"),
        ("clients", "enable", "web", "--json"),
        ("keys", "list"),
        ("keys", "rotate"),
        ("audit", "--json"),
    ],
)
def test_a_missing_data_directory_is_not_made_by_other_commands_than_init(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # A mistyped TOKENSMITH_DATA (or the default ./var, run from another directory) made
    # a whole new deployment there: a new master key, a database, a user added to it.
    cli = Cli(tmp_path / "var")
    result = cli.run(*command, stdin=PASSWORD + "\n")
    assert result.returncode == 1
    message = _one_error_line(result.stderr, "not_initialized")
    assert str(tmp_path / "var") in message and "tokensmith init" in message
    assert result.stdout == ""  # --json: nothing but JSON on stdout, and here nothing
    assert not (tmp_path / "var").exists()


def test_with_the_key_in_the_environment_a_missing_database_is_not_initialized(
    tmp_path: Path,
) -> None:
    # No key file to look for: a directory without init's database is refused the same
    # way, not made a new deployment (a new database, schema and signing keys).
    key = MasterKey.generate().to_text()
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    cli = Cli(data_dir)
    env = clean_env(data_dir, TOKENSMITH_MASTER_KEY=key)
    result = cli.run("users", "list", env=env)
    assert result.returncode == 1
    message = _one_error_line(result.stderr, "not_initialized")
    assert str(data_dir / "tokensmith.db") in message and key not in result.stderr
    assert list(data_dir.iterdir()) == []
    assert cli.run("init", env=env).returncode == 0
    listed = cli.run("users", "list", env=env)
    assert listed.returncode == 0, listed.stderr


SERVE_WORKERS = ("serve", "--host", "127.0.0.1", "--port", "1", "--workers", "2")


@pytest.mark.parametrize(
    "command",
    [("users", "list"), ("init",), ("serve", "--host", "127.0.0.1", "--port", "1"), SERVE_WORKERS],
)
def test_a_lost_master_key_file_is_not_replaced_by_a_new_one(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    cli = Cli(tmp_path / "var")
    cli.ok("init")
    key_file = cli.data_dir / "master.key"
    key_file.unlink()
    # A new key cannot unseal the database's signing keys; worse, left in place it stood
    # in the way of the backup being restored (a key file is never replaced).
    result = cli.run(*command)
    assert result.returncode == 1
    message = _one_error_line(result.stderr, "missing_key_file")
    assert str(key_file) in message
    assert not key_file.exists()


@pytest.mark.parametrize(
    "command",
    [("users", "list", "--json"), ("init",), ("serve", "--host", "127.0.0.1"), SERVE_WORKERS],
)
def test_a_database_newer_than_the_code_is_one_error_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    cli = Cli(tmp_path / "var")
    cli.ok("init")
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = cli.run(*command)  # a traceback fails Cli.run
    assert result.returncode == 1
    message = _one_error_line(result.stderr, "unknown_schema_revision")
    assert "9999" in message
    assert result.stdout == ""
    assert _db_rows(cli, "SELECT version_num FROM alembic_version") == [("9999",)]


def test_a_master_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    cli.ok("init")
    key_file = cli.data_dir / "master.key"
    key_file.chmod(0o644)
    result = cli.run("users", "list", "--json")
    assert result.returncode == 1
    _one_error_line(result.stderr, "unsafe_key_file")
    assert result.stdout == ""
    assert key_file.read_text().strip() not in result.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o644  # reported, not changed


def test_clients_reset_secret_prints_the_new_secret_once(ready: Cli) -> None:
    old = ready.ok("clients", "add", "web", "--grant", "password", "--audience", "api").strip()
    result = ready.run("clients", "reset-secret", "web")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert len(new) >= 43 and "\n" not in new and new != old  # alone on stdout
    assert new not in result.stderr
    ((stored,),) = _db_rows(ready, "SELECT secret_hash FROM clients WHERE client_id = 'web'")
    assert stored == "sha256$" + hashlib.sha256(new.encode()).hexdigest()
    listed = ready.ok("clients", "list", "--json")
    assert new not in listed and old not in listed
    ((actor, detail),) = _db_rows(
        ready,
        "SELECT actor, detail FROM audit_log WHERE event = 'client_changed' AND subject = 'web'",
    )
    assert actor == "cli" and "secret_reset" in str(detail) and new not in str(detail)


@pytest.mark.parametrize(
    ("client_id", "code"),
    [("tokensmith-admin", "invalid_client_metadata"), ("nobody", "unknown_client")],
)
def test_clients_reset_secret_refusals(ready: Cli, client_id: str, code: str) -> None:
    result = ready.run("clients", "reset-secret", client_id)
    assert result.returncode == 1
    _one_error_line(result.stderr, code)
    assert result.stdout == ""


def _options(command: click.Command, path: str = "tokensmith") -> list[tuple[str, str]]:
    found = [(path, opt) for param in command.params for opt in param.opts]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += _options(sub, f"{path} {name}")
    return found


def test_no_command_takes_a_password_or_secret_on_the_command_line() -> None:
    every = _options(root_command)
    assert ("tokensmith clients add", "--grant") in every  # the walk reached the commands
    assert ("tokensmith clients reset-secret", "client_id") in every
    for command, argument in (
        ("users enable", "username"),
        ("users revoke-tokens", "username"),
        ("clients disable", "client_id"),
        ("clients enable", "client_id"),
    ):
        assert (f"tokensmith {command}", argument) in every
        assert (f"tokensmith {command}", "--json") in every
        assert (f"tokensmith {command}", "--config") in every
    wrong = [
        (command, opt)
        for command, opt in every
        if any(word in opt.lower() for word in ("password", "passwd", "secret", "master"))
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("users", "set-roles", "root", "bad role"), "invalid_user_data"),
        (("users", "add", "mallory", "--role", "adm\u0131n"), "invalid_user_data"),
        (("users", "add", "mallory", "--name", "M\x1b[31mred"), "invalid_user_data"),
        (("users", "add", "mallory", "--email", "notanemail"), "invalid_user_data"),
        (("users", "add", "bad\u200bname"), "invalid_username"),
        (("users", "disable", "nobody"), "unknown_user"),
        (("users", "passwd", "nobody"), "unknown_user"),
        (("keys", "retire", "no-such-kid"), "unknown_key"),
        (("keys", "rotate", "--alg", "HS256"), "algorithm_not_configured"),
        (("clients", "add", "123", "--grant", "password"), "invalid_client_metadata"),
    ],
)
def test_bad_input_is_one_error_line(ready: Cli, command: tuple[str, ...], code: str) -> None:
    result = ready.run(*command, stdin=PASSWORD + "\n")
    assert result.returncode == 1
    _one_error_line(result.stderr, code)
    assert PASSWORD not in result.stderr + result.stdout
    assert not _db_rows(ready, "SELECT id FROM users WHERE username IN ('mallory', 'nobody')")


def test_init_admin_does_not_call_an_existing_non_admin_the_admin(ready: Cli) -> None:
    ready.ok("users", "add", "ed", "--role", "EDITOR", stdin=PASSWORD + "\n")
    out = ready.ok("init", "--admin", "ed")  # no password asked: the account is left alone
    assert "admin user ed" not in out
    assert "user ed: exists, left unchanged, and is NOT an admin (roles EDITOR)" in out
    ready.ok("users", "disable", "root")
    out = ready.ok("init", "--admin", "root")
    assert "user root: exists, left unchanged, and is NOT an admin (disabled, roles ADMIN)" in out
    ready.ok("users", "disable", "root", "--enable")
    assert "admin user root: exists, left unchanged" in ready.ok("init", "--admin", "root")


def test_keys_list_keeps_a_retired_key_for_the_tokens_of_a_former_lifetime(
    tmp_path: Path,
) -> None:
    # After the access-token lifetime is lowered, tokens signed under the former one
    # still live that long: the key's deletion time is the ring's (keep_until), not the
    # one the new settings alone would give.
    cli = Cli(tmp_path / "var")
    cli.ok("init")
    cli.ok("keys", "rotate", "--force")  # the first key is retired now
    env = clean_env(cli.data_dir, TOKENSMITH_ACCESS_TOKEN_LIFETIME="5m")
    listed = cli.run("keys", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (retired,) = [k for k in json.loads(listed.stdout) if k["state"] == "retired"]
    assert retired["deleted_after"] >= retired["retired_at"] + 15 * 60
