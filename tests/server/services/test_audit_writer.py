"""``AuditWriter`` over a real SQLite file: batching, flush on exit, no loss when full,
retry after a failure (the write lock held by another connection), and the token service
queueing its client_credentials rows through it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tokensmith.server.services.audit_log import AuditLog
from tokensmith.server.services.audit_writer import AuditWriter
from tokensmith.store import AuditEvent, Database, DatabaseUnavailable, Repositories, sqlite_url
from tokensmith.store import upgrade as upgrade_db

from ._tokens_env import Env, make_env

pytestmark = pytest.mark.anyio

AT = 1_750_000_000


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    # A short busy timeout, so a held write lock fails a write quickly.
    database = Database.open(sqlite_url(tmp_path), busy_timeout=0.05)
    await upgrade_db(database)
    try:
        yield database
    finally:
        await database.dispose()


def count_transactions(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one per write transaction opened on ``db``."""
    opened: list[int] = []
    real = db.transaction

    def counting() -> AbstractAsyncContextManager[AsyncSession]:
        opened.append(1)
        return real()

    monkeypatch.setattr(db, "transaction", counting)
    return opened


async def rows(db: Database) -> list[str]:
    """The subjects of the audit rows, oldest first."""
    async with db.read() as session:
        entries = await Repositories(session).audit.page(limit=10_000)
    return [e.subject or "" for e in reversed(entries)]


async def record(writer: AuditWriter, subject: str) -> None:
    await writer.record(
        AuditEvent.TOKEN_ISSUED,
        at=AT,
        actor="svc",
        subject=subject,
        detail={"grant_type": "client_credentials", "jti": subject},
    )


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.01)


