"""Login throttling, walked with a fixed clock: delays, locks, per-address limits, events.

The service tests run over both stores: in memory, and in a real SQLite file
(``DatabaseThrottleStore``); the behaviour must not depend on where counters live. The
pure rules under them are tested in test_throttle_policy.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select

from conftest import NOW
from tokensmith.clock import FixedClock
from tokensmith.server.services.passwords import PasswordHasher
from tokensmith.server.services.throttle import Throttle, ThrottleEvent
from tokensmith.server.services.throttle_db import DatabaseThrottleStore
from tokensmith.server.services.throttle_policy import ThrottlePolicy, ThrottleReason
from tokensmith.server.services.throttle_store import (
    MemoryThrottleStore,
    ThrottleState,
    ThrottleStore,
)
from tokensmith.store import Database, sqlite_url, upgrade
from tokensmith.store.models import LoginFailureRow

from .conftest import CHEAP

pytestmark = pytest.mark.anyio

POLICY = ThrottlePolicy()
ALICE = "alice"
HOME = "203.0.113.7"
ATTACKER = "198.51.100.66"


class Recorder:
    def __init__(self) -> None:
        self.events: list[ThrottleEvent] = []

    async def __call__(self, event: ThrottleEvent) -> None:
        self.events.append(event)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(params=["memory", "database"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ThrottleStore]:
    if request.param == "memory":
        yield MemoryThrottleStore()
        return
    db = Database.open(sqlite_url(tmp_path))
    await upgrade(db)
    try:
        yield DatabaseThrottleStore(db)
    finally:
        await db.dispose()


async def stored_counters(store: ThrottleStore) -> int:
    if isinstance(store, MemoryThrottleStore):
        return len(store)
    assert isinstance(store, DatabaseThrottleStore)
    async with store.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(LoginFailureRow)) or 0)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def throttle(store: ThrottleStore, clock: FixedClock, recorder: Recorder) -> Throttle:
    return Throttle(store, POLICY, clock=clock, on_throttled=recorder)


async def fail_allowed(throttle: Throttle, n: int, user: str = ALICE, ip: str = ATTACKER) -> None:
    """``n`` failures, each after waiting out whatever delay the previous one imposed."""
    clock = throttle.clock
    assert isinstance(clock, FixedClock)
    for _ in range(n):
        decision = await throttle.check(user, ip)
        if not decision.allowed:
            assert decision.reason is ThrottleReason.DELAY
            clock.advance(decision.retry_after)
            assert (await throttle.check(user, ip)).allowed
        await throttle.failed(user, ip)


# --- the service ------------------------------------------------------------------------


async def test_free_failures_pass(throttle: Throttle, clock: FixedClock) -> None:
    for _ in range(POLICY.free_failures):
        assert (await throttle.check(ALICE, ATTACKER)).allowed
        assert (await throttle.failed(ALICE, ATTACKER)).allowed
    assert (await throttle.check(ALICE, ATTACKER)).allowed


async def test_delays_grow_then_are_capped(throttle: Throttle, clock: FixedClock) -> None:
    await fail_allowed(throttle, POLICY.free_failures)
    waits = []
    for _ in range(8):
        await throttle.failed(ALICE, ATTACKER)
        d = await throttle.check(ALICE, ATTACKER)
        assert (d.allowed, d.reason) == (False, ThrottleReason.DELAY)
        waits.append(d.retry_after)
        clock.advance(d.retry_after - 1)
        assert (await throttle.check(ALICE, ATTACKER)).retry_after == 1
        clock.advance(1)
        assert (await throttle.check(ALICE, ATTACKER)).allowed
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


async def test_lock_after_threshold_then_expiry(throttle: Throttle, clock: FixedClock) -> None:
    await fail_allowed(throttle, POLICY.lock_threshold - 1)
    assert (await throttle.check(ALICE, ATTACKER)).allowed is False  # only the delay
    clock.advance(60)
    assert (await throttle.check(ALICE, ATTACKER)).allowed
    locked = await throttle.failed(ALICE, ATTACKER)
    assert (locked.reason, locked.retry_after) == (ThrottleReason.LOCKED, 900)
    clock.advance(899)
    d = await throttle.check(ALICE, ATTACKER)
    assert (d.allowed, d.reason, d.retry_after) == (False, ThrottleReason.LOCKED, 1)
    clock.advance(1)
    assert (await throttle.check(ALICE, ATTACKER)).allowed
    # Lock as long as the window: the counter is forgotten, the next failure is free.
    assert (await throttle.failed(ALICE, ATTACKER)).allowed


async def test_a_lock_shorter_than_the_window_relocks_on_the_next_failure(
    store: ThrottleStore, clock: FixedClock
) -> None:
    policy = ThrottlePolicy(lock_seconds=60, window=900)
    throttle = Throttle(store, policy, clock=clock)
    await fail_allowed(throttle, policy.lock_threshold)
    assert (await throttle.check(ALICE, ATTACKER)).reason is ThrottleReason.LOCKED
    clock.advance(60)
    assert (await throttle.check(ALICE, ATTACKER)).allowed  # one more guess ...
    again = await throttle.failed(ALICE, ATTACKER)
    assert (again.reason, again.retry_after) == (ThrottleReason.LOCKED, 60)  # ... and locked


async def test_success_resets_the_pair(throttle: Throttle, clock: FixedClock) -> None:
    await fail_allowed(throttle, POLICY.free_failures + 3)
    assert not (await throttle.check(ALICE, ATTACKER)).allowed
    await throttle.succeeded(ALICE, ATTACKER)
    assert (await throttle.check(ALICE, ATTACKER)).allowed
    for _ in range(POLICY.free_failures):
        assert (await throttle.failed(ALICE, ATTACKER)).allowed


async def test_success_does_not_reset_the_address_counter(
    store: ThrottleStore, clock: FixedClock
) -> None:
    policy = ThrottlePolicy(ip_threshold=10)
    throttle = Throttle(store, policy, clock=clock)
    for i in range(9):
        await throttle.failed(f"user{i}", ATTACKER)
    await throttle.succeeded("mallory", ATTACKER)  # the sprayer's own account
    d = await throttle.failed("user9", ATTACKER)
    assert (d.reason, d.retry_after) == (ThrottleReason.IP_LOCKED, 900)


async def test_an_attacker_elsewhere_cannot_lock_the_user_out(
    throttle: Throttle, store: ThrottleStore, clock: FixedClock
) -> None:
    await fail_allowed(throttle, POLICY.lock_threshold)
    assert (await throttle.check(ALICE, ATTACKER)).reason is ThrottleReason.LOCKED
    # The real user at home is not affected at all: no delay, nothing stored for her pair.
    assert (await throttle.check(ALICE, HOME)).allowed
    home_pair, home_ip = throttle.keys(ALICE, HOME)
    assert await store.get(home_pair) is None
    assert await store.get(home_ip) is None
    for _ in range(POLICY.free_failures):  # her own typos get the full allowance
        assert (await throttle.failed(ALICE, HOME)).allowed
    await throttle.succeeded(ALICE, HOME)
    assert (await throttle.check(ALICE, ATTACKER)).reason is ThrottleReason.LOCKED


async def test_the_per_address_limit_stops_a_sprayer(throttle: Throttle) -> None:
    for i in range(POLICY.ip_threshold - 1):
        assert (await throttle.failed(f"user{i}", ATTACKER)).allowed
    last = await throttle.failed("user99", ATTACKER)
    assert (last.reason, last.retry_after) == (ThrottleReason.IP_LOCKED, 900)
    d = await throttle.check("never-tried", ATTACKER)
    assert (d.allowed, d.reason) == (False, ThrottleReason.IP_LOCKED)
    # The same usernames from another address are fine.
    assert (await throttle.check("user0", HOME)).allowed
    assert (await throttle.check("never-tried", HOME)).allowed


async def test_username_variants_share_one_counter(throttle: Throttle) -> None:
    fullwidth = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" as an East Asian IME types it
    for name in ["Alice", "ALICE", fullwidth, "alice", "AlIcE", "ALIce"]:
        await throttle.failed(name, ATTACKER)
    assert not (await throttle.check(ALICE, ATTACKER)).allowed  # 6 failures: delayed


async def test_ipv6_addresses_count_per_64(throttle: Throttle) -> None:
    for host in range(POLICY.free_failures + 1):
        await throttle.failed(ALICE, f"2001:db8:1:2::{host + 1:x}")
    assert not (await throttle.check(ALICE, "2001:db8:1:2:ffff::1")).allowed
    assert (await throttle.check(ALICE, "2001:db8:1:3::1")).allowed


async def test_the_callback_sees_each_throttle_once(
    throttle: Throttle, clock: FixedClock, recorder: Recorder
) -> None:
    await fail_allowed(throttle, POLICY.free_failures)
    assert recorder.events == []
    await throttle.failed(ALICE, ATTACKER)  # the 6th: a 2 s delay begins
    for _ in range(3):  # hammering inside the delay adds no event
        assert not (await throttle.check(ALICE, ATTACKER)).allowed
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert event == ThrottleEvent(
        kind="user",
        username=ALICE,
        address=ATTACKER,
        reason=ThrottleReason.DELAY,
        retry_after=2,
        until=NOW + 2,
        failures=6,
        at=NOW,
    )
    clock.advance(2)
    await throttle.failed(ALICE, ATTACKER)  # a new delay is a new throttle
    assert [e.retry_after for e in recorder.events] == [2, 4]
    recorder.events.clear()

    await fail_allowed(throttle, POLICY.lock_threshold - 7)
    assert recorder.events[-1].reason is ThrottleReason.LOCKED
    assert recorder.events[-1].failures == POLICY.lock_threshold
    assert all(e.reason is ThrottleReason.DELAY for e in recorder.events[:-1])
    assert len(recorder.events) == POLICY.lock_threshold - 7
    count = len(recorder.events)
    clock.advance(100)
    await throttle.check(ALICE, ATTACKER)
    assert len(recorder.events) == count


async def test_the_callback_sees_an_address_lock(
    store: ThrottleStore, clock: FixedClock, recorder: Recorder
) -> None:
    throttle = Throttle(store, ThrottlePolicy(ip_threshold=3), clock=clock, on_throttled=recorder)
    for name in ["a", "b", "c"]:
        await throttle.failed(name, ATTACKER)
    await throttle.check("d", ATTACKER)
    assert [(e.reason, e.username, e.failures) for e in recorder.events] == [
        (ThrottleReason.IP_LOCKED, "c", 3)
    ]


async def test_a_failing_callback_propagates_and_is_retried(
    store: ThrottleStore, clock: FixedClock
) -> None:
    delivered: list[ThrottleEvent] = []
    broken = True

    async def audit(event: ThrottleEvent) -> None:
        if broken:
            raise ConnectionError("audit store down")
        delivered.append(event)

    throttle = Throttle(store, POLICY, clock=clock, on_throttled=audit)
    await fail_allowed(throttle, POLICY.free_failures)
    with pytest.raises(ConnectionError):
        await throttle.failed(ALICE, ATTACKER)
    broken = False
    assert not (await throttle.check(ALICE, ATTACKER)).allowed
    assert [e.reason for e in delivered] == [ThrottleReason.DELAY]


async def test_memory_stays_bounded_under_an_address_flood(clock: FixedClock) -> None:
    store = MemoryThrottleStore(max_keys=50)
    throttle = Throttle(store, POLICY, clock=clock)
    for i in range(1000):
        await throttle.failed(ALICE, f"10.{i // 256}.{i % 256}.1")
        assert len(store) <= 50
    newest_pair, newest_ip = throttle.keys(ALICE, "10.3.231.1")  # i = 999
    assert (await store.get(newest_pair)) is not None
    assert (await store.get(newest_ip)) is not None


async def test_prune_drops_forgotten_counters_but_keeps_locks(
    throttle: Throttle, store: ThrottleStore, clock: FixedClock
) -> None:
    await throttle.failed("bob", HOME)
    clock.advance(100)
    await fail_allowed(throttle, POLICY.lock_threshold)
    locked_pair, _ = throttle.keys(ALICE, ATTACKER)
    lock_end = (await store.get(locked_pair)).locked_until  # type: ignore[union-attr]
    assert lock_end is not None
    clock.set(NOW + 900)
    assert await throttle.prune() == 2  # bob's pair and the HOME address counter
    assert all([await store.get(key) is None for key in throttle.keys("bob", HOME)])
    assert await store.get(locked_pair) is not None
    assert await stored_counters(store) == 2  # the lock and the ATTACKER address counter
    clock.set(lock_end)
    await throttle.prune()
    assert await stored_counters(store) == 0


async def test_concurrent_failures_are_all_counted(clock: FixedClock) -> None:
    import anyio
    import anyio.lowlevel

    class YieldingStore(MemoryThrottleStore):
        """Like a database: every call gives the event loop a chance to run others."""

        async def get(self, key: str) -> ThrottleState | None:
            await anyio.lowlevel.checkpoint()
            return await super().get(key)

        async def put(self, key: str, state: ThrottleState) -> None:
            await anyio.lowlevel.checkpoint()
            await super().put(key, state)

    store = YieldingStore()
    throttle = Throttle(store, POLICY, clock=clock)
    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(throttle.failed, ALICE, ATTACKER)
    pair_key, ip_key = throttle.keys(ALICE, ATTACKER)
    assert (await store.get(pair_key)).count == 30  # type: ignore[union-attr]
    assert (await store.get(ip_key)).count == 30  # type: ignore[union-attr]


async def test_unknown_users_and_wrong_passwords_are_throttled_identically(
    store: ThrottleStore, clock: FixedClock
) -> None:
    """A login the way the token grant will do it: the throttle first, then the hasher."""
    hasher = PasswordHasher(CHEAP, max_concurrency=1)
    users = {"alice": hasher.hash("the real password")}
    events = Recorder()
    throttle = Throttle(store, POLICY, clock=clock, on_throttled=events)

    async def login(username: str, password: str, address: str) -> tuple[str, int]:
        decision = await throttle.check(username, address)
        if not decision.allowed:
            return "throttled", decision.retry_after
        result = await hasher.verify_async(users.get(username), password)
        if result.ok:
            await throttle.succeeded(username, address)
            return "ok", 0
        await throttle.failed(username, address)
        return "invalid_grant", 0

    known, unknown = [], []
    for step in range(40):
        known.append(await login("alice", f"guess {step}", "192.0.2.1"))
        unknown.append(await login("nobody", f"guess {step}", "192.0.2.2"))
        clock.advance(7)
    assert known == unknown
    assert {"throttled", "invalid_grant"} == {outcome for outcome, _ in known}
    by_user = [(e.reason, e.retry_after, e.failures) for e in events.events]
    assert by_user[0::2] == by_user[1::2]
    # And the real password still works from anywhere else.
    assert await login("alice", "the real password", "192.0.2.3") == ("ok", 0)


TIGHT = ThrottlePolicy(free_failures=0, max_delay=0, lock_threshold=5, ip_threshold=8)


async def test_attempts_of_one_pair_run_one_at_a_time(
    store: ThrottleStore, clock: FixedClock
) -> None:
    # A burst of concurrent guesses must not all pass the throttle before the first is
    # counted: the second attempt of a pair waits for the first's verdict.
    throttle = Throttle(store, TIGHT, clock=clock)
    first = await throttle.begin(ALICE, ATTACKER)
    assert first.decision.allowed
    admitted: list[bool] = []

    async def second() -> None:
        admitted.append((await throttle.begin(ALICE, ATTACKER)).decision.allowed)

    async with anyio.create_task_group() as group:
        group.start_soon(second)
        for _ in range(5):
            await anyio.sleep(0)
        assert admitted == []  # still waiting
        other = await throttle.begin(ALICE, HOME)  # another pair is not held up
        assert other.decision.allowed
        for _ in range(TIGHT.lock_threshold - 1):
            await throttle.failed(ALICE, ATTACKER)
        await first.failed()  # the 5th failure: locked
    assert admitted == [False]


async def test_attempts_in_flight_count_against_the_address(
    store: ThrottleStore, clock: FixedClock, recorder: Recorder
) -> None:
    throttle = Throttle(store, TIGHT, clock=clock, on_throttled=recorder)
    attempts = [await throttle.begin(f"user{i}", ATTACKER) for i in range(12)]
    assert [a.decision.allowed for a in attempts] == [True] * 8 + [False] * 4
    # Nothing has failed yet: "busy", retry in a second, not a lock and not audited.
    assert all(a.decision.reason is ThrottleReason.BUSY for a in attempts[8:])
    assert all(a.decision.retry_after == 1 for a in attempts[8:])
    assert recorder.events == []
    assert (await throttle.begin(ALICE, HOME)).decision.allowed
    # Released without a verdict (a database failure): the allowance comes back.
    for attempt in attempts:
        attempt.release()
        attempt.release()  # idempotent
    assert (await throttle.begin(ALICE, ATTACKER)).decision.allowed


async def test_settled_attempts_are_counted_once(store: ThrottleStore, clock: FixedClock) -> None:
    throttle = Throttle(store, TIGHT, clock=clock)
    for _ in range(4):
        attempt = await throttle.begin(ALICE, ATTACKER)
        assert attempt.decision.allowed
        await attempt.failed()
        attempt.release()  # after a verdict: nothing more is released
    state = await store.get(throttle.keys(ALICE, ATTACKER)[0])
    assert state is not None and state.count == 4
    last = await throttle.begin(ALICE, ATTACKER)
    assert last.decision.allowed
    await last.succeeded()
    assert await store.get(throttle.keys(ALICE, ATTACKER)[0]) is None
    with anyio.fail_after(5):  # the gate was released: no deadlock
        assert (await throttle.begin(ALICE, ATTACKER)).decision.allowed


async def test_without_count_in_flight_concurrent_attempts_are_all_admitted(
    store: ThrottleStore, clock: FixedClock
) -> None:
    # The client throttle: many requests of services at one address at once are normal.
    throttle = Throttle(store, TIGHT, clock=clock, count_in_flight=False)
    attempts = [await throttle.begin(f"client{i}", ATTACKER) for i in range(30)]
    assert all(a.decision.allowed for a in attempts)


async def test_concurrent_refusals_of_one_lock_write_one_event(
    store: ThrottleStore, clock: FixedClock
) -> None:
    slow = anyio.Event()
    events: list[ThrottleEvent] = []

    async def slow_recorder(event: ThrottleEvent) -> None:
        events.append(event)
        await slow.wait()

    throttle = Throttle(store, TIGHT, clock=clock, on_throttled=slow_recorder)
    for _ in range(TIGHT.lock_threshold - 1):
        await throttle.failed(ALICE, ATTACKER)
    async with anyio.create_task_group() as group:
        group.start_soon(throttle.failed, ALICE, ATTACKER)  # locks; its event write waits
        for _ in range(5):
            group.start_soon(throttle.check, ALICE, ATTACKER)
        for _ in range(10):
            await anyio.sleep(0)
        slow.set()
    assert len(events) == 1
