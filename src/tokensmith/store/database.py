"""Engine, sessions and transactions.

SQLite settings, applied on every new connection (a "connect" event), because
PRAGMAs other than journal_mode are per connection:

- ``journal_mode=WAL``: readers never block the writer nor the writer readers;
- ``foreign_keys=ON``: off by default in SQLite;
- ``busy_timeout``: a writer waits for the lock instead of failing at once.

The sqlite3 driver's own transaction handling is switched off (it issues no
BEGIN before a SELECT, so reads are not repeatable, and none before DDL or
SAVEPOINT); SQLAlchemy emits BEGIN itself, as its SQLite documentation
recommends. ``Database.transaction()`` begins with ``BEGIN IMMEDIATE``: it
takes the write lock up front, so a transaction that reads and then writes
waits its turn instead of failing with SQLITE_BUSY when another writer
committed after its read. Hold no transaction across slow work (password
hashing, key generation): on SQLite it holds the one write lock.

On SQLite, the writers of one process also queue on an in-process lock before BEGIN:
SQLite's busy handler sleeps in growing, unfair steps, so under concurrent writers a
request could wait a second or more (refresh p99 ~1 s at 4 connections) while the
lock serves them in order (p99 ~60 ms). Other processes still meet the busy timeout.
A transaction opened inside another of the same task would wait for itself: it is
refused with ``RuntimeError`` instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from .errors import DatabaseUnavailable, DatabaseUnsupported
from .sqlite_driver import one_trip_dbapi

__all__ = [
    "DB_FILENAME",
    "Database",
    "create_engine",
    "is_sqlite",
    "is_unavailable",
    "session_factory",
    "sqlite_url",
    "translate_unavailable",
    "write_options",
]

DB_FILENAME = "tokensmith.db"
DEFAULT_BUSY_TIMEOUT = 5.0

# Execution option read by the "begin" hook: how a SQLite transaction begins.
_BEGIN_OPTION = "tokensmith_sqlite_begin"
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE"}

# Failures of the connection, not of the statement: the server answers 503 and
# recovers on its own once the database is back. (OSError only around ping: in a
# transaction it may come from the caller's own code.)
_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

# A file that is no database, or a damaged one, fails every statement alike: the
# database is unusable, not the statement wrong (sqlite3 raises a bare DatabaseError).
_UNUSABLE_FILE = {"SQLITE_NOTADB", "SQLITE_CORRUPT"}

# Fixed texts by SQLite result code: the driver's own message may name paths or SQL,
# and these reach the operator's terminal and the logs.
_SQLITE_REASONS = {
    "SQLITE_CANTOPEN": "cannot open the database file (does its directory exist?)",
    "SQLITE_NOTADB": "the database file is not a SQLite database",
    "SQLITE_CORRUPT": "the database file is damaged",
    "SQLITE_BUSY": "another process holds the database lock (waited the busy timeout)",
    "SQLITE_LOCKED": "another process holds the database lock (waited the busy timeout)",
    "SQLITE_READONLY": "the database file is read-only",
    "SQLITE_PERM": "permission to the database file was denied",
    "SQLITE_FULL": "the disk holding the database is full",
    "SQLITE_IOERR": "reading or writing the database file failed",
}


def sqlite_url(data_dir: Path) -> str:
    """The default database: ``tokensmith.db`` in the data directory, via aiosqlite."""
    path = Path(data_dir).resolve() / DB_FILENAME
    return str(URL.create("sqlite+aiosqlite", database=str(path)))


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database URL; None for another database, memory or a URI."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def create_engine(
    url: str | URL,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine; on SQLite with WAL, foreign keys and a busy timeout on every connection.

    SQL parameters are hidden from logs and error messages: they hold password
    hashes, token hashes and sealed keys.
    """
    if busy_timeout < 0:
        raise ValueError("busy_timeout must not be negative")
    parsed = make_url(url)
    check_driver(parsed)
    sqlite = parsed.get_backend_name() == "sqlite"
    # A server connection can drop while pooled (the server recovers without a
    # restart when the database returns); a SQLite file cannot, so no ping there.
    options: dict[str, Any] = {}
    if parsed.get_driver_name() == "aiosqlite":
        options["module"] = one_trip_dbapi()  # one thread trip per statement (sqlite_driver.py)
    engine = _create_async_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=not sqlite, **options
    )
    if sqlite:
        _create_private_file(sqlite_file(parsed))
        _configure_sqlite(engine, busy_timeout)
    return engine


