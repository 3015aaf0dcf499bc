"""The refresh_token grant: rotation, the grace window, reuse detection, races, expiry."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tokensmith.server.services.oauth_errors import InvalidGrant, InvalidScope, OAuthError
from tokensmith.server.services.tokens_access import TokenResponse, successor_token
from tokensmith.store import AuditEvent, Client, ConcurrentChange, Repositories, hash_token

from ._tokens_env import ADDRESS, PASSWORD, Env, env, make_env, random_token, rsa_env

pytestmark = pytest.mark.anyio
__all__ = ["env", "rsa_env"]  # the fixtures, imported for pytest


async def login(env: Env, client_id: str = "web") -> tuple[TokenResponse, Client]:
    async with env.db.read() as session:
        existing = await Repositories(session).clients.get(client_id)
    client = existing or (await env.add_client(client_id)).client
    if not await _has_user(env):
        await env.add_user()
    return await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS), client


async def _has_user(env: Env) -> bool:
    async with env.db.read() as session:
        return await Repositories(session).users.get_by_username("alice") is not None


def refresh_of(response: TokenResponse) -> str:
    assert response.refresh_token is not None
    return response.refresh_token


async def test_every_use_rotates(env: Env) -> None:
    first, client = await login(env)
    env.clock.advance(60)
    second = await env.tokens.refresh_grant(client, refresh_of(first), None)
    assert refresh_of(second) != refresh_of(first)
    claims = env.verify(second)
    assert claims["iat"] == int(env.clock.now()) and claims["scope"] == "read write"
    assert claims["jti"] != env.verify(first)["jti"]
    async with env.db.read() as session:
        repo = Repositories(session).refresh_tokens
        old = await repo.get_by_hash(hash_token(refresh_of(first)))
        new = await repo.get_by_hash(hash_token(refresh_of(second)))
    assert old is not None and new is not None
    assert old.used_at == int(env.clock.now()) and old.replaced_by == new.id
    assert new.family_id == old.family_id and new.family_expires_at == old.family_expires_at
    assert new.access_jti == claims["jti"]
    assert await env.count_refresh_rows() == 2
    third = await env.tokens.refresh_grant(client, refresh_of(second), None)
    assert env.verify(third)["sub"] == claims["sub"]


async def test_reuse_after_the_grace_window_revokes_the_whole_family(env: Env) -> None:
    first, client = await login(env)
    second = await env.tokens.refresh_grant(client, refresh_of(first), None)
    env.clock.advance(env.settings.refresh_reuse_grace + 1)
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(first), None)
    # The legitimate holder's newest token dies with the family ...
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(second), None)
    # ... and so do the access tokens issued with the family.
    for response in (first, second):
        assert await env.tokens.introspect(client, response.access_token) == {"active": False}
    reuse = await env.audit(AuditEvent.REFRESH_REUSE_DETECTED)
    assert len(reuse) == 1 and reuse[0].detail["access_tokens_revoked"] == 2
    feed = await env.tokens.revocation_feed(0)
    assert {r["jti"] for r in feed["revoked"]} == {
        env.verify(first)["jti"],
        env.verify(second)["jti"],
    }


async def test_the_grace_window_returns_the_identical_pair(rsa_env: Env) -> None:
    env = rsa_env
    first, client = await login(env)
    env.clock.advance(30)
    second = await env.tokens.refresh_grant(client, refresh_of(first), None)
    env.clock.advance(env.settings.refresh_reuse_grace)
    again = await env.tokens.refresh_grant(client, refresh_of(first), None)
    assert again.refresh_token == second.refresh_token
    assert again.access_token == second.access_token  # RS256 is deterministic
    assert again.expires_in == second.expires_in - env.settings.refresh_reuse_grace
    assert await env.count_refresh_rows() == 2
    assert await env.audit(AuditEvent.REFRESH_REUSE_DETECTED) == []
    # The repeated pair is a working pair.
    third = await env.tokens.refresh_grant(client, refresh_of(again), None)
    assert env.verify(third)["client_id"] == "web"


async def test_a_repeat_carries_the_scope_of_the_first_answer(rsa_env: Env) -> None:
    # One jti, one token: a twin gets the first answer's scope, and one that asks for
    # another scope is not a twin (refused, nothing revoked).
    env = rsa_env
    first, client = await login(env)
    second = await env.tokens.refresh_grant(client, refresh_of(first), "read")
    assert env.verify(second)["scope"] == "read"
    again = await env.tokens.refresh_grant(client, refresh_of(first), None)
    assert again.access_token == second.access_token and again.scope == "read"
    assert (await env.tokens.refresh_grant(client, refresh_of(first), "read")).scope == "read"
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(first), "read write")
    assert await env.audit(AuditEvent.REFRESH_REUSE_DETECTED) == []
    assert env.verify(await env.tokens.refresh_grant(client, refresh_of(second), None))


async def test_concurrent_refreshes_with_one_token_rotate_once(rsa_env: Env) -> None:
    env = rsa_env
    first, client = await login(env)
    results: list[TokenResponse | OAuthError] = []

    async def attempt() -> None:
        try:
            results.append(await env.tokens.refresh_grant(client, refresh_of(first), None))
        except InvalidGrant as exc:
            results.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(attempt)
    pairs = {(r.access_token, r.refresh_token) for r in results if isinstance(r, TokenResponse)}
    assert len(results) == 10
    assert all(isinstance(r, TokenResponse | InvalidGrant) for r in results)
    assert len(pairs) == 1  # one rotation; every success is that rotation's pair
    assert await env.count_refresh_rows() == 2
    async with env.db.read() as session:
        old = await Repositories(session).refresh_tokens.get_by_hash(hash_token(refresh_of(first)))
    assert old is not None and old.replaced_by is not None and old.revoked_at is None


async def test_idle_expiry(tmp_path: Path) -> None:
    async with make_env(
        tmp_path, refresh_token_idle_lifetime=3600, refresh_token_absolute_lifetime=7200
    ) as env:
        first, client = await login(env)
        env.clock.advance(3599)
        second = await env.tokens.refresh_grant(client, refresh_of(first), None)
        env.clock.advance(3600)
        with pytest.raises(InvalidGrant):
            await env.tokens.refresh_grant(client, refresh_of(second), None)
        assert await env.tokens.introspect(client, refresh_of(second)) == {"active": False}


async def test_absolute_expiry_holds_however_often_the_token_is_used(tmp_path: Path) -> None:
    async with make_env(
        tmp_path, refresh_token_idle_lifetime=3600, refresh_token_absolute_lifetime=7200
    ) as env:
        response, client = await login(env)
        for _ in range(3):
            env.clock.advance(2000)
            if int(env.clock.now()) - 1_750_000_000 >= 7200:
                break
            response = await env.tokens.refresh_grant(client, refresh_of(response), None)
        # 6000 s after login the last token is 2000 s old: idle-valid, but the login is over.
        env.clock.advance(1200)
        with pytest.raises(InvalidGrant):
            await env.tokens.refresh_grant(client, refresh_of(response), None)


async def test_scope_may_only_narrow_and_the_refresh_token_keeps_its_scope(env: Env) -> None:
    first, client = await login(env)
    narrow = await env.tokens.refresh_grant(client, refresh_of(first), "read")
    assert env.verify(narrow)["scope"] == "read" and narrow.scope == "read"
    full = await env.tokens.refresh_grant(client, refresh_of(narrow), None)
    assert env.verify(full)["scope"] == "read write"
    with pytest.raises(InvalidScope):
        await env.tokens.refresh_grant(client, refresh_of(full), "read admin")
    # The refused request rotated nothing: the token still works.
    assert env.verify(await env.tokens.refresh_grant(client, refresh_of(full), None))


async def test_a_token_of_another_client_is_invalid(env: Env) -> None:
    first, _ = await login(env)
    other = (await env.add_client("other")).client
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(other, refresh_of(first), None)
    assert await env.count_refresh_rows() == 1


async def test_a_disabled_user_cannot_refresh(env: Env) -> None:
    first, client = await login(env)
    async with env.db.transaction() as session:
        users = Repositories(session).users
        user = await users.get_by_username("alice")
        assert user is not None
        await users.set_disabled(user.id, True, now=int(env.clock.now()))
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(first), None)


@pytest.mark.parametrize("token", ["", "x" * 10_000, "\ud800", "a.b.c", "unknown"])
async def test_garbage_and_unknown_tokens_are_invalid_grants(env: Env, token: str) -> None:
    client = (await env.add_client()).client
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, token, None)
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, random_token(), None)


async def test_no_grace_means_any_reuse_is_detected(tmp_path: Path) -> None:
    # refresh_reuse_grace = 0 switches the grace off, even within the same second.
    async with make_env(tmp_path, refresh_reuse_grace=0) as env:
        first, client = await login(env)
        await env.tokens.refresh_grant(client, refresh_of(first), None)
        with pytest.raises(InvalidGrant):
            await env.tokens.refresh_grant(client, refresh_of(first), None)
        assert len(await env.audit(AuditEvent.REFRESH_REUSE_DETECTED)) == 1


async def test_a_successor_inserted_by_a_concurrent_rotation_is_a_lost_race(env: Env) -> None:
    # Under READ COMMITTED (PostgreSQL) two rotations of one token can both read it
    # unused; the loser's insert of the same derived successor hits the unique hash.
    # SQLite serializes writers, so the winner's row is planted here by hand.
    first, client = await login(env)
    old = refresh_of(first)
    async with env.db.transaction() as session:
        repo = Repositories(session).refresh_tokens
        row = await repo.get_by_hash(hash_token(old))
        assert row is not None
        await repo.add(
            token_hash=hash_token(successor_token(env.tokens._refresh_secret, old)),
            family_id=row.family_id,
            user_id=row.user_id,
            client_id=row.client_id,
            scope=row.scope,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            family_expires_at=row.family_expires_at,
        )
    with pytest.raises(InvalidGrant):  # retried, then refused: never a database error
        await env.tokens.refresh_grant(client, old, None)
    async with env.db.transaction() as session:
        with pytest.raises(ConcurrentChange):
            await Repositories(session).refresh_tokens.add(
                token_hash=hash_token(successor_token(env.tokens._refresh_secret, old)),
                family_id="f",
                user_id=1,
                client_id=client.client_id,
                scope="",
                issued_at=0,
                expires_at=1,
                family_expires_at=1,
            )
