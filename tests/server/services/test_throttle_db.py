"""The database throttle store over a real SQLite file: the protocol, atomic updates across
two ``Database`` objects (two workers), exact sub-second times, long keys, pruning.

The whole ``Throttle`` suite also runs over this store (test_throttle.py's ``store``
fixture); these are the properties only a shared store has.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from conftest import NOW
from tokensmith.clock import FixedClock
from tokensmith.server.services.throttle import Throttle
from tokensmith.server.services.throttle_db import DatabaseThrottleStore, stored_key
from tokensmith.server.services.throttle_policy import (
    Scope,
    ThrottlePolicy,
    ThrottleReason,
    record_failure,
)
from tokensmith.server.services.throttle_store import (
    AtomicThrottleStore,
    MemoryThrottleStore,
    ThrottleState,
)
from tokensmith.store import Database, prune, sqlite_url, upgrade
from tokensmith.store.login_failures import MAX_KEY
from tokensmith.store.models import LoginFailureRow, table_of

pytestmark = pytest.mark.anyio

ALICE = "alice"
ATTACKER = "198.51.100.66"
POLICY = ThrottlePolicy()
# A fractional instant, as SystemClock gives: nothing may be rounded.
AT = NOW + 0.7


@pytest.fixture
def url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = Database.open(url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def store(db: Database) -> DatabaseThrottleStore:
    return DatabaseThrottleStore(db)


async def row_keys(db: Database) -> set[str]:
    async with db.read() as session:
        return set((await session.scalars(select(table_of(LoginFailureRow).c.key))).all())


def state(count: int = 1, at: float = AT, **changes: float | None) -> ThrottleState:
    base = ThrottleState(count=count, first_at=at, last_at=at, expires_at=at + 900)
    return replace(base, **changes)


async def test_the_protocol_round_trip(store: DatabaseThrottleStore) -> None:
    assert isinstance(store, AtomicThrottleStore)
    assert not isinstance(MemoryThrottleStore(), AtomicThrottleStore)
    assert await store.get("k") is None
    first = state(first_at=NOW + 0.123456789)
    await store.put("k", first)
    assert await store.get("k") == first  # every float back bit for bit
    locked = state(20, locked_until=AT + 900.25, expires_at=AT + 900.25)
    await store.put("k", locked)  # an upsert
    assert await store.get("k") == locked
    await store.delete("k")
    await store.delete("k")  # deleting twice is fine
    assert await store.get("k") is None


async def test_update_changes_each_key_from_its_current_state(
    store: DatabaseThrottleStore,
) -> None:
    seen: list[ThrottleState | None] = []

    def count(current: ThrottleState | None) -> ThrottleState:
        seen.append(current)
        return state(1 if current is None else current.count + 1)

    assert await store.update({"b": count, "a": count}) == {"a": state(1), "b": state(1)}
    assert await store.update({"a": count}) == {"a": state(2)}
    assert seen == [None, None, state(1)]
    assert await store.get("a") == state(2)
    assert await store.get("b") == state(1)


async def test_a_failing_change_stores_nothing(store: DatabaseThrottleStore) -> None:
    await store.put("a", state(3))

    def broken(current: ThrottleState | None) -> ThrottleState:
        raise RuntimeError("boom")

    def count(current: ThrottleState | None) -> ThrottleState:
        return state(1 if current is None else current.count + 1)

    with pytest.raises(RuntimeError):
        await store.update({"a": count, "b": broken})  # "a" goes first, then rolls back
    assert await store.get("a") == state(3)
    assert await store.get("b") is None


async def test_two_workers_count_every_failure(db: Database, url: str) -> None:
    # Two Throttles, each with its own in-process lock, over two Database objects on one
    # file: what two `serve` workers have. Failures race across them; all are counted.
    n = 30
    policy = ThrottlePolicy(lock_threshold=1000, ip_threshold=1000)
    async with Database.open(url) as other:
        workers = [
            Throttle(DatabaseThrottleStore(each), policy, clock=FixedClock(NOW))
            for each in (db, other)
        ]
        async with anyio.create_task_group() as group:
            for _ in range(n):
                for worker in workers:
                    group.start_soon(worker.failed, ALICE, ATTACKER)
    store = DatabaseThrottleStore(db)
    pair_key, ip_key = workers[0].keys(ALICE, ATTACKER)
    pair, ip = await store.get(pair_key), await store.get(ip_key)
    assert pair is not None and pair.count == 2 * n
    assert ip is not None and ip.count == 2 * n


async def test_a_lock_counted_in_one_worker_holds_in_the_other(db: Database, url: str) -> None:
    async with Database.open(url) as other:
        clock = FixedClock(AT)
        one = Throttle(DatabaseThrottleStore(db), POLICY, clock=clock)
        two = Throttle(DatabaseThrottleStore(other), POLICY, clock=clock)
        for i in range(POLICY.lock_threshold):
            worker = (one, two)[i % 2]
            decision = await worker.check(ALICE, ATTACKER)
            if not decision.allowed:
                clock.advance(decision.retry_after)
            await worker.failed(ALICE, ATTACKER)
        for worker in (one, two):
            decision = await worker.check(ALICE, ATTACKER)
            assert (decision.allowed, decision.reason) == (False, ThrottleReason.LOCKED)
            assert decision.retry_after == 900


async def test_sub_second_times_are_kept_exactly(store: DatabaseThrottleStore) -> None:
    clock = FixedClock(AT)
    throttle = Throttle(store, POLICY, clock=clock)
    for _ in range(POLICY.free_failures):
        assert (await throttle.failed(ALICE, ATTACKER)).allowed
        # Within the same second as a free failure: not delayed (rounding last_at up
        # to whole seconds would refuse this).
        assert (await throttle.check(ALICE, ATTACKER)).allowed
    delayed = await throttle.failed(ALICE, ATTACKER)  # 2 s from AT, not from a whole second
    assert (delayed.reason, delayed.until) == (ThrottleReason.DELAY, AT + 2)
    clock.set(AT + 1.999)
    assert not (await throttle.check(ALICE, ATTACKER)).allowed  # no rounding down either
    clock.set(AT + 2)
    assert (await throttle.check(ALICE, ATTACKER)).allowed


async def test_keys_too_long_for_the_column_are_stored_hashed(
    store: DatabaseThrottleStore, db: Database
) -> None:
    long_key, other_long_key = "k" * (MAX_KEY + 1), "k" * (MAX_KEY + 2)
    assert stored_key("k" * MAX_KEY) == "k" * MAX_KEY
    assert stored_key(long_key) != stored_key(other_long_key)
    await store.put(long_key, state(1))
    await store.update(
        {other_long_key: partial(record_failure, now=AT, policy=POLICY, scope=Scope.IP)}
    )
    assert await store.get(long_key) == state(1)
    assert (await store.get(other_long_key)) == state(1)
    assert all(len(key) <= MAX_KEY for key in await row_keys(db))
    # A username of 200 "|" is escaped to 600 characters: still counted, not a 500.
    throttle = Throttle(store, POLICY, clock=FixedClock(AT))
    for _ in range(POLICY.free_failures + 1):
        await throttle.failed("|" * 200, ATTACKER)
    assert (await throttle.check("|" * 200, ATTACKER)).reason is ThrottleReason.DELAY


async def test_prune_deletes_what_expired_and_the_store_prune_agrees(
    store: DatabaseThrottleStore, db: Database
) -> None:
    await store.put("gone", state(expires_at=AT))
    await store.put("edge", state(expires_at=AT + 10))
    await store.put("fraction", state(expires_at=AT + 10.5))
    await store.put("locked", state(20, at=AT - 5000, locked_until=AT + 99, expires_at=AT + 99))
    # The server's housekeeping (store.prune, whole seconds) never deletes a counter the
    # throttle still needs: int(now) <= now.
    async with db.transaction() as session:
        counts = await prune(
            session, math.floor(AT + 10), audit_retention=86_400, login_failures=True
        )
    assert counts.login_failures == 1
    assert await row_keys(db) == {"edge", "fraction", "locked"}
    assert await store.prune(AT + 10) == 1
    assert await row_keys(db) == {"fraction", "locked"}
    assert await store.prune(AT + 98.9) == 1
    assert await store.prune(AT + 99) == 1
    assert await row_keys(db) == set()
