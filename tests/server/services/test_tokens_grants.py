"""The password and client_credentials grants over a real SQLite file and key ring."""

from __future__ import annotations

from pathlib import Path

import argon2
import pytest
from argon2.low_level import Type

from tokensmith.jose import decode_unverified
from tokensmith.server.services.oauth_errors import (
    InvalidGrant,
    InvalidScope,
    SlowDown,
    UnauthorizedClient,
)
from tokensmith.server.services.passwords import VerifyResult
from tokensmith.server.services.throttle_policy import ThrottlePolicy
from tokensmith.store import AuditEvent, Repositories, hash_token

from ._tokens_env import ADDRESS, AUDIENCE, ISSUER, PASSWORD, START, Env, env, make_env

pytestmark = pytest.mark.anyio
__all__ = ["env"]  # the fixture, imported for pytest


async def test_password_grant_issues_an_rfc9068_token_and_a_refresh_token(env: Env) -> None:
    user = await env.add_user(profile={"name": "Alice A.", "email": "alice@example.test"})
    client = (await env.add_client()).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)

    claims = env.verify(response)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == str(user.id)
    assert claims["aud"] == AUDIENCE
    assert claims["iat"] == START and claims["exp"] == START + 900
    assert claims["client_id"] == "web"
    assert claims["scope"] == "read write"
    assert claims["roles"] == ["EDITOR"]
    assert claims["name"] == "Alice A." and claims["email"] == "alice@example.test"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    header = decode_unverified(response.access_token).header
    assert header["typ"] == "at+jwt"
    assert header["kid"] == env.keyring.signer().kid

    body = response.to_dict()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "read write"
    assert response.refresh_token is not None and len(response.refresh_token) >= 43
    assert response.refresh_token not in repr(response)
    async with env.db.read() as session:
        row = await Repositories(session).refresh_tokens.get_by_hash(
            hash_token(response.refresh_token)
        )
    assert row is not None and row.access_jti == claims["jti"]
    assert row.access_expires_at == claims["exp"]
    assert row.expires_at == START + env.settings.refresh_token_idle_lifetime
    assert row.family_expires_at == START + env.settings.refresh_token_absolute_lifetime
    assert [e.event for e in await env.audit()][:3] == [
        AuditEvent.TOKEN_ISSUED,
        AuditEvent.LOGIN_OK,
        AuditEvent.CLIENT_CREATED,
    ]


async def test_username_is_matched_in_its_normalized_form(env: Env) -> None:
    await env.add_user("Alice")
    client = (await env.add_client()).client
    response = await env.tokens.password_grant(
        client, "\uff21\uff2c\uff29\uff23\uff25", PASSWORD, None, ADDRESS
    )
    assert env.verify(response)["client_id"] == "web"


