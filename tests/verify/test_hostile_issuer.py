"""Hostile issuers on a real socket: whatever they send, verify() and start() raise only
the documented errors, within the fetch deadline, and keep no private key.

Every test runs the sync ``Verifier`` and the ``AsyncVerifier`` alike.
"""

from __future__ import annotations

import asyncio
import http.server
import logging
import socket
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tokensmith.clock import FixedClock
from tokensmith.errors import KeySetUnavailable, TokensmithError
from tokensmith.jose import JWK, JWKSet
from tokensmith.jose._b64 import uint_to_b64url
from tokensmith.verify import AsyncVerifier, JWKSCachePolicy, JWKSCacheState, Verifier
from tokensmith.verify import VerifierConfig as Config

from .conftest import AUDIENCE, ISSUER, NOW, sign
from .hostile import HostileServer, send

KINDS = ["sync", "async"]
Result = tuple[list[Any], JWKSCacheState, Any]


def run(
    kind: str, config: Config, token: str, clock: FixedClock, advances: tuple[float, ...] = (0,)
) -> Result:
    """start(), then verify ``token`` after each clock advance; errors are returned.

    Only ``TokensmithError`` is caught: anything else fails the test.
    """
    results: list[Any] = []
    if kind == "sync":
        with Verifier(config, clock=clock) as verifier:
            for seconds in advances:
                clock.advance(seconds)
                try:
                    results.append(verifier.verify(token))
                except TokensmithError as exc:
                    results.append(exc)
            assert verifier.jwks is not None
            return results, verifier.jwks.state, verifier.keys

    async def main() -> Result:
        async with AsyncVerifier(config, clock=clock) as verifier:
            for seconds in advances:
                clock.advance(seconds)
                try:
                    results.append(await verifier.verify(token))
                except TokensmithError as exc:
                    results.append(exc)
            assert verifier.jwks is not None
            return results, verifier.jwks.state, verifier.keys

    return asyncio.run(main())


def jwks_config(server: HostileServer, **policy: Any) -> Config:
    return Config(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_uri=f"{server.url}/jwks",
        jwks_cache=JWKSCachePolicy(**policy),
    )


def serve_keys(
    server: HostileServer, document: dict[str, Any], *headers: tuple[str, bytes]
) -> None:
    server.routes["/jwks"] = lambda handler: send(handler, 200, document, headers)


def public_set(*keys: JWK) -> dict[str, Any]:
    return JWKSet([key.public() for key in keys]).to_dict()


# -- 1. cache headers -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        ((("Cache-Control", b"max-age=100"), ("Age", "²".encode())), 100),
        ((("Cache-Control", "max-age=²".encode()),), 300),
        ((("Cache-Control", b"max-age=" + b"9" * 400),), 3600),
    ],
)
def test_an_unreadable_age_or_max_age_is_ignored(
    hostile: HostileServer,
    clock: FixedClock,
    es_key: JWK,
    kind: str,
    headers: tuple[tuple[str, bytes], ...],
    fresh_for: float,
) -> None:
    serve_keys(hostile, public_set(es_key), *headers)
    results, state, _ = run(kind, jwks_config(hostile), sign(es_key, clock), clock)
    assert results[0].sub == "42"
    assert state.fresh_until == NOW + fresh_for


# -- 2. ETag --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("etag", ['"\u00e9"'.encode(), b'"' + b"a" * 300 + b'"', b"no-quotes"])
def test_an_etag_that_cannot_be_sent_back_is_not_kept(
    hostile: HostileServer, clock: FixedClock, es_key: JWK, kind: str, etag: bytes
) -> None:
    serve_keys(hostile, public_set(es_key), ("ETag", etag), ("Cache-Control", b"max-age=60"))
    results, state, _ = run(kind, jwks_config(hostile), sign(es_key, clock), clock, (0, 61, 61))
    assert [claims.sub for claims in results] == ["42", "42", "42"]
    assert hostile.paths() == ["/jwks"] * 3 and state.last_error is None
    assert all("If-None-Match" not in headers for _, headers in hostile.requests)


# -- 3. malformed members -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "member",
    [
        {"kty": "EC", "crv": [1], "x": "a", "y": "b"},
        {"kty": "OKP", "crv": {"a": 1}, "x": "a"},
        {"kty": ["RSA"]},
        {"kty": 1},
        {"kty": "EC", "crv": "P-256", "x": ["a"], "y": "b"},
        {"kty": "RSA", "n": 5, "e": "AQAB"},
    ],
)
def test_a_malformed_key_is_a_failed_fetch(
    hostile: HostileServer, clock: FixedClock, es_key: JWK, kind: str, member: dict[str, Any]
) -> None:
    serve_keys(hostile, {"keys": [es_key.public().to_dict(), member]})
    results, state, _ = run(kind, jwks_config(hostile), sign(es_key, clock), clock)
    assert isinstance(results[0], KeySetUnavailable)
    assert state.last_error is not None and "not a valid JWK Set" in state.last_error


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("name", "value"),
    [("kid", ["a"]), ("alg", {"a": 1}), ("use", 1), ("key_ops", "verify"), ("key_ops", [[1]])],
)
def test_optional_members_of_the_wrong_type_are_a_failed_fetch(
    hostile: HostileServer, clock: FixedClock, es_key: JWK, kind: str, name: str, value: object
) -> None:
    serve_keys(hostile, {"keys": [dict(es_key.public().to_dict(), **{name: value})]})
    results, state, _ = run(kind, jwks_config(hostile), sign(es_key, clock), clock)
    assert isinstance(results[0], KeySetUnavailable)
    assert state.last_error is not None and "not a valid JWK Set" in state.last_error


