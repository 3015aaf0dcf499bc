"""A database the commands cannot use is an ``error: CODE: message``, never a traceback.

Each case runs the real console script (``Cli.run`` fails on any traceback) and checks
that the message names the problem without the master key or the file's content.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tokensmith.keys import MasterKey

from ._server_cli import PASSWORD, Cli, clean_env

UNAVAILABLE = "error: database_unavailable: The database is unavailable: "
MAX_SINCE = 253_402_300_799  # 9999-12-31T23:59:59Z, as docs/cli.md says


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("db-errors") / "var")
    runner.ok("init", "--admin", "root", stdin=PASSWORD + "\n")
    return runner


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    # As another process would: the write lock taken and held until the block ends.
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def test_serve_with_a_missing_data_directory_and_the_key_in_the_environment(
    tmp_path: Path,
) -> None:
    # With the master key in the environment nothing creates the directory, and SQLite
    # does not create a file's directory either.
    key = MasterKey.generate().to_text()
    missing = tmp_path / "no" / "such" / "dir"
    cli = Cli(missing)
    env = clean_env(missing, TOKENSMITH_MASTER_KEY=key)
    result = cli.run("serve", "--host", "127.0.0.1", "--port", "1", env=env)
    assert result.returncode == 1
    assert result.stderr == UNAVAILABLE + (
        "cannot open the database file (does its directory exist?)\n"
    )
    assert key not in result.stderr + result.stdout
    assert not missing.exists()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o700)
    # A key file, as init made it: without one, the command stops before the database.
    key_file = data_dir / "master.key"
    key_file.write_text(MasterKey.generate().to_text() + "\n")
    key_file.chmod(0o600)
    (data_dir / "tokensmith.db").write_bytes(b"DISTINCTIVE-CONTENT " * 400)
    result = Cli(data_dir).run("users", "list")
    assert result.returncode == 1
    assert result.stderr == UNAVAILABLE + "the database file is not a SQLite database\n"
    assert "DISTINCTIVE" not in result.stderr


def test_a_database_locked_by_another_process(ready: Cli) -> None:
    with write_lock_held(ready.data_dir / "tokensmith.db"):
        # Waits the busy timeout (5 s), then gives up.
        result = ready.run("users", "list")
    assert result.returncode == 1
    assert result.stderr == UNAVAILABLE + (
        "another process holds the database lock (waited the busy timeout)\n"
    )
    assert ready.ok("users", "list", "--json")  # the lock gone, the command works again


@pytest.mark.parametrize(
    "since", ["@99999999999999999999999", f"@{MAX_SINCE + 1}", "@" + "9" * 5000]
)
def test_audit_since_past_year_9999_is_a_usage_error(ready: Cli, since: str) -> None:
    result = ready.run("audit", "--since", since)
    assert result.returncode == 2
    assert f"'--since': @UNIX_SECONDS must be at most {MAX_SINCE}" in result.stderr


def test_audit_since_at_the_bounds(ready: Cli) -> None:
    assert ready.ok("audit", "--since", f"@{MAX_SINCE}") == "no events\n"
    assert ready.ok("audit", "--since", "@000", "--limit", "1", "--json").startswith("[")


def test_any_other_database_error_names_only_its_type(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    cli.ok("init")
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as connection:
        # A write the store does not expect to fail: its own text must not be shown.
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'DISTINCTIVE'); END"
        )
    result = cli.run("users", "add", "bob", stdin=PASSWORD + "\n")
    assert result.returncode == 1
    assert result.stderr == (
        "error: store_error: the database refused the operation (IntegrityError)\n"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # asyncpg is not a dependency (PostgreSQL support is a later issue).
        (
            "postgresql+asyncpg://app:pw-DISTINCTIVE@db.internal/ts",
            "The driver of 'postgresql+asyncpg' is not installed (pip install asyncpg).",
        ),
        (
            # SQLAlchemy's async default for postgresql:// is psycopg (3), not installed.
            "postgresql://app:pw-DISTINCTIVE@db.internal/ts",
            "The driver of 'postgresql+psycopg' is not installed (pip install psycopg).",
        ),
        (
            "postgresql+psycopg2://app:pw-DISTINCTIVE@db.internal/ts",
            "The driver 'postgresql+psycopg2' is synchronous: use an async one, "
            "like sqlite+aiosqlite or postgresql+asyncpg.",
        ),
        (
            "sqlite:////tmp/pw-DISTINCTIVE.db",
            "The driver 'sqlite+pysqlite' is synchronous: use an async one, "
            "like sqlite+aiosqlite or postgresql+asyncpg.",
        ),
        (
            "nosuch://app:pw-DISTINCTIVE@db.internal/ts",
            "Unknown database dialect or driver 'nosuch'.",
        ),
    ],
)
@pytest.mark.parametrize("command", [("users", "list"), ("serve", "--port", "1")])
def test_a_database_url_no_installed_async_driver_serves(
    tmp_path: Path, url: str, message: str, command: tuple[str, ...]
) -> None:
    cli = Cli(tmp_path / "var")
    key = MasterKey.generate().to_text()
    env = clean_env(cli.data_dir, TOKENSMITH_DATABASE_URL=url, TOKENSMITH_MASTER_KEY=key)
    result = cli.run(*command, env=env)
    assert result.returncode == 1
    assert result.stderr == f"error: database_unsupported: {message}\n"
    assert "DISTINCTIVE" not in result.stdout + result.stderr
