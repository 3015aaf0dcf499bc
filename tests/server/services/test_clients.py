"""Client registration and authentication, the grant and scope helpers, and OAuth errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tokensmith.server.services import clients as clients_module
from tokensmith.server.services.client_rules import (
    ClientConfigError,
    check_grant_type,
    parse_scope,
    resolve_scope,
)
from tokensmith.server.services.clients import hash_client_secret
from tokensmith.server.services.oauth_errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    SlowDown,
    TemporarilyUnavailable,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.server.services.throttle_policy import ThrottlePolicy
from tokensmith.store import AuditEvent, Repositories, UnknownClient

from ._tokens_env import ADDRESS, AUDIENCE, Env, env, make_env

pytestmark = pytest.mark.anyio
__all__ = ["env"]  # the fixture, imported for pytest


async def test_a_confidential_client_gets_its_secret_once_and_it_is_stored_hashed(
    env: Env,
) -> None:
    new = await env.add_client()
    assert new.secret is not None and len(new.secret) >= 43
    assert new.secret not in repr(new)
    async with env.db.read() as session:
        stored = await Repositories(session).clients.get("web")
    assert stored is not None and stored.secret_hash is not None
    assert new.secret not in stored.secret_hash
    assert stored.secret_hash == "sha256$" + hashlib.sha256(new.secret.encode()).hexdigest()
    created = await env.audit(AuditEvent.CLIENT_CREATED)
    assert created[0].subject == "web" and new.secret not in repr(created[0].detail)
    client = await env.clients.authenticate("web", new.secret, ADDRESS)
    assert client.client_id == "web" and client.grant_types == ("password", "refresh_token")


async def test_wrong_secret_unknown_client_and_missing_secret_get_one_answer(env: Env) -> None:
    await env.add_client()
    answers = []
    for client_id, secret in [("web", "wrong"), ("ghost", "wrong"), ("web", None), ("", None)]:
        with pytest.raises(InvalidClient) as caught:
            await env.clients.authenticate(client_id, secret, ADDRESS)
        error = caught.value
        answers.append((error.status, error.body(), error.headers(), error.code))
    assert len({repr(a) for a in answers}) == 1
    status, body, headers, code = answers[0]
    assert status == 401 and body["error"] == "invalid_client" and code == "oauth_invalid_client"
    assert headers["WWW-Authenticate"].startswith("Basic ")
    failures = await env.audit(AuditEvent.LOGIN_FAILED)
    # Newest first; only the registered client's id is recorded.
    assert [entry.subject for entry in failures] == [None, "web", None, "web"]


async def test_an_unknown_client_id_never_reaches_the_audit_log(tmp_path: Path) -> None:
    # Basic's parts swapped put the secret where the id goes: it must not be stored.
    policy = ThrottlePolicy(free_failures=1, base_delay=10, max_delay=60, lock_threshold=3)
    async with make_env(tmp_path, throttle_policy=policy) as custom:
        new = await custom.add_client()
        assert new.secret is not None
        for _ in range(3):
            with pytest.raises((InvalidClient, SlowDown)):
                await custom.clients.authenticate(new.secret, "web", ADDRESS)
        entries = await custom.audit()
        assert {entry.event for entry in entries} >= {
            AuditEvent.LOGIN_FAILED,
            AuditEvent.THROTTLED,
        }
        assert all(new.secret not in repr(entry) for entry in entries)


async def test_a_public_client_must_not_send_a_secret(env: Env) -> None:
    new = await env.add_client("spa", confidential=False)
    assert new.secret is None and new.client.is_public
    assert (await env.clients.authenticate("spa", None, ADDRESS)).client_id == "spa"
    with pytest.raises(InvalidClient):
        await env.clients.authenticate("spa", "anything", ADDRESS)


async def test_a_disabled_client_is_refused(env: Env) -> None:
    new = await env.add_client()
    async with env.db.transaction() as session:
        await Repositories(session).clients.set_disabled("web", True, now=1_750_000_000)
    with pytest.raises(InvalidClient):
        await env.clients.authenticate("web", new.secret, ADDRESS)


async def test_the_throttle_is_asked_before_the_secret_is_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = ThrottlePolicy(free_failures=1, base_delay=10, max_delay=60, lock_threshold=3)
    async with make_env(tmp_path, throttle_policy=policy) as custom:
        new = await custom.add_client()
        assert new.secret is not None
        for _ in range(2):
            with pytest.raises(InvalidClient):
                await custom.clients.authenticate("web", "guess", ADDRESS)
        compared = 0
        original = clients_module._secret_matches

        def spy(stored: str, secret: str) -> bool:
            nonlocal compared
            compared += 1
            return original(stored, secret)

        monkeypatch.setattr(clients_module, "_secret_matches", spy)
        # CVE-2026-9798: even the right secret is not looked at while throttled.
        with pytest.raises(SlowDown) as caught:
            await custom.clients.authenticate("web", new.secret, ADDRESS)
        assert compared == 0 and caught.value.retry_after == 10
        throttled = await custom.audit(AuditEvent.THROTTLED)
        assert len(throttled) == 1 and throttled[0].detail["kind"] == "client"
        assert throttled[0].subject == "web"
        # Another address is not affected, and the wait ends.
        assert await custom.clients.authenticate("web", new.secret, "198.51.100.1")
        custom.clock.advance(10)
        assert await custom.clients.authenticate("web", new.secret, ADDRESS)
        assert compared == 2


async def test_reset_secret(env: Env) -> None:
    old = await env.add_client()
    new = await env.clients.reset_secret("web", actor="admin")
    assert new.secret is not None and new.secret != old.secret
    with pytest.raises(InvalidClient):
        await env.clients.authenticate("web", old.secret, ADDRESS)
    assert await env.clients.authenticate("web", new.secret, ADDRESS)
    await env.add_client("spa", confidential=False)
    with pytest.raises(ClientConfigError):
        await env.clients.reset_secret("spa")
    with pytest.raises(UnknownClient):
        await env.clients.reset_secret("ghost")


async def test_set_audiences_replaces_them_for_tokens_issued_from_now_on(env: Env) -> None:
    new = await env.add_client("svc", grant_types=("client_credentials",))
    env.clients.cache.ttl = 60  # a cached row must not keep the old audiences
    assert await env.clients.authenticate("svc", new.secret, ADDRESS)
    assert len(env.clients.cache) == 1
    env.clock.advance(1)
    changed = await env.clients.set_audiences(
        "svc", ["https://b.example.test", "https://a.example.test"], actor="admin:root"
    )
    assert changed.audiences == ("https://a.example.test", "https://b.example.test")
    assert changed.updated_at == changed.created_at + 1
    client = await env.clients.authenticate("svc", new.secret, ADDRESS)
    assert client.audiences == changed.audiences
    claims = env.verify(
        await env.tokens.client_credentials_grant(client, None), "https://a.example.test"
    )
    assert claims["aud"] == ["https://a.example.test", "https://b.example.test"]
    [row] = await env.audit(AuditEvent.CLIENT_CHANGED)
    assert (row.actor, row.subject, row.client_address) == ("admin:root", "svc", None)
    assert row.detail == {
        "change": "audiences",
        "added": ["https://a.example.test", "https://b.example.test"],
        "removed": [AUDIENCE],
    }
    # None: the client authenticates, and is issued no token.
    assert (await env.clients.set_audiences("svc", [], client_address=ADDRESS)).audiences == ()
    assert (await env.audit(AuditEvent.CLIENT_CHANGED))[0].client_address == ADDRESS


@pytest.mark.parametrize("audiences", [["has space"], [""], ["caf\u00e9"], "https://a.test"])
async def test_set_audiences_refuses_what_create_refuses(env: Env, audiences: Any) -> None:
    await env.add_client()
    with pytest.raises(ClientConfigError):
        await env.clients.set_audiences("web", audiences)
    with pytest.raises(UnknownClient):
        await env.clients.set_audiences("ghost", ["https://a.example.test"])
    assert (await env.clients.get("web")).audiences == (AUDIENCE,)
    assert await env.audit(AuditEvent.CLIENT_CHANGED) == []


@pytest.mark.parametrize(
    ("client_id", "kwargs"),
    [
        ("12345", {}),  # all digits: could collide with a user's sub
        ("", {}),
        ("caf\u00e9", {}),
        ("web", {"grant_types": ("implicit",)}),
        ("web", {"grant_types": ()}),
        ("web", {"grant_types": ("client_credentials",), "confidential": False}),
        ("web", {"scopes": ("bad scope",)}),
    ],
)
async def test_registrations_the_server_refuses(
    env: Env, client_id: str, kwargs: dict[str, object]
) -> None:
    arguments: dict[str, Any] = {"grant_types": ("password",), **kwargs}
    with pytest.raises(ClientConfigError):
        await env.clients.create(client_id, **arguments)
    async with env.db.read() as session:
        assert await Repositories(session).clients.list() == []


async def test_grant_type_and_scope_helpers(env: Env) -> None:
    client = (await env.add_client()).client
    check_grant_type(client, "password")
    with pytest.raises(UnauthorizedClient):
        check_grant_type(client, "client_credentials")
    assert resolve_scope(("read", "write"), None) == ("read", "write")
    assert resolve_scope(("read", "write"), "") == ("read", "write")
    assert resolve_scope(("read", "write"), "write read write") == ("write", "read")
    for bad in ("admin", "read\twrite", " read", "read ", "\u00e9", "x" * 2000):
        with pytest.raises(InvalidScope):
            resolve_scope(("read", "write"), bad)
    assert parse_scope(None) is None


def test_secret_hash_scheme() -> None:
    assert hash_client_secret("s") == "sha256$" + hashlib.sha256(b"s").hexdigest()
    assert not clients_module._secret_matches(hash_client_secret("s"), "\ud800")


def test_oauth_errors_carry_status_code_and_a_safe_body() -> None:
    expected = {
        InvalidRequest: ("invalid_request", 400),
        InvalidClient: ("invalid_client", 401),
        UnauthorizedClient: ("unauthorized_client", 400),
        UnsupportedGrantType: ("unsupported_grant_type", 400),
        InvalidScope: ("invalid_scope", 400),
        InvalidToken: ("invalid_token", 401),
        TemporarilyUnavailable: ("temporarily_unavailable", 503),
    }
    for cls, (error, status) in expected.items():
        exc = cls()
        assert (exc.error, exc.status) == (error, status)
        assert exc.code == "oauth_" + error
        assert exc.body() == {"error": error, "error_description": cls.description}
    assert InvalidRequest("The grant_type parameter is missing.").body()["error_description"] == (
        "The grant_type parameter is missing."
    )
    assert TemporarilyUnavailable(retry_after=5).headers() == {"Retry-After": "5"}
    assert InvalidToken().headers()["WWW-Authenticate"].startswith("Bearer ")
    slow = SlowDown(7)
    assert (slow.status, slow.error, slow.code) == (429, "slow_down", "oauth_too_many_requests")
    with pytest.raises(ValueError):
        SlowDown(0)


async def test_an_audience_change_too_large_to_list_is_audited_by_counts(env: Env) -> None:
    # 100 audiences of 255 characters: both lists would overflow the audit row's detail.
    many = [f"https://{i:03d}.example.test/" + "a" * 230 for i in range(100)]
    assert {len(audience) for audience in many} == {255}
    await env.add_client()
    await env.clients.set_audiences("web", many)
    changed = await env.clients.set_audiences("web", [AUDIENCE])
    assert changed.audiences == (AUDIENCE,)
    latest, first = await env.audit(AuditEvent.CLIENT_CHANGED)
    assert latest.detail == {"change": "audiences", "added_count": 1, "removed_count": 100}
    assert first.detail == {"change": "audiences", "added_count": 100, "removed_count": 1}
