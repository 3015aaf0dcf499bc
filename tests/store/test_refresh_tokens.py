"""Refresh tokens: hashes only, one winner per rotation, family revocation."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from conftest import NOW
from tokensmith.store import AccessTokenRef, Database, RefreshToken, Repositories, hash_token

from .helpers import add_client, add_user

pytestmark = pytest.mark.anyio

IDLE = 3600
ABSOLUTE = 30 * 86_400


@pytest.fixture
async def user_id(db: Database) -> int:
    await add_client(db, "web")
    return (await add_user(db, "alice")).id


async def issue(
    db: Database,
    user_id: int,
    token: str,
    *,
    family: str = "fam-1",
    at: int = NOW,
    jti: str | None = None,
    access_lifetime: int = 900,
) -> RefreshToken:
    async with db.transaction() as session:
        return await Repositories(session).refresh_tokens.add(
            token_hash=hash_token(token),
            family_id=family,
            user_id=user_id,
            client_id="web",
            scope="openid profile",
            issued_at=at,
            expires_at=at + IDLE,
            family_expires_at=NOW + ABSOLUTE,
            access_jti=jti,
            access_expires_at=None if jti is None else at + access_lifetime,
        )


def test_hash_token_is_hex_sha256() -> None:
    # Known answer: SHA-256("abc").
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(TypeError):
        hash_token(b"abc")  # type: ignore[arg-type]


async def test_add_and_look_up_by_hash(db: Database, user_id: int) -> None:
    token = await issue(db, user_id, "rt-secret-1", jti="at-1")
    assert token.token_hash == hash_token("rt-secret-1")
    assert (token.used_at, token.replaced_by, token.revoked_at) == (None, None, None)
    assert (token.access_jti, token.access_expires_at) == ("at-1", NOW + 900)
    assert not token.expired(NOW + IDLE - 1) and token.expired(NOW + IDLE)
    async with db.read() as session:
        tokens = Repositories(session).refresh_tokens
        assert await tokens.get_by_hash(hash_token("rt-secret-1")) == token
        assert await tokens.get_by_hash(hash_token("rt-secret-2")) is None
        assert await tokens.get(token.id) == token


async def test_only_a_hash_is_accepted(db: Database, user_id: int) -> None:
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        for not_a_hash in ("rt-secret-1", hash_token("x").upper(), hash_token("x")[:-1]):
            with pytest.raises(ValueError, match="token_hash"):
                await tokens.get_by_hash(not_a_hash)


async def test_rotation_marks_the_old_token_used_once(db: Database, user_id: int) -> None:
    old = await issue(db, user_id, "rt-1")
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        new = await tokens.add(
            token_hash=hash_token("rt-2"),
            family_id=old.family_id,
            user_id=user_id,
            client_id="web",
            scope=old.scope,
            issued_at=NOW + 10,
            expires_at=NOW + 10 + IDLE,
            family_expires_at=old.family_expires_at,
        )
        assert await tokens.mark_used(old.id, NOW + 10, new.id)
        assert not await tokens.mark_used(old.id, NOW + 11, None)
        used = await tokens.get(old.id)
    assert used is not None
    assert (used.used_at, used.replaced_by) == (NOW + 10, new.id)


async def test_concurrent_mark_used_exactly_one_wins(db: Database, user_id: int) -> None:
    old = await issue(db, user_id, "rt-1")
    successors = [await issue(db, user_id, f"rt-next-{i}") for i in range(2)]

    async def rotate(successor: RefreshToken) -> bool:
        # Each rotation reads the token, then marks it, as the refresh grant does.
        async with db.transaction() as session:
            tokens = Repositories(session).refresh_tokens
            current = await tokens.get_by_hash(hash_token("rt-1"))
            assert current is not None
            return await tokens.mark_used(current.id, NOW + 5, successor.id)

    results = await asyncio.gather(*(rotate(s) for s in successors))
    assert sorted(results) == [False, True]
    async with db.read() as session:
        used = await Repositories(session).refresh_tokens.get(old.id)
    assert used is not None
    winner = successors[results.index(True)]
    assert used.replaced_by == winner.id


async def test_a_stale_read_loses(db: Database, user_id: int) -> None:
    # The condition is in the UPDATE, not in the caller's earlier read.
    old = await issue(db, user_id, "rt-1")
    successor = await issue(db, user_id, "rt-2")
    async with db.read() as session:
        seen = await Repositories(session).refresh_tokens.get(old.id)
    assert seen is not None and seen.used_at is None
    async with db.transaction() as session:
        assert await Repositories(session).refresh_tokens.mark_used(old.id, NOW, successor.id)
    async with db.transaction() as session:
        assert not await Repositories(session).refresh_tokens.mark_used(seen.id, NOW, None)


async def test_revoke_family_returns_the_live_access_tokens(db: Database, user_id: int) -> None:
    await issue(db, user_id, "rt-1", jti="at-1", at=NOW)  # its access token expired by NOW+1000
    await issue(db, user_id, "rt-2", jti="at-2", at=NOW + 500)
    await issue(db, user_id, "rt-3", at=NOW + 600)  # no access token recorded
    other = await issue(db, user_id, "rt-x", family="fam-2", jti="at-x")
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        refs = await tokens.revoke_family("fam-1", NOW + 1000)
        assert refs == [AccessTokenRef("at-2", NOW + 500 + 900)]
        # Revoking again finds nothing new.
        assert await tokens.revoke_family("fam-1", NOW + 1001) == []
        revoked = await tokens.get_by_hash(hash_token("rt-3"))
        untouched = await tokens.get(other.id)
        assert revoked is not None and revoked.revoked_at == NOW + 1000
        assert untouched == other
        # A revoked token cannot be rotated.
        assert not await tokens.mark_used(revoked.id, NOW + 1002, None)


async def test_revoke_user(db: Database, user_id: int) -> None:
    await issue(db, user_id, "rt-1", family="a", jti="at-a")
    await issue(db, user_id, "rt-2", family="b", jti="at-b")
    bob = await add_user(db, "bob")
    bobs = await issue(db, bob.id, "rt-bob", family="c", jti="at-c")
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        refs = await tokens.revoke_user(user_id, NOW + 1)
        assert sorted(r.jti for r in refs) == ["at-a", "at-b"]
        assert await tokens.get(bobs.id) == bobs


async def test_prune_deletes_unused_tokens_past_either_expiry(db: Database, user_id: int) -> None:
    first = await issue(db, user_id, "rt-1", at=NOW)
    second = await issue(db, user_id, "rt-2", at=NOW + IDLE // 2)
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        assert await tokens.prune(NOW + IDLE - 1) == 0
        assert await tokens.prune(NOW + IDLE) == 1
        assert await tokens.get(first.id) is None
        assert await tokens.get(second.id) is not None
        assert await tokens.prune(NOW + IDLE // 2 + IDLE) == 1


@pytest.mark.parametrize("family_ends", ["absolute expiry", "revocation"])
async def test_prune_keeps_a_used_token_while_its_family_lives(
    db: Database, user_id: int, family_ends: str
) -> None:
    # Presenting it again is reuse, detected from its row: pruned, a replay would be a
    # quiet invalid_grant and the family would live on.
    first = await issue(db, user_id, "rt-1", at=NOW)
    second = await issue(db, user_id, "rt-2", at=NOW + 5)
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        assert await tokens.mark_used(first.id, NOW + 5, second.id)
        assert await tokens.prune(NOW + IDLE + 10) == 1  # the unused successor idled out
        assert await tokens.get(first.id) is not None
        if family_ends == "revocation":
            assert await tokens.prune(NOW + IDLE + 20) == 0
            assert await tokens.revoke_family("fam-1", NOW + IDLE + 20) == []
            assert await tokens.prune(NOW + IDLE + 20) == 1
        else:
            assert await tokens.prune(NOW + ABSOLUTE - 1) == 0
            assert await tokens.prune(NOW + ABSOLUTE) == 1
        assert await tokens.get(first.id) is None


async def test_prune_keeps_a_token_while_its_access_token_is_accepted(
    db: Database, user_id: int
) -> None:
    # Revoking the family later must still reach that access token (denylist it).
    token = await issue(db, user_id, "rt-1", at=NOW + ABSOLUTE - 60, jti="at-1")
    access_exp = NOW + ABSOLUTE - 60 + 900
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        assert await tokens.prune(NOW + ABSOLUTE, leeway=30) == 0
        assert await tokens.prune(access_exp + 29, leeway=30) == 0
        assert await tokens.revoke_family("fam-1", access_exp + 29, leeway=30) == [
            AccessTokenRef("at-1", access_exp)
        ]
        assert await tokens.prune(access_exp + 30, leeway=30) == 1
        assert await tokens.get(token.id) is None


async def test_revoke_family_reports_access_tokens_inside_the_leeway(
    db: Database, user_id: int
) -> None:
    await issue(db, user_id, "rt-1", jti="at-1", at=NOW)  # exp NOW + 900
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        refs = await tokens.revoke_family("fam-1", NOW + 900 + 30, leeway=60)
        assert refs == [AccessTokenRef("at-1", NOW + 900)]
    await issue(db, user_id, "rt-2", family="fam-2", jti="at-2", at=NOW)
    async with db.transaction() as session:
        tokens = Repositories(session).refresh_tokens
        assert await tokens.revoke_family("fam-2", NOW + 900 + 60, leeway=60) == []


@pytest.mark.parametrize("jti", [None, "at-9"])
async def test_add_returns_the_stored_row_field_by_field(
    db: Database, user_id: int, jti: str | None
) -> None:
    # add() builds its answer from what it inserted: the same values and types as a read.
    added = await issue(db, user_id, "rt-fields", jti=jti)
    async with db.read() as session:
        stored = await Repositories(session).refresh_tokens.get(added.id)
    assert stored is not None
    for field in dataclasses.fields(RefreshToken):
        mine, theirs = getattr(added, field.name), getattr(stored, field.name)
        assert (mine, type(mine)) == (theirs, type(theirs)), field.name


@pytest.mark.parametrize("bad", [True, "1", 1.0, 0, None])
async def test_add_refuses_a_user_id_that_is_not_a_positive_int(db: Database, bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        await issue(db, bad, "rt-bad-user")
