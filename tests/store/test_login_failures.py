"""Failed-login counters: put (upsert), get, update (atomic), reset, prune by expiry.

The repository used to count with ``increment``/``lock`` and prune by idleness, in whole
seconds; it now holds the throttle's state as is (float times, the expiry its policy
gave it), so these tests follow the new shape.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

import pytest

from conftest import NOW
from tokensmith.store import ConcurrentChange, Database, LoginFailure, Repositories

pytestmark = pytest.mark.anyio

KEY = "user:alice|ip:192.0.2.1"
# Sub-second instants, as the throttle's clock gives them.
AT = NOW + 0.123456789
FAILURE = LoginFailure(KEY, 1, AT, AT, None, AT + 900)


def counted(failure: LoginFailure | None, at: float = AT) -> LoginFailure:
    """One more failure (the change a throttle would apply, minus its policy)."""
    if failure is None:
        return LoginFailure(KEY, 1, at, at, None, at + 900)
    return replace(failure, count=failure.count + 1, last_at=at, expires_at=at + 900)


async def put(db: Database, failure: LoginFailure) -> None:
    async with db.transaction() as session:
        await Repositories(session).login_failures.put(failure)


async def get(db: Database, key: str = KEY) -> LoginFailure | None:
    async with db.read() as session:
        return await Repositories(session).login_failures.get(key)


async def count_one(db: Database) -> LoginFailure | None:
    async with db.transaction() as session:
        return await Repositories(session).login_failures.update(KEY, counted)


async def test_put_and_get_keep_every_field_exactly(db: Database) -> None:
    assert await get(db) is None
    await put(db, FAILURE)
    assert await get(db) == FAILURE
    locked = LoginFailure(KEY, 20, AT, AT + 0.5, AT + 900.25, AT + 900.25)
    await put(db, locked)  # an upsert: replaces the counter
    stored = await get(db)
    assert stored == locked
    assert stored is not None and stored.locked(AT + 900.2) and not stored.locked(AT + 900.25)
    async with db.read() as session:
        found = await Repositories(session).login_failures.get_many([KEY, "ip:192.0.2.1"])
    assert found == {KEY: locked}


async def test_update_creates_changes_and_deletes(db: Database) -> None:
    assert await count_one(db) == FAILURE
    assert await count_one(db) == replace(FAILURE, count=2)
    async with db.transaction() as session:
        failures = Repositories(session).login_failures
        assert await failures.update(KEY, lambda failure: None) is None
        assert await failures.get(KEY) is None
        assert await failures.update(KEY, lambda failure: None) is None  # nothing to delete
        with pytest.raises(ValueError, match="key"):
            await failures.update(KEY, lambda failure: replace(FAILURE, key="other"))


async def test_concurrent_updates_through_two_databases_are_all_counted(
    db: Database, db_url: str
) -> None:
    # Two "workers": separate engines and connections on one SQLite file. Each update is
    # a read-modify-write; were the read and the write separate transactions, concurrent
    # ones would overwrite each other's counts.
    n = 40
    async with Database.open(db_url) as other:
        results = await asyncio.gather(*(count_one(each) for each in [db, other] * n))
        final = await get(other)
    assert final is not None and final.count == 2 * n
    # Every update saw a different count: none read a state another had already changed.
    assert sorted(r.count for r in results if r is not None) == list(range(1, 2 * n + 1))


async def test_update_gives_up_only_when_the_row_keeps_changing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokensmith.store import login_failures

    async def vanished(self: login_failures.LoginFailureRepository, values: object) -> bool:
        return False  # as if the row were deleted between our read and our write, always

    await put(db, FAILURE)
    monkeypatch.setattr(login_failures.LoginFailureRepository, "_replace", vanished)
    calls = 0

    def change(failure: LoginFailure | None) -> LoginFailure:
        nonlocal calls
        calls += 1
        return counted(failure)

    with pytest.raises(ConcurrentChange):
        async with db.transaction() as session:
            await Repositories(session).login_failures.update(KEY, change)
    assert calls == 5  # retried, bounded


async def test_reset(db: Database) -> None:
    await put(db, FAILURE)
    async with db.transaction() as session:
        failures = Repositories(session).login_failures
        await failures.reset(KEY)
        await failures.reset(KEY)  # twice is fine
        assert await failures.get(KEY) is None


async def test_prune_deletes_by_expiry(db: Database) -> None:
    await put(db, replace(FAILURE, key="expired", expires_at=AT))
    await put(db, replace(FAILURE, key="edge", expires_at=AT + 10))
    # Idle for long but locked: its expiry is the lock's end, so it stays.
    await put(db, LoginFailure("locked", 20, NOW - 5000, NOW - 5000, AT + 11, AT + 11))
    async with db.transaction() as session:
        failures = Repositories(session).login_failures
        assert await failures.prune(AT + 10) == 2
        assert list(await failures.get_many(["expired", "edge", "locked"])) == ["locked"]
        assert await failures.prune(AT + 10.5) == 0
        assert await failures.prune(AT + 11) == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"key": ""}, ValueError),
        ({"key": "k" * 511}, ValueError),
        ({"count": -1}, ValueError),
        ({"count": 1.0}, TypeError),
        ({"first_at": -0.5}, ValueError),
        ({"last_at": math.nan}, ValueError),
        ({"locked_until": math.inf}, ValueError),
        ({"expires_at": True}, TypeError),
        ({"expires_at": "soon"}, TypeError),
    ],
)
async def test_values_are_checked(db: Database, change: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        await put(db, replace(FAILURE, **change))  # type: ignore[arg-type]
    assert await get(db) is None
