"""``BearerAuthMiddleware`` around a bare ASGI app, driven by ``httpx.ASGITransport``.

The verifier is the SDK's offline ``AsyncVerifier.from_jwks`` over a static key set, so
every token check is the real one; a counting wrapper shows each request is verified
once. The app behind it answers the claims it was given, or raises the ``AuthError``
a route would.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import decode_unverified
from tokensmith.middleware import BearerAuthMiddleware, Forbidden, MissingBearer, claims_of
from tokensmith.middleware.asgi import STATE_KEY
from tokensmith.verify import AccessClaims, AsyncVerifier

from .helpers import (
    DENIAL,
    REALM,
    Keys,
    assert_bare_challenge,
    assert_forbidden,
    assert_invalid_token,
    async_verifier,
    bad_tokens,
    config,
    secrets_of,
    token,
    websocket_handshake,
)

pytestmark = pytest.mark.anyio

BASE = "http://app.test"


class Counting:
    """The real verifier, counting its calls."""

    def __init__(self, inner: AsyncVerifier) -> None:
        self.inner = inner
        self.calls = 0

    async def verify(self, token: str) -> AccessClaims:
        self.calls += 1
        return await self.inner.verify(token)


class Inner:
    """A bare ASGI app: records the calls; routes by path."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[AccessClaims | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        if scope["type"] != "http":
            return
        claims = claims_of(scope)
        self.seen.append(claims)
        path = scope["path"]
        if path == "/protected" and claims is None:
            raise MissingBearer()
        if path == "/admin":
            raise Forbidden("The token lacks a role this operation needs.")
        if path == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise Forbidden("too late to answer 403")
        body = json.dumps({"sub": None if claims is None else claims.sub}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Harness:
    def __init__(self, http: httpx.AsyncClient, inner: Inner, verifier: Counting) -> None:
        self.http = http
        self.inner = inner
        self.verifier = verifier


@asynccontextmanager
async def harness(keys: Keys, verifier: Any = None) -> AsyncIterator[Harness]:
    counting = Counting(async_verifier(keys)) if verifier is None else verifier
    inner = Inner()
    app = BearerAuthMiddleware(inner, counting, realm=REALM)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield Harness(http, inner, counting)


def bearer(value: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {value}"}


async def test_no_token_passes_with_no_claims(keys: Keys) -> None:
    async with harness(keys) as h:
        response = await h.http.get("/")
        assert response.status_code == 200
        assert response.json() == {"sub": None}
        assert h.inner.seen == [None]
        assert h.verifier.calls == 0


async def test_a_valid_token_puts_its_claims_in_the_scope_state(keys: Keys) -> None:
    async with harness(keys) as h:
        response = await h.http.get("/", headers=bearer(token(keys)))
        assert response.status_code == 200
        assert response.json() == {"sub": "user-42"}
        (claims,) = h.inner.seen
        assert isinstance(claims, AccessClaims)
        assert claims.roles == ("EDITOR",)
        assert claims.scopes == ("read", "write")
        assert h.verifier.calls == 1


async def test_an_audience_list_naming_this_service_is_accepted(keys: Keys) -> None:
    good = token(keys, aud=["https://other.example.test", "https://api.example.test"])
    async with harness(keys) as h:
        response = await h.http.get("/", headers=bearer(good))
        assert response.json() == {"sub": "user-42"}
        (claims,) = h.inner.seen
        assert claims is not None
        assert claims.aud == ("https://other.example.test", "https://api.example.test")


async def test_a_cached_token_is_refused_once_it_expires_or_is_revoked(keys: Keys) -> None:
    clock = FixedClock(time.time())
    verifier = AsyncVerifier.from_jwks(keys.public, config(), clock=clock)
    first, second = token(keys), token(keys)
    async with harness(keys, verifier=Counting(verifier)) as h:
        for value in (first, second):
            assert (await h.http.get("/", headers=bearer(value))).status_code == 200
        # The verified-token cache answers the second time; the denylist still applies.
        claims = decode_unverified(second).claims
        verifier.denylist.revoke(claims["jti"], claims["exp"])
        response = await h.http.get("/", headers=bearer(second))
        description = assert_invalid_token(
            response.status_code, response.headers, response.json(), response.text, []
        )
        assert description == "The token has been revoked."
        assert (await h.http.get("/", headers=bearer(first))).status_code == 200
        clock.advance(900 + 60)  # exp plus the default leeway
        response = await h.http.get("/", headers=bearer(first))
        description = assert_invalid_token(
            response.status_code, response.headers, response.json(), response.text, []
        )
        assert description == "The token has expired."


async def test_lowercase_bearer_scheme_is_accepted(keys: Keys) -> None:
    async with harness(keys) as h:
        for scheme in ("bearer", "BEARER"):
            response = await h.http.get("/", headers=bearer(token(keys), scheme))
            assert response.status_code == 200
            assert response.json() == {"sub": "user-42"}


async def test_no_token_on_a_protected_route_is_a_bare_challenge(keys: Keys) -> None:
    async with harness(keys) as h:
        response = await h.http.get("/protected")
        assert_bare_challenge(response.status_code, response.headers, response.json())
        assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize(
    "name",
    [
        "tampered",
        "signature_cut",
        "foreign_key_same_kid",
        "unknown_kid",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "no_audience",
        "wrong_typ",
        "no_typ",
        "missing_jti",
        "roles_not_a_list",
        "scope_not_a_string",
        "too_large",
        "alg_none",
        "alg_none_signed",
        "hs256_random_secret",
        "hs256_public_pem",
        "jwk_in_header",
        "two_segments",
        "garbage",
    ],
)
async def test_a_bad_token_is_401_on_any_route_and_the_app_never_runs(
    keys: Keys, name: str
) -> None:
    bad = bad_tokens(keys)[name]
    async with harness(keys) as h:
        for path in ("/", "/protected"):
            response = await h.http.get(path, headers=bearer(bad))
            assert_invalid_token(
                response.status_code,
                response.headers,
                response.json(),
                response.text,
                secrets_of(keys, bad),
            )
        assert h.inner.calls == 0


async def test_another_scheme_passes_with_no_claims(keys: Keys) -> None:
    # RFC 6750 section 3.1: an unsupported method is no bearer credential; the route
    # decides (require answers the bare challenge), as without a header.
    async with harness(keys) as h:
        for header in ("Basic dXNlcjpwYXNzd29yZA==", f"Token {token(keys)}", "x"):
            response = await h.http.get("/", headers={"Authorization": header})
            assert response.status_code == 200
            assert response.json() == {"sub": None}
        assert h.inner.seen == [None, None, None]
        assert h.verifier.calls == 0


async def test_a_bearer_scheme_without_a_token_is_401_invalid_token(keys: Keys) -> None:
    async with harness(keys) as h:
        for header in ("Bearer", "Bearer\tabc", "Bearer:abc"):
            response = await h.http.get("/", headers={"Authorization": header})
            assert_invalid_token(
                response.status_code, response.headers, response.json(), response.text, []
            )
        assert h.inner.calls == 0
        assert h.verifier.calls == 0


async def test_a_malformed_header_is_401_invalid_token(keys: Keys) -> None:
    good = token(keys)
    async with harness(keys) as h:
        for header in (f"Bearer {good} {good}", f'Bearer "{good}"', f"Bearer {good},"):
            response = await h.http.get("/", headers={"Authorization": header})
            description = assert_invalid_token(
                response.status_code,
                response.headers,
                response.json(),
                response.text,
                secrets_of(keys, good),
            )
            assert description == "The bearer token is malformed."
        assert h.verifier.calls == 0


async def test_two_authorization_headers_are_refused(keys: Keys) -> None:
    good = token(keys)
    async with harness(keys) as h:
        headers = [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")]
        response = await h.http.get("/", headers=headers)
        assert_invalid_token(
            response.status_code,
            response.headers,
            response.json(),
            response.text,
            secrets_of(keys, good),
        )
        assert h.inner.calls == 0
        assert h.verifier.calls == 0


async def test_a_token_in_the_query_string_is_not_read(keys: Keys) -> None:
    async with harness(keys) as h:
        response = await h.http.get("/protected", params={"access_token": token(keys)})
        assert_bare_challenge(response.status_code, response.headers, response.json())
        response = await h.http.get("/", params={"access_token": token(keys)})
        assert response.json() == {"sub": None}
        assert h.verifier.calls == 0


async def test_a_token_in_a_form_body_is_not_read(keys: Keys) -> None:
    async with harness(keys) as h:
        response = await h.http.post("/protected", data={"access_token": token(keys)})
        assert_bare_challenge(response.status_code, response.headers, response.json())


async def test_an_auth_error_from_the_app_is_answered(keys: Keys) -> None:
    good = token(keys)
    async with harness(keys) as h:
        response = await h.http.get("/admin", headers=bearer(good))
        assert_forbidden(
            response.status_code,
            response.headers,
            response.json(),
            response.text,
            secrets_of(keys, good),
        )


async def test_an_auth_error_after_the_response_started_is_raised(keys: Keys) -> None:
    async with harness(keys) as h:
        with pytest.raises(Forbidden):
            await h.http.get("/late", headers=bearer(token(keys)))


async def test_no_key_set_is_503_without_a_challenge(keys: Keys) -> None:
    class NoKeys:
        async def verify(self, token: str) -> AccessClaims:
            raise KeySetUnavailable("Last error: HTTP 500.")

    async with harness(keys, verifier=NoKeys()) as h:
        response = await h.http.get("/", headers=bearer(token(keys)))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "www-authenticate" not in response.headers
        assert response.json()["error"] == "temporarily_unavailable"
        assert "HTTP 500" not in response.text
        assert h.inner.calls == 0


async def test_lifespan_scopes_pass_untouched(keys: Keys) -> None:
    inner = Inner()
    counting = Counting(async_verifier(keys))
    app = BearerAuthMiddleware(inner, counting)
    scope: dict[str, Any] = {"type": "lifespan", "headers": [(b"authorization", b"Bearer x")]}
    await app(scope, None, None)
    assert "state" not in scope
    assert inner.calls == 1
    assert counting.calls == 0


async def test_a_websocket_handshake_with_a_bad_token_never_reaches_the_app(keys: Keys) -> None:
    inner = Inner()
    app = BearerAuthMiddleware(inner, async_verifier(keys), realm=REALM)
    for name, bad in bad_tokens(keys).items():
        # Without the denial-response extension: closed before it is accepted.
        sent = await websocket_handshake(app, bearer(bad), extensions={})
        assert sent == [{"type": "websocket.close", "code": 1008}], name
        # With it: the same 401 as an HTTP request, challenge and JSON body.
        sent = await websocket_handshake(app, bearer(bad), extensions=DENIAL)
        start, body = sent
        assert start["type"] == "websocket.http.response.start", name
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        assert_invalid_token(
            start["status"], headers, json.loads(body["body"]), body["body"].decode(), [bad]
        )
    assert inner.calls == 0


async def test_a_websocket_handshake_carries_its_verified_claims(keys: Keys) -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(claims_of(scope))
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})

    middleware = BearerAuthMiddleware(app, async_verifier(keys), realm=REALM)
    sent = await websocket_handshake(middleware, bearer(token(keys)), extensions={})
    assert sent == [{"type": "websocket.accept"}]
    sent = await websocket_handshake(middleware, {}, extensions={})
    assert sent == [{"type": "websocket.accept"}]
    assert isinstance(seen[0], AccessClaims) and seen[0].sub == "user-42"
    assert seen[1] is None


async def test_an_auth_error_raised_by_a_websocket_route_is_a_denied_handshake(
    keys: Keys,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise MissingBearer()

    async def app_after_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise Forbidden("late")

    middleware = BearerAuthMiddleware(app, async_verifier(keys), realm=REALM)
    sent = await websocket_handshake(middleware, {}, extensions=DENIAL)
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
    sent = await websocket_handshake(middleware, {}, extensions={})
    assert sent == [{"type": "websocket.close", "code": 1008}]
    # Once the route has accepted, the error is the server's to handle: re-raised.
    late = BearerAuthMiddleware(app_after_accept, async_verifier(keys), realm=REALM)
    with pytest.raises(Forbidden):
        await websocket_handshake(late, {}, extensions={})


async def test_the_claims_are_under_the_documented_state_key(keys: Keys) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["state"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = BearerAuthMiddleware(app, async_verifier(keys))
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        await http.get("/", headers=bearer(token(keys)))
        await http.get("/")
    assert seen[0][STATE_KEY].sub == "user-42"
    assert seen[1][STATE_KEY] is None


async def test_the_default_realm_is_api(keys: Keys) -> None:
    middleware = BearerAuthMiddleware(Inner(), async_verifier(keys))
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        response = await http.get("/protected")
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("realm", ['a"b', "a\\b"])
def test_a_realm_that_would_break_the_header_is_refused(keys: Keys, realm: str) -> None:
    with pytest.raises(ValueError, match="realm"):
        BearerAuthMiddleware(Inner(), async_verifier(keys), realm=realm)


def test_claims_of_without_the_middleware_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="BearerAuthMiddleware is not installed"):
        claims_of({"type": "http", "headers": []})
    with pytest.raises(RuntimeError, match="BearerAuthMiddleware is not installed"):
        claims_of({"type": "http", "state": {}})


def test_claims_of_reads_a_request_object() -> None:
    class Request:
        def __init__(self) -> None:
            self.scope: dict[str, Any] = {"state": {STATE_KEY: None}}

    assert claims_of(Request()) is None
