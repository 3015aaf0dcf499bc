"""Migrations: from empty to head, idempotent, matching the models exactly, and a schema
newer than the code refused unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import BigInteger, Column, Index, MetaData, Table, inspect, text
from sqlalchemy.engine import Connection

from tokensmith.store import (
    Database,
    LoginFailure,
    Repositories,
    StoreError,
    UnknownSchemaRevision,
    create_engine,
    current_revision,
    head_revision,
    make_config,
    upgrade,
    upgrade_sync,
)
from tokensmith.store.migrate import MIGRATIONS
from tokensmith.store.models import Base

pytestmark = pytest.mark.anyio

TABLES = {
    "users",
    "clients",
    "signing_keys",
    "refresh_tokens",
    "revoked_tokens",
    "subject_not_before",
    "counters",
    "audit_log",
    "login_failures",
}


async def differences(db: Database, metadata: MetaData) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with db.engine.connect() as connection:
        return await connection.run_sync(compare)


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    async with Database.open(db_url) as db:
        assert await current_revision(db) is None
        assert await table_names(db) == set()
        await upgrade(db)
        assert await table_names(db) == TABLES | {"alembic_version"}
        assert await current_revision(db) == head_revision() == "0003"


async def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    async with db.transaction() as session:
        await Repositories(session).audit.record("login_ok", at=1, subject="alice")
    await upgrade(db)
    await upgrade(db.engine)
    assert await current_revision(db) == head_revision()
    async with db.read() as session:
        assert len(await Repositories(session).audit.page()) == 1


async def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    # What `alembic check` does: autogenerate against the head schema finds nothing.
    assert await differences(db, Base.metadata) == []


async def test_the_comparison_notices_a_model_change(db: Database) -> None:
    # The check above can fail: a column or an index the migration lacks is reported.
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["users"].append_column(Column("extra", BigInteger, nullable=True))
    Index("ix_clients_disabled", metadata.tables["clients"].c.disabled)
    found = await differences(db, metadata)
    kinds = sorted(diff[0] for diff in found)
    assert kinds == ["add_column", "add_index"]


async def test_a_missing_table_is_noticed(db: Database) -> None:
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("sessions", metadata, Column("id", BigInteger, primary_key=True))
    assert [diff[0] for diff in await differences(db, metadata)] == ["add_table"]


async def test_the_feed_counter_row_is_seeded(db: Database) -> None:
    async with db.engine.connect() as connection:
        rows = (await connection.exec_driver_sql("SELECT name, value FROM counters")).all()
    assert [tuple(row) for row in rows] == [("revocation_feed", 0)]


async def test_partial_unique_indexes_are_created_with_their_condition(db: Database) -> None:
    async with db.engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                " AND tbl_name = 'signing_keys' AND sql IS NOT NULL"
            )
        )
        indexes = {row[0]: row[1] for row in result.all()}
    assert indexes == {
        "ix_signing_keys_one_current_per_alg": (
            "CREATE UNIQUE INDEX ix_signing_keys_one_current_per_alg ON signing_keys (alg) "
            "WHERE state = 'current'"
        ),
        "ix_signing_keys_one_next_per_alg": (
            "CREATE UNIQUE INDEX ix_signing_keys_one_next_per_alg ON signing_keys (alg) "
            "WHERE state = 'next'"
        ),
    }


async def test_downgrade_to_base_and_back(db: Database) -> None:
    def downgrade(connection: Connection) -> None:
        config = make_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with db.engine.begin() as connection:
        await connection.run_sync(downgrade)
    assert await table_names(db) == {"alembic_version"}
    await upgrade(db)
    assert await differences(db, Base.metadata) == []


async def run_alembic(db: Database, action: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = make_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(run)


async def test_0002_gives_login_failures_float_times_and_an_expiry(db_url: str) -> None:
    # Counters written under 0001 (whole seconds, no expiry) survive the upgrade with the
    # latest expiry any policy could have given them: one day of quiet, or the lock's end.
    async with Database.open(db_url) as db:
        await upgrade(db, "0001")
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO login_failures (key, count, first_at, last_at, locked_until) "
                "VALUES ('idle', 3, 100, 200, NULL), ('locked', 25, 100, 200, 500000)"
            )
        await upgrade(db, "0002")
        assert await current_revision(db) == "0002"
        async with db.read() as session:
            failures = await Repositories(session).login_failures.get_many(["idle", "locked"])
        assert failures["idle"] == LoginFailure("idle", 3, 100.0, 200.0, None, 200.0 + 86_400)
        assert failures["locked"] == LoginFailure("locked", 25, 100.0, 200.0, 500_000.0, 500_000.0)
        await upgrade(db)
        assert await differences(db, Base.metadata) == []

        # Sub-second times are kept exactly, and going back rounds them up: a lock or a
        # delay never ends earlier than recorded.
        async with db.transaction() as session:
            await Repositories(session).login_failures.put(
                LoginFailure("idle", 4, 100.25, 200.5, 300.0001, 400.75)
            )
        await run_alembic(db, "downgrade", "0001")
        async with db.engine.connect() as connection:
            result = await connection.exec_driver_sql(
                "SELECT key, first_at, last_at, locked_until, typeof(last_at) FROM login_failures"
                " ORDER BY key"
            )
            rows = [tuple(row) for row in result.all()]
        assert rows == [
            ("idle", 101, 201, 301, "integer"),
            ("locked", 100, 200, 500_000, "integer"),
        ]


async def test_0003_adds_the_access_scope_of_refresh_tokens(db_url: str) -> None:
    # Rows from before keep a NULL access_scope (a repeat of one narrows as it used to).
    async with Database.open(db_url) as db:
        await upgrade(db, "0002")
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO users (username, password_hash, roles, disabled, profile, "
                "created_at, updated_at) VALUES ('alice', '$argon2id$x', '[]', 0, '{}', 1, 1)"
            )
            await connection.exec_driver_sql(
                "INSERT INTO clients (client_id, grant_types, scopes, audiences, disabled, "
                "created_at, updated_at) VALUES ('web', '[]', '[]', '[]', 0, 1, 1)"
            )
            await connection.exec_driver_sql(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope, "
                "issued_at, expires_at, family_expires_at, access_jti, access_expires_at) "
                f"VALUES ('{'a' * 64}', 'f', 1, 'web', 'read', 1, 2, 3, 'j', 4)"
            )
        await upgrade(db)
        assert await current_revision(db) == "0003"
        async with db.read() as session:
            row = await Repositories(session).refresh_tokens.get_by_hash("a" * 64)
        assert row is not None and row.access_jti == "j" and row.access_scope is None
        assert await differences(db, Base.metadata) == []
        await run_alembic(db, "downgrade", "0002")
        assert await current_revision(db) == "0002"


def test_upgrade_sync_for_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == head_revision()


async def test_an_upgrade_that_fails_midway_leaves_the_database_empty(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DDL is transactional on SQLite with our BEGIN: a failing revision rolls back whole.
    real = Operations.create_table
    calls = 0

    def failing_create_table(self: Operations, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("simulated failure during the migration")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Operations, "create_table", failing_create_table)
    async with Database.open(db_url) as db:
        with pytest.raises(RuntimeError, match="simulated"):
            await upgrade(db)
        assert await table_names(db) == set()
        assert await current_revision(db) is None


def test_migrations_ship_inside_the_package() -> None:
    # No alembic.ini at run time: the script location is the package directory.
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS / "versions" / "0002_login_failures_instants.py").is_file()
    assert (MIGRATIONS / "versions" / "0003_refresh_access_scope.py").is_file()
    assert make_config().get_main_option("script_location") == str(MIGRATIONS)


async def test_upgrade_accepts_a_url_and_disposes_its_engine(db_url: str) -> None:
    await upgrade(db_url)
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def schema_of(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        rows += connection.execute("SELECT 'version', version_num, '' FROM alembic_version")
    connection.close()
    return rows


@pytest.mark.parametrize("revision", ["9999", "0004_from_a_newer_tokensmith"])
async def test_a_schema_at_an_unknown_revision_is_refused_unchanged(
    tmp_path: Path, revision: str
) -> None:
    # A newer tokensmith upgraded the database, then this one started: Alembic raised its
    # CommandError (a traceback at start, text that may quote the URL). The store names
    # the revision it read, and the URL never (it may hold a password).
    path = tmp_path / "secret-DISTINCTIVE.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    connection.close()
    before = schema_of(path)
    with pytest.raises(UnknownSchemaRevision) as caught:
        await upgrade(url)
    error = caught.value
    assert isinstance(error, StoreError)
    assert error.code == "unknown_schema_revision"
    assert error.message == (
        f"the database schema is at revision {revision!r}, which this version of "
        "tokensmith does not know (was it upgraded by a newer one?)"
    )
    assert "DISTINCTIVE" not in str(error)
    assert schema_of(path) == before
    async with Database.open(url) as db:
        with pytest.raises(UnknownSchemaRevision):
            await upgrade(db, "0003")  # an explicit target: the same refusal
        assert await current_revision(db) == revision


async def test_a_schema_behind_head_is_still_upgraded(db_url: str) -> None:
    # The check knows every packaged revision, not only the head.
    async with Database.open(db_url) as db:
        await upgrade(db, "0001")
        await upgrade(db)
        assert await current_revision(db) == head_revision()