async def test_wrong_password_unknown_disabled_and_impossible_user_get_one_answer(
    env: Env,
) -> None:
    await env.add_user("alice")
    await env.add_user("bob", disabled=True)
    client = (await env.add_client()).client
    answers = []
    for username, password in [
        ("alice", "wrong password!!"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
        ("bad\u200bname", PASSWORD),
    ]:
        with pytest.raises(InvalidGrant) as caught:
            await env.tokens.password_grant(client, username, password, None, ADDRESS)
        answers.append((caught.value.status, caught.value.body(), caught.value.code))
    assert len(set(map(repr, answers))) == 1
    assert answers[0][0] == 400 and answers[0][1]["error"] == "invalid_grant"
    failed = await env.audit(AuditEvent.LOGIN_FAILED)
    assert sorted(e.detail["reason"] for e in failed) == [
        "disabled",
        "password",
        "unknown_user",
        "unknown_user",
    ]
    # Never the attempted username of an unknown user, never a password.
    text = repr([(e.subject, e.detail) for e in failed])
    assert "nobody" not in text and PASSWORD not in text
    assert await env.count_refresh_rows() == 0


async def test_an_unknown_user_still_costs_a_password_verification(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = (await env.add_client()).client
    seen: list[str | None] = []
    original = env.hasher.verify_async

    async def spy(stored: str | None, password: str) -> VerifyResult:
        seen.append(stored)
        return await original(stored, password)

    monkeypatch.setattr(env.hasher, "verify_async", spy)
    with pytest.raises(InvalidGrant):
        await env.tokens.password_grant(client, "ghost", PASSWORD, None, ADDRESS)
    assert seen == [None]  # the hasher burns a dummy verification for None


async def test_failures_are_throttled_and_the_credential_is_not_checked_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = ThrottlePolicy(free_failures=2, base_delay=30, max_delay=60, lock_threshold=5)
    async with make_env(tmp_path, throttle_policy=policy) as env:
        await env.add_user("alice")
        client = (await env.add_client()).client
        for _ in range(3):
            with pytest.raises(InvalidGrant):
                await env.tokens.password_grant(client, "alice", "nope nope nope", None, ADDRESS)
        calls = 0
        original = env.hasher.verify_async

        async def counting(stored: str | None, password: str) -> VerifyResult:
            nonlocal calls
            calls += 1
            return await original(stored, password)

        monkeypatch.setattr(env.hasher, "verify_async", counting)
        with pytest.raises(SlowDown) as caught:
            await env.tokens.password_grant(client, "ALICE", PASSWORD, None, ADDRESS)
        assert calls == 0
        assert caught.value.status == 429 and caught.value.retry_after == 30
        assert caught.value.headers() == {"Retry-After": "30"}
        assert caught.value.body()["error"] == "slow_down"
        # The real user at another address is not locked out.
        other = await env.tokens.password_grant(client, "alice", PASSWORD, None, "198.51.100.9")
        assert env.verify(other)["client_id"] == "web"
        throttled = await env.audit(AuditEvent.THROTTLED)
        assert len(throttled) == 1  # once per delay, not once per refusal
        assert throttled[0].detail["kind"] == "user"
        assert throttled[0].client_address == ADDRESS
        assert throttled[0].subject is None
        env.clock.advance(30)
        ok = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
        assert env.verify(ok)["scope"] == "read write"
        assert calls == 2


async def test_a_hash_with_old_parameters_is_replaced_on_login(env: Env) -> None:
    old = argon2.PasswordHasher(
        time_cost=2, memory_cost=8, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
    )
    user = await env.add_user(password_hash=old.hash(PASSWORD))
    client = (await env.add_client()).client
    await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    async with env.db.read() as session:
        stored = await Repositories(session).users.get(user.id)
    assert stored is not None and stored.password_hash != user.password_hash
    assert argon2.extract_parameters(stored.password_hash) == env.hasher.parameters
    assert (await env.audit(AuditEvent.LOGIN_OK))[0].detail["rehashed"] is True


async def test_the_client_lifetime_applies_but_never_exceeds_the_server_maximum(env: Env) -> None:
    await env.add_user()
    short = (await env.add_client("short", access_token_lifetime=120)).client
    long = (await env.add_client("long", access_token_lifetime=86_400)).client
    claims = env.verify(await env.tokens.password_grant(short, "alice", PASSWORD, None, ADDRESS))
    assert claims["exp"] - claims["iat"] == 120
    response = await env.tokens.password_grant(long, "alice", PASSWORD, None, ADDRESS)
    claims = env.verify(response)
    assert claims["exp"] - claims["iat"] == env.settings.access_token_lifetime
    assert response.expires_in == env.settings.access_token_lifetime


async def test_scope_is_checked_against_the_client(env: Env) -> None:
    await env.add_user()
    client = (await env.add_client()).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, "write", ADDRESS)
    assert env.verify(response)["scope"] == "write" and response.scope == "write"
    for scope in ("admin", "read admin", 'read "x"', "read  write"):
        with pytest.raises(InvalidScope):
            await env.tokens.password_grant(client, "alice", PASSWORD, scope, ADDRESS)


async def test_no_scope_means_no_scope_member_or_claim(env: Env) -> None:
    # RFC 6749's scope is one or more tokens: an empty string is not a scope.
    await env.add_user()
    client = (await env.add_client(scopes=())).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert "scope" not in response.to_dict() and "scope" not in env.verify(response)
    assert "scope" not in await env.tokens.introspect(client, response.access_token)
    assert response.refresh_token is not None
    refresh = await env.tokens.introspect(client, response.refresh_token)
    assert refresh["active"] is True and "scope" not in refresh


async def test_a_client_without_the_grant_type_is_unauthorized(env: Env) -> None:
    await env.add_user()
    client = (await env.add_client(grant_types=("client_credentials",))).client
    with pytest.raises(UnauthorizedClient) as caught:
        await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert caught.value.body()["error"] == "unauthorized_client"


async def test_no_refresh_token_without_the_refresh_grant(env: Env) -> None:
    await env.add_user()
    client = (await env.add_client(grant_types=("password",))).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert response.refresh_token is None and "refresh_token" not in response.to_dict()
    assert await env.count_refresh_rows() == 0


async def test_audiences(env: Env) -> None:
    await env.add_user()
    two = (await env.add_client("two", audiences=("https://a.test", "https://b.test"))).client
    response = await env.tokens.password_grant(two, "alice", PASSWORD, None, ADDRESS)
    assert env.verify(response, audience="https://b.test")["aud"] == [
        "https://a.test",
        "https://b.test",
    ]
    # Without an audience a client authenticates (a resource server reading the
    # revocation feed) but is never issued a token: RFC 9068 tokens name one.
    none = (await env.add_client("none", audiences=())).client
    with pytest.raises(UnauthorizedClient):
        await env.tokens.password_grant(none, "alice", PASSWORD, None, ADDRESS)


async def test_client_credentials(env: Env) -> None:
    new = await env.add_client("svc", grant_types=("client_credentials",), scopes=("jobs",))
    response = await env.tokens.client_credentials_grant(new.client, None)
    claims = env.verify(response)
    assert claims["sub"] == "svc" and claims["client_id"] == "svc"
    assert claims["scope"] == "jobs" and "roles" not in claims
    assert response.refresh_token is None
    assert response.to_dict() == {
        "access_token": response.access_token,
        "token_type": "Bearer",
        "expires_in": 900,
        "scope": "jobs",
    }
    issued = await env.audit(AuditEvent.TOKEN_ISSUED)
    assert issued[0].subject == "svc" and issued[0].detail["grant_type"] == "client_credentials"
    with pytest.raises(InvalidScope):
        await env.tokens.client_credentials_grant(new.client, "read")


async def test_client_credentials_refused_to_public_and_unauthorized_clients(env: Env) -> None:
    web = (await env.add_client()).client
    with pytest.raises(UnauthorizedClient):
        await env.tokens.client_credentials_grant(web, None)
    async with env.db.transaction() as session:
        # Registered past the service's checks, as an older version might have done.
        public = await Repositories(session).clients.add(
            "legacy",
            secret_hash=None,
            grant_types=["client_credentials"],
            audiences=[AUDIENCE],
            now=START,
        )
    with pytest.raises(UnauthorizedClient):
        await env.tokens.client_credentials_grant(public, None)
