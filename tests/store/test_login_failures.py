"""Failed-login counters: increment, lock, reset, prune."""

from __future__ import annotations

import asyncio

import pytest

from conftest import NOW
from tokensmith.store import Database, LoginFailure, Repositories

pytestmark = pytest.mark.anyio

KEY = "u:alice|ip:192.0.2.1"


async def increment(db: Database, key: str, at: int) -> LoginFailure:
    async with db.transaction() as session:
        return await Repositories(session).login_failures.increment(key, at)


async def test_increment_counts_from_one(db: Database) -> None:
    assert await increment(db, KEY, NOW) == LoginFailure(KEY, 1, NOW, NOW, None)
    assert await increment(db, KEY, NOW + 5) == LoginFailure(KEY, 2, NOW, NOW + 5, None)
    async with db.read() as session:
        failures = Repositories(session).login_failures
        assert (await failures.get(KEY)) == LoginFailure(KEY, 2, NOW, NOW + 5, None)
        assert await failures.get("ip:192.0.2.1") is None
        found = await failures.get_many([KEY, "ip:192.0.2.1"])
    assert list(found) == [KEY]


async def test_concurrent_increments_are_all_counted(db: Database) -> None:
    await asyncio.gather(*(increment(db, KEY, NOW) for _ in range(8)))
    async with db.read() as session:
        failure = await Repositories(session).login_failures.get(KEY)
    assert failure is not None and failure.count == 8


async def test_lock_and_reset(db: Database) -> None:
    await increment(db, KEY, NOW)
    async with db.transaction() as session:
        failures = Repositories(session).login_failures
        await failures.lock(KEY, NOW + 60)
        locked = await failures.get(KEY)
        assert locked is not None and locked.locked(NOW + 59) and not locked.locked(NOW + 60)
        with pytest.raises(LookupError):
            await failures.lock("ip:198.51.100.7", NOW + 60)
        await failures.reset(KEY)
        assert await failures.get(KEY) is None


async def test_prune_spares_recent_and_locked_counters(db: Database) -> None:
    await increment(db, "old", NOW)
    await increment(db, "old-locked", NOW)
    await increment(db, "recent", NOW + 900)
    async with db.transaction() as session:
        failures = Repositories(session).login_failures
        await failures.lock("old-locked", NOW + 2000)
        assert await failures.prune(NOW + 1000, idle=600) == 1
        assert sorted(await failures.get_many(["old", "old-locked", "recent"])) == [
            "old-locked",
            "recent",
        ]
        assert await failures.prune(NOW + 2000, idle=600) == 2


async def test_keys_are_checked(db: Database) -> None:
    with pytest.raises(ValueError):
        await increment(db, "", NOW)
    with pytest.raises(ValueError):
        await increment(db, "k" * 511, NOW)