def _create_private_file(database: Path | None) -> None:
    """Create a SQLite file that is not there yet readable by its owner only.

    It holds password hashes and sealed keys, and a data directory made by someone else
    may be open to others; SQLite gives its -wal and -shm files the database's mode. An
    existing file keeps its mode (the operator chose it), and a path that cannot be made
    is left for SQLite to report.
    """
    if database is None:
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError:
        pass


def check_driver(url: URL) -> None:
    """``DatabaseUnsupported`` unless the URL's dialect is known, async and installed.

    Names only the dialect and driver, never the URL (it may hold a password).
    """
    try:
        # As create_async_engine resolves it: postgresql:// means psycopg's async dialect.
        dialect = url.get_dialect(_is_async=True)
    except NoSuchModuleError:
        raise DatabaseUnsupported(
            f"Unknown database dialect or driver {url.drivername!r}."
        ) from None
    name = f"{url.get_backend_name()}+{url.get_driver_name()}"
    if not getattr(dialect, "is_async", False):
        raise DatabaseUnsupported(
            f"The driver {name!r} is synchronous: use an async one, "
            "like sqlite+aiosqlite or postgresql+asyncpg."
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        raise DatabaseUnsupported(
            f"The driver of {name!r} is not installed (pip install {url.get_driver_name()})."
        ) from None


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    timeout_ms = int(busy_timeout * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # None: the driver issues no BEGIN of its own; the "begin" hook below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # In-memory databases answer "memory"; WAL applies to files only.
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        if mode not in _BEGIN_MODES:
            raise ValueError(f"unknown SQLite begin mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Repositories return plain values, so nothing needs refreshing after commit.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def write_options(engine: AsyncEngine) -> dict[str, str]:
    """Execution options for a connection that will write (``BEGIN IMMEDIATE`` on SQLite)."""
    return {_BEGIN_OPTION: "IMMEDIATE"} if engine.dialect.name == "sqlite" else {}


class Database:
    """The engine and its session factory; the unit of work is ``transaction()``.

    ``async with db.transaction() as session:`` commits when the block ends and
    rolls back if it raises, so nothing is half-written. Connection failures
    surface as ``DatabaseUnavailable``.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._writer = anyio.Lock() if engine.dialect.name == "sqlite" else None
        self._writing: ContextVar[bool] = ContextVar("tokensmith_writing", default=False)

    @classmethod
    def open(cls, url: str | URL, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Database:
        return cls(create_engine(url, busy_timeout=busy_timeout))

    @property
    def url(self) -> URL:
        return self.engine.url

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction: commit on success, rollback on error."""
        if self._writer is None:
            async with self._write() as session:
                yield session
            return
        if self._writing.get():
            raise RuntimeError("a transaction was opened inside another one")
        async with self._writer:
            token = self._writing.set(True)
            try:
                async with self._write() as session:
                    yield session
            finally:
                self._writing.reset(token)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        async with self._translated(), self.sessions() as session, session.begin():
            await session.connection(execution_options=write_options(self.engine))
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only snapshot (never takes the SQLite write lock); rolled back at the end."""
        async with self._translated(), self.sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def ping(self) -> bool:
        """True if the database answers a query (for /readyz)."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            if isinstance(exc, OSError) or is_unavailable(exc):
                return False
            raise
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    def _translated(self) -> AbstractAsyncContextManager[None]:
        return translate_unavailable()

    def __repr__(self) -> str:
        # render_as_string hides a password in the URL.
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"


def is_unavailable(exc: BaseException) -> bool:
    """True for a failure of the database itself (unreachable, locked, not a database)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    return isinstance(exc, DBAPIError) and _sqlite_code(exc) in _UNUSABLE_FILE


@asynccontextmanager
async def translate_unavailable() -> AsyncIterator[None]:
    """Raise ``DatabaseUnavailable`` for what ``is_unavailable`` says; let the rest pass."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        reason = _SQLITE_REASONS.get(_sqlite_code(exc) or "")
        message = f"The database is unavailable: {reason}" if reason else None
        # The cause keeps the driver's message for debugging.
        raise DatabaseUnavailable(message) from exc


def _sqlite_code(exc: BaseException) -> str | None:
    """The primary SQLite result code (``SQLITE_IOERR`` for ``SQLITE_IOERR_WRITE``)."""
    name = getattr(getattr(exc, "orig", None), "sqlite_errorname", None)
    if not isinstance(name, str):
        return None
    return "_".join(name.split("_", 2)[:2])
