"""``OneTripCursor``: each statement is one trip to aiosqlite's thread, with the DBAPI
cursor's answers (rows, rowcount, lastrowid, description, errors) unchanged.

On a real SQLite file through ``create_engine``; the trips are counted by wrapping
aiosqlite's own ``Connection._execute``, which still runs every call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.store import create_engine, sqlite_url
from tokensmith.store.sqlite_driver import OneTripCursor

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url(tmp_path))
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"
        )
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_the_engine_uses_the_one_trip_cursor(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, aiosqlite.Connection)
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_a_select_and_an_insert_are_one_trip_each(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("SELECT 1"))  # the connection is checked out
        trips.clear()
        inserted = await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), {"name": "a"}
        )
        assert trips == ["_execute"]
        rows = (await connection.execute(text("SELECT id, name FROM t"))).all()
        assert trips == ["_execute", "_execute"]
    assert inserted.lastrowid == 1
    assert [tuple(row) for row in rows] == [(1, "a")]


async def test_rowcount_description_and_executemany(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        many = await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": n} for n in "abc"]
        )
        assert many.rowcount == 3
        updated = await connection.execute(
            text("UPDATE t SET name = name || '!' WHERE name != :keep"), {"keep": "a"}
        )
        assert updated.rowcount == 2
        empty = await connection.execute(text("SELECT id, name FROM t WHERE id < 0"))
        assert list(empty.keys()) == ["id", "name"] and empty.all() == []
        names = (await connection.execute(text("SELECT name FROM t ORDER BY id"))).scalars()
        assert names.all() == ["a", "b!", "c!"]


async def test_fetching_part_of_the_rows_and_streaming(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": str(n)} for n in range(5)]
        )
        result = await connection.execute(text("SELECT name FROM t ORDER BY id"))
        assert result.fetchmany(2) == [("0",), ("1",)]
        assert result.fetchone() == ("2",)
        assert result.fetchall() == [("3",), ("4",)]
        streamed = await connection.stream(text("SELECT name FROM t ORDER BY id"))
        assert [row async for row in streamed.scalars()] == ["0", "1", "2", "3", "4"]


async def test_errors_are_the_drivers_and_leave_the_connection_usable(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO t (name) VALUES ('x')"))
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO t (name) VALUES ('x')"))
        with pytest.raises(OperationalError):
            await connection.execute(text("SELECT nothing FROM nowhere"))
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_a_failed_open_leaves_no_driver_thread_running(tmp_path: Path) -> None:
    # A CLI command that fails to open the database closes its event loop at once; a
    # driver thread still running then replied to a closed loop (a printed traceback).
    import threading

    engine = create_engine(sqlite_url(tmp_path / "no" / "such" / "dir" / "db.sqlite"))
    before = set(threading.enumerate())
    try:
        with pytest.raises(OperationalError):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
    finally:
        await engine.dispose()
