"""Fixtures of the store tests: a real, migrated SQLite file per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tokensmith.store import Database, sqlite_url, upgrade


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database in its own file, disposed after the test."""
    database = Database.open(db_url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()
