"""ANCHORS.md section 3, the verifier SDK's row: CVE-2026-48524.

PyJWT < 2.13: "unknown kid triggered a JWKS fetch every time, retried on failure". The
test that would have caught it: "1,000 tokens with random kids within the cooldown -> at
most 1 fetch (count requests on a local server)".

Every test here serves the issuer's documents from a real HTTP server on 127.0.0.1
(``HostileServer``) and counts the requests it received; the verifiers fetch over real
sockets with their own httpx clients. The clock is injected (``FixedClock``) and walked
through the cooldown, so 1,000 tokens can be spread over one whole cooldown without
sleeping. Covered: the sync ``Verifier`` and the ``AsyncVerifier`` (sequential and
concurrent floods), with the key set URL given or found by discovery, with the issuer
answering, failing in several ways (the "retried on failure" half of the row), changing
its key set on every fetch, or down from the start; and the flood arriving as HTTP
requests through the ASGI and Flask middleware.
"""

from __future__ import annotations

import asyncio
import http.server
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from tokensmith.clock import FixedClock
from tokensmith.errors import KeyNotFound, KeySetUnavailable
from tokensmith.jose import JWK, JWKSet, encode_jwt
from tokensmith.middleware import BearerAuthMiddleware, claims_of
from tokensmith.middleware.flask import BearerAuth, current_claims
from tokensmith.verify import AsyncVerifier, JWKSCachePolicy, Verifier, VerifierConfig

from .conftest import AUDIENCE
from .hostile import HostileServer, send

pytestmark = pytest.mark.anyio

#: The row's number of tokens, all within one cooldown.
FLOOD = 1000
COOLDOWN = 30.0
POLICY = JWKSCachePolicy(cooldown=COOLDOWN, min_refresh=60, max_refresh=3600)
#: How the issuer answers the JWKS requests made after the first (successful) one.
LATER_ANSWERS = ["same set", "HTTP 500", "connection dropped", "not a key set", "new set"]
FAILING = {"HTTP 500", "connection dropped", "not a key set"}
SOURCES = ["jwks_uri", "discovery"]


# -- the local issuer -------------------------------------------------------------------------


class Issuer:
    """The issuer's discovery document and JWKS on a real local server, with a switch."""

    def __init__(self, server: HostileServer, key: JWK) -> None:
        self.server = server
        self.url = server.url
        self.key = key
        #: How the JWKS is answered from now on (one of LATER_ANSWERS).
        self.answer = "same set"
        server.routes["/jwks"] = self._jwks
        server.routes["/.well-known/openid-configuration"] = lambda handler: send(
            handler, 200, {"issuer": self.url, "jwks_uri": f"{self.url}/jwks"}
        )

    def _jwks(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        fresh = (("Cache-Control", b"max-age=3600"),)
        if self.answer == "HTTP 500":
            send(handler, 500, b"", fresh)
        elif self.answer == "connection dropped":
            handler.close_connection = True  # hang up without a status line
        elif self.answer == "not a key set":
            send(handler, 200, b"<html>maintenance</html>", fresh)
        elif self.answer == "new set":
            # Another document on every request: each fetch installs a new set object.
            keys = [self.key.public(), JWK.generate("ES256").public()]
            send(handler, 200, JWKSet(keys).to_dict(), fresh)
        else:
            send(handler, 200, JWKSet([self.key.public()]).to_dict(), fresh)

    def jwks_fetches(self) -> int:
        return self.server.paths().count("/jwks")

    def discovery_fetches(self) -> int:
        return self.server.paths().count("/.well-known/openid-configuration")

    def config(self, source: str) -> VerifierConfig:
        jwks_uri = f"{self.url}/jwks" if source == "jwks_uri" else None
        return VerifierConfig(
            issuer=self.url, audience=AUDIENCE, jwks_uri=jwks_uri, jwks_cache=POLICY
        )

    def token(self, clock: FixedClock, key: JWK | None = None, kid: str | None = None) -> str:
        """An access token as the issuer's server makes them, signed by ``key``."""
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "42", "client_id": "demo"}
        return encode_jwt(
            claims,
            key or self.key,
            typ="at+jwt",
            kid=kid,
            expires_in=900,
            issued_at=True,
            jti=True,
            clock=clock,
        )