# -- 4. URLs and transport errors -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://[::1/jwks",
        "http://127.0.0.1/jw\x00ks",
        "http://127.0.0.1:99999/jwks",
        "http://127.0.0.1:1/a b",
        "http://127.0.0.1:-1/jwks",
    ],
)
def test_a_bad_discovered_jwks_uri_is_a_failed_fetch(
    hostile: HostileServer, clock: FixedClock, es_key: JWK, kind: str, jwks_uri: str
) -> None:
    hostile.routes["/.well-known/openid-configuration"] = lambda handler: send(
        handler, 200, {"issuer": hostile.url, "jwks_uri": jwks_uri}
    )
    config = Config(issuer=hostile.url, audience=AUDIENCE)
    results, state, _ = run(kind, config, sign(es_key, clock, iss=hostile.url), clock)
    assert isinstance(results[0], KeySetUnavailable)
    assert state.last_error is not None and state.last_error.startswith("discovery: jwks_uri")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_a_failed_fetch(clock: FixedClock, es_key: JWK, kind: str) -> None:
    config = Config(
        issuer=ISSUER, audience=AUDIENCE, jwks_uri=f"http://127.0.0.1:{closed_port()}/jwks"
    )
    results, state, _ = run(kind, config, sign(es_key, clock), clock)
    assert isinstance(results[0], KeySetUnavailable)
    assert state.last_error is not None and state.last_error.startswith("request failed")


# -- 5. private key material in a remote set ------------------------------------------------


@pytest.fixture(scope="module")
def prime_modulus_key() -> dict[str, Any]:
    """An RSA JWK whose n is a 2048-bit prime with a matching d and no CRT members.

    Recovering p and q from it spins for many CPU-seconds (no factorisation exists).
    """
    e = 65537
    prime = rsa.generate_private_key(public_exponent=e, key_size=4096).private_numbers().p
    d = pow(e, -1, prime - 1)
    return {
        "kty": "RSA",
        "kid": "prime",
        "n": uint_to_b64url(prime),
        "e": "AQAB",
        "d": uint_to_b64url(d),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_remote_set_is_parsed_as_public_keys_only(
    hostile: HostileServer,
    clock: FixedClock,
    es_key: JWK,
    kind: str,
    prime_modulus_key: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = JWK.from_secret(bytes(range(32)), kid="hs").to_dict(private=True)
    document = {"keys": [es_key.to_dict(private=True), prime_modulus_key, secret]}
    serve_keys(hostile, document, ("Cache-Control", b"max-age=60"))
    caplog.set_level(logging.WARNING, "tokensmith.verify")
    started = time.process_time()
    results, state, keys = run(kind, jwks_config(hostile), sign(es_key, clock), clock, (0, 61))
    assert time.process_time() - started < 2
    assert [claims.sub for claims in results] == ["42", "42"]
    assert sorted(key.kid for key in keys) == ["key-1", "prime"]
    assert not any(key.is_private for key in keys)
    assert state.last_error is None and hostile.paths() == ["/jwks", "/jwks"]
    warnings = [r.getMessage() for r in caplog.records if "private key material" in r.getMessage()]
    assert len(warnings) == 1  # the unchanged body is not parsed, nor reported, again
    assert all(f"'{kid}'" in warnings[0] for kid in ("key-1", "prime", "hs"))
    assert document["keys"][0]["d"] not in warnings[0]


# -- 6. the total deadline ------------------------------------------------------------------


def drip_headers(server: HostileServer) -> None:
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        # Each line arrives well within the read timeout; the headers never end.
        for _ in range(200):
            if server.closing.wait(0.05):
                return
            handler.wfile.write(b"X-Pad: a\r\n")
            handler.wfile.flush()

    server.routes["/jwks"] = route


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_dripping_headers_is_cut_off_at_the_total_deadline(
    hostile: HostileServer, clock: FixedClock, es_key: JWK, kind: str
) -> None:
    drip_headers(hostile)
    started = time.monotonic()
    results, state, _ = run(kind, jwks_config(hostile, timeout=0.5), sign(es_key, clock), clock)
    assert time.monotonic() - started < 2
    assert isinstance(results[0], KeySetUnavailable)
    assert state.last_error == "timed out"
