"""A fake issuer behind ``httpx.MockTransport``: discovery, JWKS, revocation feed.

Tokens are signed with the real JOSE core; only the network is replaced. The fake
counts every request by path, so tests can assert how many fetches happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.jose import JWK, JWKSet, encode_jwt

from .hostile import HostileServer

ISSUER = "https://auth.example.test"
AUDIENCE = "https://api.example.test"
JWKS_URI = f"{ISSUER}/.well-known/jwks.json"
DISCOVERY_URI = f"{ISSUER}/.well-known/openid-configuration"
FEED_URI = f"{ISSUER}/oauth/revocations"
CLIENT_ID = "resource server"  # a space: Basic credentials must be form-encoded
CLIENT_SECRET = "s3cret+/="
NOW = 1_767_225_600


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def es_key() -> JWK:
    return JWK.generate("ES256", kid="key-1")


@pytest.fixture(scope="session")
def es_key_2() -> JWK:
    return JWK.generate("ES256", kid="key-2")


@pytest.fixture(scope="session")
def rsa_key() -> JWK:
    return JWK.generate("RS256", kid="rsa-1")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def sign(key: JWK, clock: FixedClock, *, omit: tuple[str, ...] = (), **overrides: Any) -> str:
    """An RFC 9068 access token as tokensmith's server issues it, valid for 15 minutes.

    ``overrides`` replace claims (``typ`` and ``kid`` go to the header); ``omit``
    leaves claims out, including the generated ``exp``, ``iat`` and ``jti``.
    """
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "client_id": "demo",
        "scope": "api read",
        "roles": ["EDITOR"],
    }
    typ = overrides.pop("typ", "at+jwt")
    kid = overrides.pop("kid", None)
    claims.update(overrides)
    for name in omit:
        claims.pop(name, None)
    return encode_jwt(
        claims,
        key,
        typ=typ,
        kid=kid,
        expires_in=None if "exp" in claims or "exp" in omit else 900,
        issued_at="iat" not in claims and "iat" not in omit,
        jti="jti" not in claims and "jti" not in omit,
        clock=clock,
    )


@dataclass
class FakeIssuer:
    """The token server's three documents, with knobs for failures."""

    keys: list[JWK]
    issuer: str = ISSUER
    max_age: int | None = 600
    #: Replace the JWKS answer: a status code, raw bytes, or an exception to raise.
    jwks_status: int = 200
    jwks_body: bytes | None = None
    jwks_error: Exception | None = None
    jwks_headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    #: The revocation feed: (seq, kind, entry) with kind "revoked" or "not_before".
    feed: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    feed_error: Exception | None = None
    counts: Counter[str] = field(default_factory=Counter)
    requests: list[httpx.Request] = field(default_factory=list)
    on_request: Callable[[httpx.Request], None] | None = None

    def jwks_document(self) -> bytes:
        return JWKSet([key.public() for key in self.keys]).to_json().encode()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        self.counts[path] += 1
        if self.on_request is not None:
            self.on_request(request)
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.metadata or self.default_metadata())
        if path == "/.well-known/jwks.json":
            return self.jwks(request)
        if path == "/oauth/revocations":
            return self.revocations(request)
        return httpx.Response(404)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)

    def default_metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": JWKS_URI, "token_endpoint": f"{ISSUER}/t"}

    def jwks(self, request: httpx.Request) -> httpx.Response:
        if self.jwks_error is not None:
            raise self.jwks_error
        body = self.jwks_body if self.jwks_body is not None else self.jwks_document()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, **self.jwks_headers}
        if self.max_age is not None:
            headers.setdefault("Cache-Control", f"public, max-age={self.max_age}")
        if self.jwks_status != 200:
            return httpx.Response(self.jwks_status, headers=headers)
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers=headers)
        return httpx.Response(200, content=body, headers=headers)

    def revocations(self, request: httpx.Request) -> httpx.Response:
        if self.feed_error is not None:
            raise self.feed_error
        expected = base64.b64encode(b"resource+server:s3cret%2B%2F%3D").decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "invalid_client"})
        after = int(request.url.params["after"])
        limit = int(request.url.params.get("limit", "100"))
        page = [entry for entry in sorted(self.feed, key=lambda e: e[0]) if entry[0] > after]
        page = page[:limit]
        body = {
            "revoked": [entry for _, kind, entry in page if kind == "revoked"],
            "not_before": [entry for _, kind, entry in page if kind == "not_before"],
            "next_cursor": page[-1][0] if page else after,
        }
        return httpx.Response(200, content=json.dumps(body).encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    @property
    def jwks_fetches(self) -> int:
        return self.counts["/.well-known/jwks.json"]


@pytest.fixture
def fake(es_key: JWK) -> FakeIssuer:
    return FakeIssuer(keys=[es_key])


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A real server on 127.0.0.1 for answers MockTransport cannot fake."""
    with HostileServer().running() as server:
        yield server