@contextmanager
def write_lock_held(tmp_path: Path) -> Iterator[None]:
    """Another connection holds the SQLite write lock: every write here fails (busy)."""
    other = sqlite3.connect(tmp_path / "tokensmith.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_without_run_each_row_is_written_at_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(db)
    opened = count_transactions(db, monkeypatch)
    await record(writer, "a")
    await record(writer, "b")
    assert await rows(db) == ["a", "b"] and writer.pending == 0 and len(opened) == 2


async def test_a_bad_row_fails_its_caller_and_is_never_queued(db: Database) -> None:
    writer = AuditWriter(db)
    with pytest.raises(ValueError, match="secret"):
        await writer.record(AuditEvent.TOKEN_ISSUED, at=AT, detail={"client_secret": "x"})
    with pytest.raises(ValueError):
        await writer.record("no_such_event", at=AT)
    assert writer.pending == 0 and await rows(db) == []


async def test_rows_are_batched_one_transaction_per_interval(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(db, interval=0.2)
    opened = count_transactions(db, monkeypatch)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        for n in range(10):
            await record(writer, f"r{n}")
        assert writer.pending == 10 and await rows(db) == []  # nothing written yet
        await until(lambda: writer.pending == 0)
        assert await rows(db) == [f"r{n}" for n in range(10)]
        assert len(opened) == 1  # all ten in one transaction
        writer.stop()


async def test_batch_size_rows_are_written_without_waiting_for_the_interval(
    db: Database,
) -> None:
    writer = AuditWriter(db, interval=3600, batch_size=5, max_queued=50)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        for n in range(4):
            await record(writer, f"r{n}")
        await anyio.sleep(0.1)
        assert writer.pending == 4 and await rows(db) == []
        await record(writer, "r4")
        await until(lambda: writer.pending == 0)
        assert await rows(db) == [f"r{n}" for n in range(5)]
        writer.stop()


async def test_stop_and_aclose_flush_what_is_queued(db: Database) -> None:
    writer = AuditWriter(db, interval=3600)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        for n in range(3):
            await record(writer, f"r{n}")
        assert writer.pending == 3
        writer.stop()  # the task group then waits for run(), which flushes
    assert await rows(db) == ["r0", "r1", "r2"] and not writer.running

    # aclose (what build_services calls on exit) flushes too, even if run() never saw a stop.
    second = AuditWriter(db, interval=3600)
    async with anyio.create_task_group() as group:
        group.start_soon(second.run)
        await until(lambda: second.running)
        await record(second, "r3")
        await second.aclose()
        assert await rows(db) == ["r0", "r1", "r2", "r3"]
        await record(second, "r4")  # after aclose: written at once by its caller
        assert await rows(db) == ["r0", "r1", "r2", "r3", "r4"]


async def test_a_full_queue_makes_the_caller_write_its_own_row(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(
        db, interval=3600, batch_size=2, max_queued=2, retry_delay=3600, max_retry_delay=3600
    )
    opened = count_transactions(db, monkeypatch)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        with write_lock_held(tmp_path):
            # The first two fill the queue; the drain they wake fails on the lock, so they
            # stay queued (retried later), and the queue stays full.
            await record(writer, "q0")
            await record(writer, "q1")
            await until(lambda: len(opened) >= 1)
            assert writer.pending == 2
            # Full, and the database refuses: the caller is told, nothing is dropped silently.
            with pytest.raises(DatabaseUnavailable):
                await record(writer, "refused")
            assert writer.pending == 2
        # The database is back (the drain waits to retry); the caller writes its own row.
        await record(writer, "direct")
        assert "direct" in await rows(db)
        await writer.flush()
        assert sorted(await rows(db)) == ["direct", "q0", "q1"]
        writer.stop()


async def test_a_failed_batch_is_kept_and_retried(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(db, interval=0.05, retry_delay=0.1, max_retry_delay=0.2)
    caplog.set_level(logging.ERROR, logger="tokensmith.server.audit")
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        with write_lock_held(tmp_path):
            for n in range(3):
                await record(writer, f"r{n}")
            await until(lambda: "retrying" in caplog.text)
            assert writer.pending == 3  # kept, in order
            await record(writer, "r3")
        await until(lambda: writer.pending == 0)
        assert await rows(db) == ["r0", "r1", "r2", "r3"]
        writer.stop()


async def test_flush_keeps_the_rows_when_the_database_fails(db: Database, tmp_path: Path) -> None:
    writer = AuditWriter(db, interval=3600)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.run)
        await until(lambda: writer.running)
        await record(writer, "a")
        await record(writer, "b")
        with write_lock_held(tmp_path), pytest.raises(DatabaseUnavailable):
            await writer.flush()
        assert writer.pending == 2
        assert await writer.flush() == 2
        assert await rows(db) == ["a", "b"]
        writer.stop()


async def test_rows_that_cannot_be_written_at_shutdown_are_logged(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = AuditWriter(db, interval=3600, retry_delay=0.01, close_attempts=2)
    caplog.set_level(logging.ERROR, logger="tokensmith.server.audit")
    with write_lock_held(tmp_path):
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            await until(lambda: writer.running)
            await record(writer, "kept-in-the-log")
            writer.stop()  # run() ends after its last flush, which fails twice on the lock
    assert writer.pending == 0
    assert "at shutdown failed (attempt 2 of 2)" in caplog.text
    assert "1 audit rows could not be written" in caplog.text
    assert '"subject": "kept-in-the-log"' in caplog.text


async def test_bad_settings_are_refused(db: Database) -> None:
    for kwargs in (
        {"interval": 0},
        {"batch_size": 0},
        {"batch_size": 10, "max_queued": 5},
        {"retry_delay": 2, "max_retry_delay": 1},
    ):
        with pytest.raises(ValueError):
            AuditWriter(db, **kwargs)  # type: ignore[arg-type]


# -- through the token service ------------------------------------------------------------


async def test_client_credentials_rows_go_through_the_writer(tmp_path: Path) -> None:
    async with make_env(tmp_path) as env:
        writer = AuditWriter(env.db, interval=3600)
        env.tokens.audit = writer
        new = await env.add_client("svc", grant_types=("client_credentials",), scopes=("jobs",))
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            await until(lambda: writer.running)
            response = await env.tokens.client_credentials_grant(new.client, None)
            jti = env.verify(response)["jti"]
            assert writer.pending == 1
            assert await _issued(env) == []
            # The audit log flushes this process's queue before it reads.
            page = await AuditLog(env.db, writer).page()
            assert page.entries[0].event is AuditEvent.TOKEN_ISSUED
            assert page.entries[0].detail == {
                "grant_type": "client_credentials",
                "jti": jti,
                "scope": "jobs",
            }
            assert page.entries[0].subject == "svc" and page.entries[0].actor == "svc"
            writer.stop()
        assert len(await _issued(env)) == 1


async def _issued(env: Env) -> list[Any]:
    return await env.audit(AuditEvent.TOKEN_ISSUED)
