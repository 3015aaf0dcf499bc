"""Engine settings, transactions and health checks on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from conftest import NOW
from tokensmith.store import (
    DB_FILENAME,
    Database,
    DatabaseUnavailable,
    Repositories,
    UsernameTaken,
    create_engine,
    is_sqlite,
    sqlite_url,
    upgrade,
)

from .helpers import PASSWORD_HASH, add_user, connection_threads_finished

pytestmark = pytest.mark.anyio


async def pragma(db: Database, name: str) -> object:
    async with db.engine.connect() as connection:
        return (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()


def test_sqlite_url_points_into_the_data_directory(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert url == f"sqlite+aiosqlite:///{tmp_path.resolve() / DB_FILENAME}"
    assert is_sqlite(url)
    assert not is_sqlite("postgresql+asyncpg://u@localhost/tokensmith")


async def test_wal_foreign_keys_and_busy_timeout_on_every_connection(db: Database) -> None:
    assert await pragma(db, "journal_mode") == "wal"
    # Two connections held at once: each got the per-connection PRAGMAs.
    async with db.engine.connect() as first, db.engine.connect() as second:
        for connection in (first, second):
            fk = await connection.exec_driver_sql("PRAGMA foreign_keys")
            busy = await connection.exec_driver_sql("PRAGMA busy_timeout")
            assert (fk.scalar_one(), busy.scalar_one()) == (1, 5000)


async def test_a_new_database_file_and_its_wal_are_private(tmp_path: Path) -> None:
    # Password hashes and sealed keys: not for other users, even in an open directory.
    tmp_path.chmod(0o755)
    async with Database.open(sqlite_url(tmp_path)) as db:
        await upgrade(db)
        await add_user(db)
        files = sorted(tmp_path.glob(DB_FILENAME + "*"))
        assert [f.name for f in files] == [DB_FILENAME, f"{DB_FILENAME}-shm", f"{DB_FILENAME}-wal"]
        assert {f.stat().st_mode & 0o777 for f in files} == {0o600}


async def test_an_existing_database_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    path.touch(mode=0o640)
    path.chmod(0o640)
    async with Database.open(sqlite_url(tmp_path)) as db:
        await upgrade(db)
    assert path.stat().st_mode & 0o777 == 0o640


async def test_busy_timeout_is_configurable(db_url: str) -> None:
    async with Database.open(db_url, busy_timeout=0.25) as db:
        assert await pragma(db, "busy_timeout") == 250
    with pytest.raises(ValueError, match="busy_timeout"):
        create_engine(db_url, busy_timeout=-1)


async def test_the_wal_file_is_used(db: Database, tmp_path: Path) -> None:
    await add_user(db)
    assert (tmp_path / f"{DB_FILENAME}-wal").exists()


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await Repositories(session).refresh_tokens.add(
                token_hash="0" * 64,
                family_id="f",
                user_id=42,  # no such user
                client_id="nobody",
                scope="",
                issued_at=NOW,
                expires_at=NOW + 60,
                family_expires_at=NOW + 60,
            )


async def test_a_transaction_commits_when_the_block_ends(db: Database) -> None:
    async with db.transaction() as session:
        await Repositories(session).users.add("alice", PASSWORD_HASH, now=NOW)
    async with db.read() as session:
        assert await Repositories(session).users.get_by_username("alice") is not None


async def test_an_error_rolls_back_every_write_of_the_transaction(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as session:
            repos = Repositories(session)
            await repos.users.add("alice", PASSWORD_HASH, now=NOW)
            await repos.audit.record("user_created", at=NOW, subject="alice")
            await repos.revocations.add("jti-1", "alice", NOW + 60, NOW)
            raise Boom
    async with db.engine.connect() as connection:
        for table in ("users", "audit_log", "revoked_tokens"):
            count = await connection.execute(text(f"SELECT count(*) FROM {table}"))
            assert count.scalar_one() == 0, table
        # The feed counter did not move either.
        value = await connection.execute(text("SELECT value FROM counters"))
        assert value.scalar_one() == 0


async def test_a_refused_insert_does_not_spoil_the_transaction(db: Database) -> None:
    # The duplicate is refused inside a savepoint; the rest of the transaction commits.
    await add_user(db, "alice")
    async with db.transaction() as session:
        repos = Repositories(session)
        with pytest.raises(UsernameTaken):
            await repos.users.add("ALICE", PASSWORD_HASH, now=NOW)
        await repos.users.add("bob", PASSWORD_HASH, now=NOW)
    async with db.read() as session:
        names = [u.username for u in await Repositories(session).users.list()]
    assert names == ["alice", "bob"]


async def test_read_sessions_do_not_write(db: Database) -> None:
    async with db.read() as session:
        await Repositories(session).users.add("alice", PASSWORD_HASH, now=NOW)
    async with db.read() as session:
        assert await Repositories(session).users.get_by_username("alice") is None


async def test_transactions_take_the_write_lock_up_front(db_url: str) -> None:
    # BEGIN IMMEDIATE: a writer of another process waits at BEGIN (here it may not wait
    # at all), instead of failing later at its first write with a stale snapshot.
    await upgrade(db_url)
    async with (
        Database.open(db_url, busy_timeout=0) as db,
        Database.open(db_url, busy_timeout=0) as other,
    ):
        async with db.transaction():
            with pytest.raises(DatabaseUnavailable):
                async with other.transaction():
                    pass
            # Readers are not blocked by the writer (WAL).
            async with db.read() as session:
                assert await Repositories(session).users.list() == []
        await connection_threads_finished()


async def test_writers_of_one_process_queue_instead_of_failing(db_url: str) -> None:
    # With no busy timeout at all, concurrent writers of one Database still all succeed:
    # they wait their turn on the in-process lock, not in SQLite's busy handler.
    await upgrade(db_url)
    async with Database.open(db_url, busy_timeout=0) as db:

        async def write(name: str) -> None:
            async with db.transaction() as session:
                await Repositories(session).users.add(name, PASSWORD_HASH, now=NOW)
                await anyio.sleep(0)  # hold the transaction across a switch

        async with anyio.create_task_group() as group:
            for i in range(10):
                group.start_soon(write, f"user{i}")
        async with db.read() as session:
            assert len(await Repositories(session).users.list()) == 10


async def test_a_transaction_inside_another_is_refused(db_url: str) -> None:
    await upgrade(db_url)
    async with Database.open(db_url) as db:
        async with db.transaction():
            with pytest.raises(RuntimeError, match="inside another"):
                async with db.transaction():
                    pass
        async with db.transaction():  # the outer one ended: writing works again
            pass


async def test_ping(db: Database, tmp_path: Path) -> None:
    assert await db.ping()
    missing = tmp_path / "no" / "such" / "dir"
    async with Database.open(sqlite_url(missing)) as unreachable:
        assert not await unreachable.ping()
    await connection_threads_finished()


async def test_an_unreachable_database_raises_database_unavailable(tmp_path: Path) -> None:
    async with Database.open(sqlite_url(tmp_path / "missing-dir")) as db:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with db.transaction():
                pass
    assert caught.value.code == "database_unavailable"
    assert str(tmp_path) not in str(caught.value)
    await connection_threads_finished()


async def test_sql_errors_do_not_show_parameters(db: Database) -> None:
    # Parameters hold password and token hashes; hide_parameters keeps them out of errors.
    await add_user(db, "alice")
    secret_looking = "$argon2id$v=19$m=1,t=1,p=1$DISTINCTIVE"
    with pytest.raises(IntegrityError) as caught:
        async with db.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO users (username, password_hash, roles, disabled, profile,"
                    " created_at, updated_at) VALUES ('alice', :h, '[]', 0, '{}', 1, 1)"
                ),
                {"h": secret_looking},
            )
    assert "DISTINCTIVE" not in str(caught.value)


async def test_migrating_an_unusable_database_raises_database_unavailable(tmp_path: Path) -> None:
    # upgrade() runs before any transaction (serve, every CLI command): its failures
    # must be the store's error too, with a reason and no path.
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / DB_FILENAME).write_bytes(b"not a database " * 500)
    locked = tmp_path / "locked"
    locked.mkdir()
    await upgrade(sqlite_url(locked))
    cases = {
        sqlite_url(tmp_path / "missing-dir"): "cannot open the database file",
        sqlite_url(garbage): "the database file is not a SQLite database",
    }
    for url, reason in cases.items():
        with pytest.raises(DatabaseUnavailable, match=reason) as caught:
            await upgrade(url)
        assert str(tmp_path) not in str(caught.value)
        async with Database.open(url) as db:
            assert not await db.ping()
            with pytest.raises(DatabaseUnavailable, match=reason):
                async with db.read() as session:
                    await session.execute(text("SELECT 1"))
    async with (
        Database.open(sqlite_url(locked), busy_timeout=0) as holder,
        Database.open(sqlite_url(locked), busy_timeout=0) as other,
        holder.transaction(),
    ):
        with pytest.raises(DatabaseUnavailable, match="another process holds the database lock"):
            await upgrade(other)
    await connection_threads_finished()
