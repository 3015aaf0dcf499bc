"""The in-memory throttle store: plain storage, bounded, pruned by expiry."""

from __future__ import annotations

import pytest

from tokensmith.server.services.throttle_store import (
    MemoryThrottleStore,
    ThrottleState,
    ThrottleStore,
)

pytestmark = pytest.mark.anyio


def state(expires_at: float, count: int = 1) -> ThrottleState:
    return ThrottleState(count=count, first_at=0, last_at=0, expires_at=expires_at)


async def test_get_put_delete() -> None:
    store: ThrottleStore = MemoryThrottleStore()
    assert await store.get("k") is None
    await store.put("k", state(10))
    assert await store.get("k") == state(10)
    await store.put("k", state(20, count=2))
    assert await store.get("k") == state(20, count=2)
    await store.delete("k")
    await store.delete("k")  # deleting twice is fine
    assert await store.get("k") is None


async def test_the_least_recently_updated_key_is_evicted() -> None:
    store = MemoryThrottleStore(max_keys=2)
    await store.put("a", state(1))
    await store.put("b", state(1))
    await store.get("a")  # reading does not protect a key ...
    await store.put("b", state(2))  # ... updating does
    await store.put("c", state(1))
    assert len(store) == 2
    assert await store.get("a") is None
    assert await store.get("b") == state(2)
    assert await store.get("c") == state(1)


async def test_prune_removes_expired_states_only() -> None:
    store = MemoryThrottleStore()
    for key, expires in [("old", 5), ("edge", 10), ("new", 11)]:
        await store.put(key, state(expires))
    assert await store.prune(10) == 2
    assert len(store) == 1
    assert await store.get("new") == state(11)
    assert await store.prune(10) == 0


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryThrottleStore(max_keys=0)
