"""The password grant against an admin's change made while its argon2 check runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import argon2
import pytest
from argon2.low_level import Type

from tokensmith.server.services.oauth_errors import InvalidGrant
from tokensmith.server.services.passwords import PasswordHasher, VerifyResult
from tokensmith.server.services.users import UserService
from tokensmith.store import AuditEvent, Repositories

from ._tokens_env import ADDRESS, PASSWORD, Env, env

pytestmark = pytest.mark.anyio
__all__ = ["env"]  # the fixture, imported for pytest

NEW_PASSWORD = "a brand new password 123"


class ChangeWhileVerifying:
    """The hasher, but ``during`` runs once between argon2's verdict and the grant's writes."""

    def __init__(self, real: PasswordHasher, during: Callable[[], Awaitable[None]]) -> None:
        self.real = real
        self.during = during

    async def verify_async(self, password_hash: str | None, password: str) -> VerifyResult:
        result = await self.real.verify_async(password_hash, password)
        await self.during()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def change_during_login(env: Env, during: Callable[[UserService], Awaitable[None]]) -> None:
    users = UserService(env.db, env.hasher, env.tokens, clock=env.clock)

    async def once() -> None:
        env.tokens.passwords = env.hasher  # type: ignore[assignment]
        await during(users)

    env.tokens.passwords = ChangeWhileVerifying(env.hasher, once)  # type: ignore[assignment]


async def stored_hash(env: Env) -> str:
    async with env.db.read() as session:
        user = await Repositories(session).users.get_by_username("alice")
    assert user is not None
    return user.password_hash


async def test_a_user_disabled_meanwhile_gets_no_token(env: Env) -> None:
    client = (await env.add_client()).client
    await env.add_user()

    async def disable(users: UserService) -> None:
        await users.set_disabled("alice", True, actor="admin")
        env.clock.advance(1)  # argon2 crossed a second: the not-before time alone misses it

    change_during_login(env, disable)
    with pytest.raises(InvalidGrant):
        await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert await env.count_refresh_rows() == 0
    assert await env.audit(AuditEvent.LOGIN_OK) == []
    [failed] = await env.audit(AuditEvent.LOGIN_FAILED)
    assert failed.detail == {"reason": "changed"}


@pytest.mark.parametrize("old_parameters", [False, True])
async def test_a_password_reset_meanwhile_wins(env: Env, old_parameters: bool) -> None:
    # With old parameters the login would also rehash the password it checked: written
    # over the reset, the old password would work again and the new one would not.
    client = (await env.add_client()).client
    if old_parameters:
        old = argon2.PasswordHasher(
            time_cost=2, memory_cost=8, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
        )
        await env.add_user(password_hash=old.hash(PASSWORD))
    else:
        await env.add_user()

    async def reset(users: UserService) -> None:
        await users.set_password("alice", NEW_PASSWORD, actor="admin")

    change_during_login(env, reset)
    with pytest.raises(InvalidGrant):
        await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert env.hasher.verify(await stored_hash(env), NEW_PASSWORD).ok
    assert not env.hasher.verify(await stored_hash(env), PASSWORD).ok
    assert await env.count_refresh_rows() == 0
    ok = await env.tokens.password_grant(client, "alice", NEW_PASSWORD, None, ADDRESS)
    assert env.verify(ok)["sub"]


async def test_roles_changed_meanwhile_are_the_ones_in_the_token(env: Env) -> None:
    client = (await env.add_client()).client
    await env.add_user(roles=("ADMIN", "EDITOR"))

    async def demote(users: UserService) -> None:
        await users.set_roles("alice", ["EDITOR"], actor="admin")

    change_during_login(env, demote)
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    claims = env.verify(response)
    assert claims["roles"] == ["EDITOR"]
    [issued] = await env.audit(AuditEvent.TOKEN_ISSUED)
    assert issued.detail["jti"] == claims["jti"]


async def test_another_login_rehashing_meanwhile_is_no_reason_to_refuse(env: Env) -> None:
    # After the hashing parameters change, two devices of one user log in at once: both
    # read the old hash, the first rehashes. The second's password still matches.
    client = (await env.add_client()).client
    old = argon2.PasswordHasher(
        time_cost=2, memory_cost=8, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
    )
    await env.add_user(password_hash=old.hash(PASSWORD))

    async def other_device(users: UserService) -> None:
        await env.tokens.password_grant(client, "alice", PASSWORD, None, "198.51.100.77")

    change_during_login(env, other_device)
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert env.verify(response)["sub"]
    assert argon2.extract_parameters(await stored_hash(env)) == env.hasher.parameters
    assert len(await env.audit(AuditEvent.LOGIN_OK)) == 2
    assert await env.audit(AuditEvent.LOGIN_FAILED) == []