@pytest.fixture
def issuer(hostile: HostileServer, es_key: JWK) -> Issuer:
    return Issuer(hostile, es_key)


@pytest.fixture(scope="module")
def attacker() -> JWK:
    return JWK.generate("ES256")


def random_kid_tokens(issuer: Issuer, clock: FixedClock, attacker: JWK) -> Iterator[str]:
    """FLOOD tokens, each with a fresh random kid, spread evenly over one cooldown.

    The clock moves between tokens: the first is made at the window's start, the last
    just before the cooldown that started with it ends.
    """
    step = (COOLDOWN - 0.01) / (FLOOD - 1)
    for i in range(FLOOD):
        if i:
            clock.advance(step)
        yield issuer.token(clock, attacker, kid=secrets.token_urlsafe(12))


def failed(verifier: Verifier | AsyncVerifier) -> bool:
    """Whether the last JWKS fetch failed (the cache keeps serving the set it had)."""
    assert verifier.jwks is not None
    return verifier.jwks.state.last_error is not None


def next_window(clock: FixedClock, start: float) -> float:
    """Move the clock to the end of the cooldown that began at ``start``."""
    clock.set(start + COOLDOWN)
    return clock.now()


# -- the sync Verifier --------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("answer", LATER_ANSWERS)
def test_cve_2026_48524_sync_random_kids_within_the_cooldown(
    issuer: Issuer, clock: FixedClock, attacker: JWK, source: str, answer: str
) -> None:
    """CVE-2026-48524 (PyJWT < 2.13): 1,000 random kids within the cooldown, at most 1 fetch."""
    with Verifier(issuer.config(source), clock=clock) as verifier:
        assert issuer.jwks_fetches() == 1  # start(): the first fetch opens the cooldown
        issuer.answer = answer
        genuine = issuer.token(clock)
        start = clock.now()
        # Window 0 is the cooldown start() opened: no fetch at all. Windows 1 and 2 begin
        # with a cooldown over: the first miss of each may fetch, the other 999 may not.
        for window in range(3):
            for token in random_kid_tokens(issuer, clock, attacker):
                with pytest.raises(KeyNotFound) as info:
                    verifier.verify(token)
                assert info.value.code == "key_not_found"
            assert issuer.jwks_fetches() == 1 + window, (answer, window)
            if source == "discovery":
                assert issuer.discovery_fetches() == 1 + window
            if window:  # the refetch really met the answer under test
                assert failed(verifier) == (answer in FAILING), verifier.jwks
            # The issuer's own tokens pass throughout, and cost no fetch either.
            assert verifier.verify(genuine).sub == "42"
            assert issuer.jwks_fetches() == 1 + window
            start = next_window(clock, start)


def test_cve_2026_48524_sync_issuer_down_from_the_start(
    issuer: Issuer, clock: FixedClock, attacker: JWK
) -> None:
    """CVE-2026-48524, no key set ever fetched: a failed fetch is not retried per token."""
    issuer.answer = "HTTP 500"
    with Verifier(issuer.config("jwks_uri"), clock=clock) as verifier:
        assert issuer.jwks_fetches() == 1  # start() tried, failed, logged
        start = clock.now()
        for window in range(3):
            for token in random_kid_tokens(issuer, clock, attacker):
                with pytest.raises(KeySetUnavailable):
                    verifier.verify(token)
            assert issuer.jwks_fetches() == 1 + window
            start = next_window(clock, start)
        issuer.answer = "same set"  # the issuer is back: the next miss after the cooldown
        assert verifier.verify(issuer.token(clock)).sub == "42"
        assert issuer.jwks_fetches() == 4


