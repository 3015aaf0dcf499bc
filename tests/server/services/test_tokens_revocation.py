"""Revocation (RFC 7009), introspection (RFC 7662), the revocation feed, log out everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.jose import JWK, encode_jwt
from tokensmith.server.services.oauth_errors import InvalidGrant, TemporarilyUnavailable
from tokensmith.server.services.tokens_access import TokenResponse
from tokensmith.store import AuditEvent, Client, UnknownUser, prune

from ._tokens_env import ADDRESS, AUDIENCE, ISSUER, PASSWORD, Env, env, make_env

pytestmark = pytest.mark.anyio
__all__ = ["env"]  # the fixture, imported for pytest

INACTIVE = {"active": False}
DAY = 86_400


async def login(env: Env) -> tuple[TokenResponse, Client]:
    await env.add_user()
    client = (await env.add_client()).client
    return await env.tokens.password_grant(client, "alice", PASSWORD, "read", ADDRESS), client


def refresh_of(response: TokenResponse) -> str:
    assert response.refresh_token is not None
    return response.refresh_token


async def test_introspection_of_a_live_access_token(env: Env) -> None:
    response, client = await login(env)
    answer = await env.tokens.introspect(client, response.access_token)
    claims = env.verify(response)
    assert answer == {
        "active": True,
        "scope": "read",
        "client_id": "web",
        "sub": claims["sub"],
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "jti": claims["jti"],
        "token_type": "Bearer",
    }
    # A resource server (another client) may introspect access tokens too.
    api = (await env.add_client("api", grant_types=("client_credentials",))).client
    assert (await env.tokens.introspect(api, response.access_token))["active"] is True


async def test_introspection_of_a_refresh_token_is_for_its_client_only(env: Env) -> None:
    response, client = await login(env)
    answer = await env.tokens.introspect(client, refresh_of(response))
    assert answer["active"] is True and answer["token_type"] == "refresh_token"
    assert answer["client_id"] == "web" and answer["scope"] == "read"
    assert answer["sub"] == env.verify(response)["sub"]
    assert answer["exp"] == answer["iat"] + env.settings.refresh_token_idle_lifetime
    other = (await env.add_client("other")).client
    assert await env.tokens.introspect(other, refresh_of(response)) == INACTIVE
    await env.tokens.refresh_grant(client, refresh_of(response), None)
    assert await env.tokens.introspect(client, refresh_of(response)) == INACTIVE  # used


async def test_expired_malformed_and_foreign_tokens_are_inactive(env: Env) -> None:
    response, client = await login(env)
    foreign = JWK.generate("ES256")
    forged = encode_jwt(
        {"iss": ISSUER, "sub": "1", "aud": AUDIENCE, "jti": "x", "client_id": "web"},
        foreign,
        typ="at+jwt",
        expires_in=600,
        clock=env.clock,
    )
    wrong_typ = encode_jwt(
        {"iss": ISSUER, "sub": "1", "aud": AUDIENCE, "jti": "y", "client_id": "web"},
        env.keyring.signer(),
        expires_in=600,
        clock=env.clock,
    )
    for token in (forged, wrong_typ, "a.b.c", "", "\ud800", "x" * 20_000, "nope"):
        assert await env.tokens.introspect(client, token) == INACTIVE
    env.clock.advance(env.settings.access_token_lifetime)
    assert await env.tokens.introspect(client, response.access_token) == INACTIVE


async def test_revoking_an_access_token_denylists_its_jti(env: Env) -> None:
    response, client = await login(env)
    jti = env.verify(response)["jti"]
    exp = env.verify(response)["exp"]
    await env.tokens.revoke(client, response.access_token, "access_token")
    assert await env.tokens.introspect(client, response.access_token) == INACTIVE
    feed = await env.tokens.revocation_feed(0)
    # Kept until exp + leeway: verifiers accept the token that long.
    assert feed["revoked"] == [{"jti": jti, "exp": exp + env.settings.leeway}]
    assert feed["not_before"] == [] and feed["next_cursor"] >= 1
    assert await env.tokens.revocation_feed(feed["next_cursor"]) == {
        "revoked": [],
        "not_before": [],
        "next_cursor": feed["next_cursor"],
    }
    revoked = await env.audit(AuditEvent.TOKEN_REVOKED)
    assert len(revoked) == 1 and revoked[0].detail == {"token_type": "access_token", "jti": jti}
    # Revoking the access token leaves the login's refresh token alive.
    assert env.verify(await env.tokens.refresh_grant(client, refresh_of(response), None))


async def test_revoking_a_refresh_token_revokes_its_family_and_access_tokens(env: Env) -> None:
    first, client = await login(env)
    second = await env.tokens.refresh_grant(client, refresh_of(first), None)
    await env.tokens.revoke(client, refresh_of(second), "refresh_token")
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(second), None)
    for response in (first, second):
        assert await env.tokens.introspect(client, response.access_token) == INACTIVE
    assert len(await env.audit(AuditEvent.TOKEN_REVOKED)) == 1
    assert len((await env.tokens.revocation_feed(0))["revoked"]) == 2


async def test_a_family_revoked_inside_the_leeway_denylists_its_access_token(env: Env) -> None:
    # Past exp but inside the leeway, verifiers still accept the access token.
    response, client = await login(env)
    jti = env.verify(response)["jti"]
    env.clock.advance(env.settings.access_token_lifetime + env.settings.leeway // 2)
    await env.tokens.revoke(client, refresh_of(response))
    revoked = (await env.tokens.revocation_feed(0))["revoked"]
    assert [entry["jti"] for entry in revoked] == [jti]


async def test_a_family_revoked_after_its_end_still_reaches_its_last_access_token(
    tmp_path: Path,
) -> None:
    # Rotated a minute before the family's absolute expiry, then pruned after it: the
    # row that names the last access token must still be there for the revocation.
    lifetimes = {"refresh_token_idle_lifetime": DAY, "refresh_token_absolute_lifetime": DAY}
    async with make_env(tmp_path, **lifetimes) as env:
        await check_revoked_after_the_family_ended(env)


async def check_revoked_after_the_family_ended(env: Env) -> None:
    response, client = await login(env)
    env.clock.advance(env.settings.refresh_token_absolute_lifetime - 60)
    last = await env.tokens.refresh_grant(client, refresh_of(response), None)
    env.clock.advance(120)
    async with env.db.transaction() as session:
        await prune(
            session, int(env.clock.now()), audit_retention=86_400, leeway=env.settings.leeway
        )
    await env.tokens.revoke(client, refresh_of(last))
    assert await env.tokens.introspect(client, last.access_token) == INACTIVE
    assert await env.count_refresh_rows() == 1  # the login's token went with the family
    env.clock.advance(env.settings.access_token_lifetime + env.settings.leeway)
    async with env.db.transaction() as session:
        counts = await prune(
            session, int(env.clock.now()), audit_retention=86_400, leeway=env.settings.leeway
        )
    assert counts.refresh_tokens == 1 and await env.count_refresh_rows() == 0


async def test_tokens_of_another_client_and_unknown_tokens_are_ignored(env: Env) -> None:
    response, _ = await login(env)
    other = (await env.add_client("other")).client
    for token in (response.access_token, refresh_of(response), "unknown", "a.b.c", "", "\ud800"):
        await env.tokens.revoke(other, token, None)  # no error, per RFC 7009
    owner = (await env.add_client("web2")).client
    assert (await env.tokens.introspect(owner, response.access_token))["active"] is True
    assert await env.audit(AuditEvent.TOKEN_REVOKED) == []
    assert (await env.tokens.revocation_feed(0))["revoked"] == []


async def test_log_out_everywhere(env: Env) -> None:
    first, client = await login(env)
    service = (await env.add_client("svc", grant_types=("client_credentials",))).client
    machine = await env.tokens.client_credentials_grant(service, None)
    sub = env.verify(first)["sub"]
    count = await env.tokens.revoke_all_for_user(int(sub), actor="admin")
    assert count == 1
    assert await env.tokens.introspect(client, first.access_token) == INACTIVE
    with pytest.raises(InvalidGrant):
        await env.tokens.refresh_grant(client, refresh_of(first), None)
    # Other subjects are untouched.
    assert (await env.tokens.introspect(client, machine.access_token))["active"] is True
    feed = await env.tokens.revocation_feed(0)
    # The next second: iat counts whole seconds, and this one's tokens are revoked too.
    assert feed["not_before"] == [{"sub": sub, "nbf": int(env.clock.now()) + 1}]
    # A login afterwards works.
    env.clock.advance(1)
    again = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert (await env.tokens.introspect(client, again.access_token))["active"] is True
    with pytest.raises(UnknownUser):
        await env.tokens.revoke_all_for_user(999_999)


async def test_a_token_issued_before_not_before_without_a_jti_entry_is_inactive(
    env: Env,
) -> None:
    # A password grant for a client without refresh tokens: its access token is known to
    # no refresh row, so only the not-before time can revoke it.
    await env.add_user()
    client = (await env.add_client(grant_types=("password",))).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    env.clock.advance(5)
    sub = env.verify(response)["sub"]
    assert await env.tokens.revoke_all_for_user(int(sub)) == 0
    assert await env.tokens.introspect(client, response.access_token) == INACTIVE


async def test_a_token_issued_in_the_second_of_the_log_out_is_inactive(env: Env) -> None:
    # No refresh token, so no jti to denylist: only not-before can catch it, and its
    # iat is the very second of the log-out.
    await env.add_user()
    client = (await env.add_client(grant_types=("password",))).client
    response = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    sub = env.verify(response)["sub"]
    assert await env.tokens.revoke_all_for_user(int(sub)) == 0
    assert await env.tokens.introspect(client, response.access_token) == INACTIVE
    feed = await env.tokens.revocation_feed(0)
    assert feed["not_before"] == [{"sub": sub, "nbf": env.verify(response)["iat"] + 1}]


async def test_a_login_in_the_second_of_the_log_out_is_told_to_retry(env: Env) -> None:
    await env.add_user()
    client = (await env.add_client()).client
    first = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    await env.tokens.revoke_all_for_user(int(env.verify(first)["sub"]))
    rows, logins = await env.count_refresh_rows(), len(await env.audit(AuditEvent.LOGIN_OK))
    with pytest.raises(TemporarilyUnavailable) as caught:
        await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert caught.value.retry_after == 1
    # Nothing was written: no refresh token, no login row.
    assert await env.count_refresh_rows() == rows
    assert len(await env.audit(AuditEvent.LOGIN_OK)) == logins
    env.clock.advance(1)
    again = await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS)
    assert (await env.tokens.introspect(client, again.access_token))["active"] is True


async def test_the_feed_pages(env: Env) -> None:
    response, client = await login(env)
    tokens = [response] + [
        await env.tokens.password_grant(client, "alice", PASSWORD, None, ADDRESS) for _ in range(2)
    ]
    for token in tokens:
        await env.tokens.revoke(client, token.access_token, None)
    page = await env.tokens.revocation_feed(0, limit=2)
    assert len(page["revoked"]) == 2
    rest = await env.tokens.revocation_feed(page["next_cursor"], limit=2)
    assert len(rest["revoked"]) == 1
    seen = {r["jti"] for r in page["revoked"] + rest["revoked"]}
    assert seen == {env.verify(t)["jti"] for t in tokens}
    with pytest.raises(ValueError):
        await env.tokens.revocation_feed(-1)
