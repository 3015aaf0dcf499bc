"""The client row cache of ``ClientService.authenticate``: TTL, invalidation, bounds.

The cache alone with an injected monotonic clock, then through ``ClientService`` over a
real SQLite file, where a change written straight to the table stands for a change made
by another process (the CLI, another worker).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tokensmith.server.services.client_cache import ClientCache
from tokensmith.server.services.clients import ClientService, hash_client_secret
from tokensmith.server.services.oauth_errors import InvalidClient
from tokensmith.store import Client, Repositories

from ._tokens_env import ADDRESS, Env, make_env

pytestmark = pytest.mark.anyio


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def client(client_id: str = "svc", *, disabled: bool = False) -> Client:
    return Client(
        client_id=client_id,
        secret_hash=hash_client_secret("s" * 43),
        grant_types=("client_credentials",),
        scopes=("jobs",),
        audiences=(),
        access_token_lifetime=None,
        disabled=disabled,
        created_at=0,
        updated_at=0,
    )


# -- the cache alone ----------------------------------------------------------------------


def test_an_entry_is_served_until_ttl_after_its_read() -> None:
    ticks = Ticks()
    cache = ClientCache(ttl=5, clock=ticks)
    assert cache.get("svc") is None
    ticket = cache.ticket()
    ticks.now += 1  # the read took a second: the TTL still counts from its start
    row = client()
    cache.put(row, ticket)
    assert cache.get("svc") is row
    ticks.now += 3.999
    assert cache.get("svc") is row
    ticks.now += 0.001
    assert cache.get("svc") is None
    assert len(cache) == 0  # an expired entry is dropped, not kept


def test_a_row_read_before_an_invalidation_is_not_stored() -> None:
    cache = ClientCache(ttl=5, clock=Ticks())
    ticket = cache.ticket()  # a read starts ...
    cache.invalidate("svc")  # ... a change to the client is made meanwhile ...
    cache.put(client(), ticket)  # ... and the read's (possibly older) row comes back
    assert cache.get("svc") is None
    cache.put(client(), cache.ticket())  # a read after the change is kept
    assert cache.get("svc") is not None


def test_invalidate_one_or_all() -> None:
    cache = ClientCache(ttl=5, clock=Ticks())
    for name in ("a", "b", "c"):
        cache.put(client(name), cache.ticket())
    cache.invalidate("b")
    assert [cache.get(n) is not None for n in ("a", "b", "c")] == [True, False, True]
    cache.invalidate()
    assert len(cache) == 0


def test_bounded_least_recently_used_goes_first() -> None:
    cache = ClientCache(ttl=5, max_entries=2, clock=Ticks())
    cache.put(client("a"), cache.ticket())
    cache.put(client("b"), cache.ticket())
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put(client("c"), cache.ticket())
    assert len(cache) == 2
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None


def test_ttl_zero_caches_nothing_and_bad_arguments_are_refused() -> None:
    cache = ClientCache(ttl=0, clock=Ticks())
    cache.put(client(), cache.ticket())
    assert cache.get("svc") is None and len(cache) == 0
    with pytest.raises(ValueError):
        ClientCache(ttl=-1)
    with pytest.raises(ValueError):
        ClientCache(max_entries=0)


# -- through ClientService, over a real SQLite file -----------------------------------------


@pytest.fixture
async def cached(tmp_path: Path) -> AsyncIterator[tuple[Env, ClientService, Ticks]]:
    async with make_env(tmp_path) as env:
        ticks = Ticks()
        service = ClientService(
            env.db,
            env.client_throttle,
            clock=env.clock,
            cache=ClientCache(ttl=5, max_entries=3, clock=ticks),
        )
        yield env, service, ticks


async def _change_row(
    env: Env, client_id: str, *, secret_hash: str | None = None, disabled: bool | None = None
) -> None:
    """A change made by another process: straight to the table, not through this service."""
    async with env.db.transaction() as session:
        clients = Repositories(session).clients
        if secret_hash is not None:
            await clients.update(client_id, now=1, secret_hash=secret_hash)
        if disabled is not None:
            await clients.set_disabled(client_id, disabled, now=1)


async def test_a_cached_row_spares_the_database_and_the_secret_is_checked_every_time(
    cached: tuple[Env, ClientService, Ticks], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, service, _ = cached
    new = await service.create("svc", grant_types=["client_credentials"])
    assert new.secret is not None
    assert (await service.authenticate("svc", new.secret, ADDRESS)).client_id == "svc"

    reads = 0
    real_read = env.db.read

    def counting_read() -> AbstractAsyncContextManager[AsyncSession]:
        nonlocal reads
        reads += 1
        return real_read()

    monkeypatch.setattr(env.db, "read", counting_read)
    for _ in range(3):
        assert (await service.authenticate("svc", new.secret, ADDRESS)).client_id == "svc"
    assert reads == 0
    with pytest.raises(InvalidClient):  # a cached row is no cached verdict
        await service.authenticate("svc", "wrong" + new.secret, ADDRESS)
    with pytest.raises(InvalidClient):
        await service.authenticate("svc", None, ADDRESS)
    assert reads == 0


async def test_a_change_by_another_process_applies_within_the_ttl(
    cached: tuple[Env, ClientService, Ticks],
) -> None:
    env, service, ticks = cached
    new = await service.create("svc", grant_types=["client_credentials"])
    assert new.secret is not None
    await service.authenticate("svc", new.secret, ADDRESS)  # cached now
    other_secret = "o" * 43
    await _change_row(env, "svc", secret_hash=hash_client_secret(other_secret))

    ticks.now += 4.9  # within the TTL: this process still knows the old row
    assert (await service.authenticate("svc", new.secret, ADDRESS)).client_id == "svc"
    ticks.now += 0.1  # the TTL is over: the change applies
    with pytest.raises(InvalidClient):
        await service.authenticate("svc", new.secret, ADDRESS)
    assert (await service.authenticate("svc", other_secret, ADDRESS)).client_id == "svc"


async def test_changes_through_the_service_apply_at_once(
    cached: tuple[Env, ClientService, Ticks],
) -> None:
    _, service, _ = cached
    first = await service.create("svc", grant_types=["client_credentials"])
    assert first.secret is not None
    await service.authenticate("svc", first.secret, ADDRESS)  # cached

    second = await service.reset_secret("svc")
    assert second.secret is not None
    with pytest.raises(InvalidClient):
        await service.authenticate("svc", first.secret, ADDRESS)
    assert (await service.authenticate("svc", second.secret, ADDRESS)).client_id == "svc"

    await service.set_disabled("svc", True)
    with pytest.raises(InvalidClient):
        await service.authenticate("svc", second.secret, ADDRESS)
    await service.set_disabled("svc", False)
    assert (await service.authenticate("svc", second.secret, ADDRESS)).client_id == "svc"


async def test_a_disabled_client_stays_refused_from_the_cache(
    cached: tuple[Env, ClientService, Ticks],
) -> None:
    env, service, ticks = cached
    new = await service.create("svc", grant_types=["client_credentials"])
    assert new.secret is not None
    await service.set_disabled("svc", True)
    for _ in range(2):  # the first reads and caches the disabled row, the second uses it
        with pytest.raises(InvalidClient):
            await service.authenticate("svc", new.secret, ADDRESS)
    assert len(service.cache) == 1
    await _change_row(env, "svc", disabled=False)  # enabled by another process
    ticks.now += 5
    assert (await service.authenticate("svc", new.secret, ADDRESS)).client_id == "svc"


async def test_unknown_ids_are_not_cached_and_known_ones_are_bounded(
    cached: tuple[Env, ClientService, Ticks],
) -> None:
    _, service, _ = cached
    for n in range(30):
        with pytest.raises(InvalidClient):
            await service.authenticate(f"made-up-{n}", "x", f"198.51.100.{n}")
    assert len(service.cache) == 0
    secrets = {}
    for name in ("a1", "a2", "a3", "a4", "a5"):
        made = await service.create(name, grant_types=["client_credentials"])
        secrets[name] = made.secret
        await service.authenticate(name, made.secret, ADDRESS)
    assert len(service.cache) == 3  # max_entries
    # An evicted client is read again, and still authenticates.
    assert (await service.authenticate("a1", secrets["a1"], ADDRESS)).client_id == "a1"