# -- the AsyncVerifier --------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("answer", LATER_ANSWERS)
async def test_cve_2026_48524_async_random_kids_within_the_cooldown(
    issuer: Issuer, clock: FixedClock, attacker: JWK, source: str, answer: str
) -> None:
    """CVE-2026-48524 with the AsyncVerifier: sequential, then 1,000 concurrent misses."""
    async with AsyncVerifier(issuer.config(source), clock=clock) as verifier:
        assert issuer.jwks_fetches() == 1
        issuer.answer = answer
        genuine = issuer.token(clock)
        start = clock.now()
        for window in range(2):
            for token in random_kid_tokens(issuer, clock, attacker):
                with pytest.raises(KeyNotFound):
                    await verifier.verify(token)
            assert issuer.jwks_fetches() == 1 + window, (answer, window)
            start = next_window(clock, start)
        # Window 2: 1,000 misses at once, all in flight together, share one fetch.
        tokens = [
            issuer.token(clock, attacker, kid=secrets.token_urlsafe(12)) for _ in range(FLOOD)
        ]
        results = await asyncio.gather(
            *(verifier.verify(token) for token in tokens), return_exceptions=True
        )
        assert all(isinstance(result, KeyNotFound) for result in results)
        assert issuer.jwks_fetches() == 3, answer
        if source == "discovery":
            assert issuer.discovery_fetches() == 3
        assert failed(verifier) == (answer in FAILING), verifier.jwks
        assert (await verifier.verify(genuine)).sub == "42"
        assert issuer.jwks_fetches() == 3


async def test_cve_2026_48524_async_issuer_down_from_the_start(
    issuer: Issuer, clock: FixedClock, attacker: JWK
) -> None:
    """CVE-2026-48524 with the AsyncVerifier and no key set ever fetched."""
    issuer.answer = "connection dropped"
    async with AsyncVerifier(issuer.config("jwks_uri"), clock=clock) as verifier:
        assert issuer.jwks_fetches() == 1
        start = clock.now()
        for window in range(2):
            for token in random_kid_tokens(issuer, clock, attacker):
                with pytest.raises(KeySetUnavailable):
                    await verifier.verify(token)
            assert issuer.jwks_fetches() == 1 + window
            start = next_window(clock, start)
        results = await asyncio.gather(
            *(verifier.verify(issuer.token(clock, attacker)) for _ in range(FLOOD)),
            return_exceptions=True,
        )
        assert all(isinstance(result, KeySetUnavailable) for result in results)
        assert issuer.jwks_fetches() == 3


# -- through the middleware: the flood as HTTP requests to an application --------------------


async def plain_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI application answering who the token named."""
    claims = claims_of(scope)
    body = b"anonymous" if claims is None else claims.sub.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_cve_2026_48524_asgi_middleware_flood(
    issuer: Issuer, clock: FixedClock, attacker: JWK
) -> None:
    """CVE-2026-48524 through BearerAuthMiddleware: 1,000 requests, random kids, 1 fetch."""
    async with AsyncVerifier(issuer.config("discovery"), clock=clock) as verifier:
        app = BearerAuthMiddleware(plain_app, verifier)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
            start = next_window(clock, clock.now())
            for token in random_kid_tokens(issuer, clock, attacker):
                response = await http.get("/", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401
                assert 'error="invalid_token"' in response.headers["www-authenticate"]
            assert issuer.jwks_fetches() == 2
            next_window(clock, start)
            good = await http.get("/", headers={"Authorization": f"Bearer {issuer.token(clock)}"})
            assert good.status_code == 200 and good.text == "42"
            assert issuer.jwks_fetches() == 2


def flask_app(verifier: Verifier) -> Flask:
    app = Flask(__name__)
    app.testing = True
    auth = BearerAuth(app, verifier)

    @app.get("/")
    @auth.require()
    def me() -> str:
        claims = current_claims()
        assert claims is not None
        return claims.sub

    return app


def test_cve_2026_48524_flask_middleware_flood(
    issuer: Issuer, clock: FixedClock, attacker: JWK
) -> None:
    """CVE-2026-48524 through the Flask extension: 1,000 requests, random kids, 1 fetch."""
    with Verifier(issuer.config("jwks_uri"), clock=clock) as verifier:
        http = flask_app(verifier).test_client()
        start = next_window(clock, clock.now())
        for token in random_kid_tokens(issuer, clock, attacker):
            response = http.get("/", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
        assert issuer.jwks_fetches() == 2
        next_window(clock, start)
        good = http.get("/", headers={"Authorization": f"Bearer {issuer.token(clock)}"})
        assert good.status_code == 200 and good.text == "42"
        assert issuer.jwks_fetches() == 2
