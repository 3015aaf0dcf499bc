"""Signing keys: the database follows tokensmith.keys.apply, and two instances never both rotate."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy.exc import IntegrityError

from conftest import NOW
from tokensmith.jose import JWK
from tokensmith.keys import (
    DAY,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    KeyState,
    MasterKey,
    Retire,
    Revoke,
    RotationPolicy,
    UnknownKey,
    apply,
    plan,
    revoke,
    rotate_now,
    seal_jwk,
    unseal_jwk,
)
from tokensmith.keys import Action as KeyAction
from tokensmith.store import ConcurrentChange, Database, KeyRepository, NewKey, Repositories

pytestmark = pytest.mark.anyio

POLICY = RotationPolicy()
HOUR = 3600


def fake_key(kid: str, alg: str) -> NewKey:
    """Metadata-only keys: the lifecycle never looks at key material."""
    public = None if alg.startswith("HS") else {"kty": "EC", "kid": kid, "alg": alg}
    return NewKey(kid, public, b"sealed:" + kid.encode())


def kid_namer(prefix: str) -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda alg: f"{alg}-{prefix}-{next(counter)}"


async def records(db: Database) -> list[KeyRecord]:
    async with db.read() as session:
        return await KeyRepository(session).list_records()


async def apply_in_db(db: Database, actions: Sequence[KeyAction], now: int, prefix: str) -> None:
    name = kid_namer(prefix)
    async with db.transaction() as session:
        await KeyRepository(session).apply(actions, now, lambda alg: fake_key(name(alg), alg))


async def step(db: Database, actions: Sequence[KeyAction], now: int, seen: set[type]) -> None:
    """Apply ``actions`` in the database and check it against the reference ``apply``."""
    before = await records(db)
    if not actions:
        return
    prefix = str(now)
    expected = apply(before, actions, now, kid_namer(prefix))
    await apply_in_db(db, actions, now, prefix)
    assert await records(db) == sorted(expected, key=lambda r: r.kid)
    seen.update(type(action) for action in actions)


async def test_a_rotation_timeline_matches_the_reference(db: Database) -> None:
    """100 simulated days, twice a day, with operator actions and a change of algorithms."""
    seen: set[type] = set()
    algs = ["ES256", "RS256", "HS256"]
    for now in range(NOW, NOW + 100 * DAY, 12 * HOUR):
        day = (now - NOW) // DAY
        if now == NOW + 40 * DAY:
            await step(db, rotate_now(await records(db), "ES256", now, POLICY), now, seen)
        if now == NOW + 45 * DAY:
            ring = await records(db)
            (current,) = [r for r in ring if r.alg == "RS256" and r.state is KeyState.CURRENT]
            await step(db, revoke(ring, current.kid), now, seen)
        if day >= 60:
            algs = ["ES256"]  # RS256 and HS256 wind down
        await step(db, plan(await records(db), algs, now, POLICY), now, seen)
        # Planning again right after applying finds nothing to do.
        assert plan(await records(db), algs, now, POLICY) == []
    assert seen == {CreateKey, Activate, Retire, Revoke, Delete}
    final = await records(db)
    assert {r.alg for r in final} == {"ES256"}


async def test_one_current_key_per_alg_is_enforced_by_the_index(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.CURRENT)], NOW, "a")
    insert = (
        "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, sealed_private)"
        " VALUES (?, ?, ?, 1, 1, x'00')"
    )
    async with db.engine.begin() as connection:
        # Another algorithm, or any number of retired keys: fine.
        await connection.exec_driver_sql(insert, ("rs", "RS256", "current"))
        await connection.exec_driver_sql(insert, ("old1", "ES256", "retired"))
        await connection.exec_driver_sql(insert, ("old2", "ES256", "retired"))
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(insert, ("second", "ES256", "current"))
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(insert, ("bad", "ES256", "pending"))


async def test_one_next_key_per_alg_is_enforced_by_the_index(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.NEXT)], NOW, "a")
    with pytest.raises(ConcurrentChange):
        await apply_in_db(db, [CreateKey("ES256", KeyState.NEXT)], NOW, "b")
    assert [r.kid for r in await records(db)] == ["ES256-a-1"]


async def rotation_due(db: Database) -> tuple[list[KeyRecord], int]:
    """A ring whose next key is old enough to take over; returns it and the time."""
    await apply_in_db(db, [CreateKey("ES256", KeyState.CURRENT)], NOW, "first")
    due = NOW + POLICY.rotation_period - POLICY.prepublish
    await apply_in_db(db, plan(await records(db), ["ES256"], due, POLICY), due, "next")
    later = due + POLICY.prepublish
    return await records(db), later


async def test_a_plan_made_from_stale_rows_is_refused(db: Database) -> None:
    ring, now = await rotation_due(db)
    # Two instances read the same rows and plan the same rotation.
    first = plan(ring, ["ES256"], now, POLICY)
    second = plan(ring, ["ES256"], now, POLICY)
    assert [type(a) for a in first] == [Retire, Activate]
    await apply_in_db(db, first, now, "one")
    rotated = await records(db)
    with pytest.raises(ConcurrentChange):
        await apply_in_db(db, second, now + 1, "two")
    assert await records(db) == rotated


async def test_concurrent_rotations_one_wins(db: Database) -> None:
    ring, now = await rotation_due(db)
    actions = plan(ring, ["ES256"], now, POLICY)
    outcomes = await asyncio.gather(
        apply_in_db(db, actions, now, "one"),
        apply_in_db(db, actions, now, "two"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrentChange", "NoneType"]
    current = [r for r in await records(db) if r.state is KeyState.CURRENT]
    assert len(current) == 1


async def test_concurrent_creation_of_next_keys_one_wins(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.CURRENT)], NOW, "first")
    due = NOW + POLICY.rotation_period - POLICY.prepublish
    actions = plan(await records(db), ["ES256"], due, POLICY)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    outcomes = await asyncio.gather(
        apply_in_db(db, actions, due, "one"),
        apply_in_db(db, actions, due, "two"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrentChange", "NoneType"]
    assert sorted(r.state for r in await records(db)) == ["current", "next"]


async def test_a_failure_midway_leaves_the_ring_as_it_was(db: Database) -> None:
    ring, now = await rotation_due(db)
    (current,) = [r for r in ring if r.state is KeyState.CURRENT]
    # Retire applies, then the activation of a kid that does not exist fails.
    with pytest.raises(ConcurrentChange):
        await apply_in_db(db, [Retire(current.kid), Activate("no-such-kid")], now, "x")
    assert await records(db) == ring


async def test_keys_are_made_before_the_first_write(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.CURRENT)], NOW, "first")
    (current,) = await records(db)
    async with db.transaction() as session:
        keys = KeyRepository(session)

        async def make_key(alg: str) -> NewKey:
            # Still current: no statement of the plan has run yet.
            assert [r.state for r in await keys.list_records()] == [KeyState.CURRENT]
            return fake_key("made", alg)

        created = await keys.apply(
            rotate_now([current], "ES256", NOW + DAY, POLICY, force=True), NOW + DAY, make_key
        )
    assert [r.kid for r in created] == ["made"]
    assert {r.kid: r.state for r in await records(db)} == {
        current.kid: KeyState.RETIRED,
        "made": KeyState.CURRENT,
    }


async def test_sealed_private_keys_and_public_jwks_round_trip(db: Database) -> None:
    master = MasterKey.generate()
    jwk = JWK.generate("ES256")

    def make_key(alg: str) -> NewKey:
        return NewKey(jwk.kid, jwk.public().to_dict(), seal_jwk(master, jwk))

    async with db.transaction() as session:
        (record,) = await KeyRepository(session).apply(
            [CreateKey("ES256", KeyState.CURRENT)], NOW, make_key
        )
    assert record == KeyRecord(jwk.kid, "ES256", KeyState.CURRENT, NOW, activated_at=NOW)
    async with db.read() as session:
        keys = KeyRepository(session)
        (stored,) = await keys.list_keys()
        blob = await keys.load_private(jwk.kid)
    assert stored.record == record
    assert stored.public_jwk == jwk.public().to_dict()
    assert "d" not in stored.public_jwk
    assert unseal_jwk(master, blob, jwk.kid).to_dict(private=True) == jwk.to_dict(private=True)


async def test_revoked_and_missing_keys_have_no_private_key(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.NEXT)], NOW, "a")
    (key,) = await records(db)
    await apply_in_db(db, [Revoke(key.kid)], NOW + 1, "b")
    async with db.read() as session:
        keys = KeyRepository(session)
        for kid in (key.kid, "missing"):
            with pytest.raises(UnknownKey):
                await keys.load_private(kid)


async def test_new_keys_are_checked(db: Database) -> None:
    with pytest.raises(ValueError, match="private key members"):
        NewKey("k", {"kty": "EC", "d": "secret"}, b"x")
    with pytest.raises(ValueError, match="private key members"):
        NewKey("k", {"kty": "oct", "k": "secret"}, b"x")
    with pytest.raises(TypeError):
        NewKey("k", None, b"")
    async with db.transaction() as session:
        keys = Repositories(session).keys
        with pytest.raises(ValueError, match="HMAC"):
            await keys.apply(
                [CreateKey("HS256", KeyState.CURRENT)],
                NOW,
                lambda alg: NewKey("h", {"kty": "EC"}, b"x"),
            )
        with pytest.raises(ValueError, match="public JWK"):
            await keys.apply(
                [CreateKey("ES256", KeyState.CURRENT)], NOW, lambda alg: NewKey("e", None, b"x")
            )


async def test_make_key_must_not_reuse_a_kid(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.NEXT)], NOW, "a")
    with pytest.raises(ValueError, match="existing kid"):
        async with db.transaction() as session:
            await KeyRepository(session).apply(
                [CreateKey("RS256", KeyState.CURRENT)],
                NOW,
                lambda alg: fake_key("ES256-a-1", alg),
            )


async def test_a_current_key_is_never_deleted(db: Database) -> None:
    await apply_in_db(db, [CreateKey("ES256", KeyState.CURRENT)], NOW, "a")
    (key,) = await records(db)
    with pytest.raises(ConcurrentChange):
        await apply_in_db(db, [Delete(key.kid)], NOW, "b")
    assert await records(db) == [key]
