"""Several workers on one data directory share the login-throttle counters.

Each ``build_services`` (or app) here stands for one ``serve --workers N`` process: its
own engine, connections and in-process locks, the same SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tokensmith.clock import FixedClock
from tokensmith.server.app import ServerContext, build_services, prune_once
from tokensmith.server.services import (
    DatabaseThrottleStore,
    MemoryThrottleStore,
    ThrottleReason,
)
from tokensmith.server.settings import Settings, SettingsError, load_settings

from .routes.conftest import CHEAP, ISSUER, START, assert_oauth_error, running

pytestmark = pytest.mark.anyio

ATTACKER = "198.51.100.66"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(issuer=ISSUER, data_dir=data_dir, signing_algorithms=("ES256",), **values)


@asynccontextmanager
async def workers(
    data_dir: Path, clock: FixedClock, n: int = 2, **values: Any
) -> AsyncIterator[list[ServerContext]]:
    async with AsyncExitStack() as stack:
        contexts = [
            await stack.enter_async_context(
                build_services(settings(data_dir, **values), clock=clock, password_parameters=CHEAP)
            )
            for _ in range(n)
        ]
        yield contexts


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "memory"),
        ({"workers": 2}, "database"),
        ({"workers": 4, "throttle_store": "memory"}, "memory"),
        ({"throttle_store": "database"}, "database"),
    ],
)
def test_auto_means_the_database_once_there_are_workers(
    tmp_path: Path, values: dict[str, Any], expected: str
) -> None:
    assert settings(tmp_path, **values).resolved_throttle_store() == expected


def test_the_setting_is_read_from_the_environment_and_checked(tmp_path: Path) -> None:
    env = {"TOKENSMITH_DATA": str(tmp_path), "TOKENSMITH_THROTTLE_STORE": "Database"}
    assert load_settings(env).throttle_store == "database"
    with pytest.raises(SettingsError, match="TOKENSMITH_THROTTLE_STORE"):
        load_settings({**env, "TOKENSMITH_THROTTLE_STORE": "redis"})


async def test_workers_share_counters_failures_in_one_lock_the_pair_in_the_other(
    tmp_path: Path,
) -> None:
    clock = FixedClock(START)
    async with workers(tmp_path, clock, workers=2) as (one, two):
        assert isinstance(one.user_throttle.store, DatabaseThrottleStore)
        # The user and client throttles of a worker share one store, as in memory.
        assert one.client_throttle.store is one.user_throttle.store
        threshold = one.settings.login_lock_threshold
        for i in range(threshold):
            worker = (one, two)[i % 2]
            decision = await worker.user_throttle.check("alice", ATTACKER)
            if not decision.allowed:
                assert decision.reason is ThrottleReason.DELAY
                clock.advance(decision.retry_after)
            await worker.user_throttle.failed("alice", ATTACKER)
        for worker in (one, two):
            decision = await worker.user_throttle.check("alice", ATTACKER)
            assert (decision.allowed, decision.reason) == (False, ThrottleReason.LOCKED)
        # A success in one worker clears the pair for both.
        await two.user_throttle.succeeded("alice", ATTACKER)
        assert (await one.user_throttle.check("alice", ATTACKER)).allowed


async def test_in_memory_each_worker_counts_alone(tmp_path: Path) -> None:
    # What the database store fixes (and what makes the test above able to fail).
    clock = FixedClock(START)
    async with workers(tmp_path, clock, throttle_store="memory") as (one, two):
        assert isinstance(one.user_throttle.store, MemoryThrottleStore)
        for _ in range(one.settings.login_free_failures + 1):
            await one.user_throttle.failed("alice", ATTACKER)
        assert not (await one.user_throttle.check("alice", ATTACKER)).allowed
        assert (await two.user_throttle.check("alice", ATTACKER)).allowed


async def test_pruning_in_one_worker_forgets_expired_counters_for_all(tmp_path: Path) -> None:
    clock = FixedClock(START)
    async with workers(tmp_path, clock, throttle_store="database") as (one, two):
        await one.user_throttle.failed("alice", ATTACKER)
        await two.client_throttle.failed("web", ATTACKER)
        store = two.user_throttle.store
        keys = [
            *one.user_throttle.keys("alice", ATTACKER),
            two.client_throttle.keys("web", ATTACKER)[0],
        ]
        clock.advance(one.settings.login_window_seconds - 1)
        await prune_once(one)
        assert all([await store.get(key) is not None for key in keys])
        clock.advance(1)
        await prune_once(one)
        assert all([await store.get(key) is None for key in keys])


async def test_over_http_guesses_spread_over_two_workers_are_counted_together(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, workers=2) as one, running(tmp_path, workers=2) as two:
        await one.add_user()
        client = await one.add_client()
        threshold = one.ctx.settings.login_lock_threshold
        for i in range(threshold):
            server = (one, two)[i % 2]
            answer = await server.login(client, password="wrong guess")
            if answer.status_code == 429:  # a delay: wait it out on both clocks
                wait = int(answer.headers["retry-after"])
                one.clock.advance(wait)
                two.clock.advance(wait)
                answer = await server.login(client, password="wrong guess")
            assert_oauth_error(answer, 400, "invalid_grant")
        for server in (one, two):
            locked = await server.login(client)  # even the right password: locked
            assert_oauth_error(locked, 429, "slow_down")
            assert int(locked.headers["retry-after"]) == one.ctx.settings.login_lock_seconds
        assert one.clock.now() > START  # the delays were really waited out
