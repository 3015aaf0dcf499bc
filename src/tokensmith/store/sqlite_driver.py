"""SQLAlchemy's aiosqlite adapter, with one trip to the driver's thread per statement.

aiosqlite runs each SQLite call on a thread of its own, and every call is a round trip:
the event loop queues it, the thread wakes, runs it and hands the result back through
the loop's self-pipe. SQLAlchemy's adapter makes four such trips for a ``SELECT``
(open a cursor, execute, fetch the rows, close the cursor) and three for other
statements. Each trip costs two thread wake-ups, far more than the statement itself
on a local file: a refresh-token rotation (eight statements) made 26 trips and spent
most of its ~8 ms of CPU on them (BENCHMARKS.md). ``OneTripCursor`` opens, executes,
fetches and closes in a single function run on aiosqlite's thread.

Everything else is the stock adapter's: the connection, its transactions, its error
translation and the server-side cursor (for streamed results), so the ``sqlite+aiosqlite``
URL, its options and its behaviour stay as documented. ``create_engine`` passes
``one_trip_dbapi()`` as the engine's DBAPI ``module``, a documented ``create_engine``
argument.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["OneTripCursor", "one_trip_dbapi"]

_Outcome = tuple[Any, list[Any] | None, int, int | None]
# Seconds to wait for aiosqlite's thread to end after a failed open (it has one call to
# finish, and ends in well under a millisecond).
_STOP_WAIT = 5.0


def _execute(
    connection: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """On aiosqlite's thread: the whole life of a cursor, and what SQLAlchemy reads of it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements each take one trip to the driver's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # Unlike the stock cursor, none is opened on the driver's thread here: _execute
        # opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await self._connection._execute(
                _execute, self._connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = deque(rows) if rows is not None else deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the rows are already here and the cursor is gone."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        """sqlite3 ignores input sizes."""

    def nextset(self) -> None:
        raise self._adapt_connection.dbapi.NotSupportedError("SQLite has no result sets")


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class _OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as the stock adapter: it never holds up exit
        try:
            opened = await_(connection)
        except BaseException:
            # A failed open stops aiosqlite's thread without waiting for it. If the event
            # loop closed first (a CLI command that exits on the error), the thread's last
            # reply to that loop raised and printed a traceback: let it end first.
            connection._thread.join(_STOP_WAIT)
            raise
        return _OneTripConnection(self, opened)


def one_trip_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The aiosqlite DBAPI module for ``create_engine(..., module=...)``."""
    import aiosqlite

    return _OneTripDBAPI(aiosqlite, sqlite3)
