"""Key rotation seen the way a verifier sees it: the JWKS fetched over HTTP.

The injected ``FixedClock`` walks time and the key ring's maintenance pass
(``server.ctx.keyring.maintain``) runs at each instant, as the lifespan's job would.
Tokens come from the token endpoint and are checked against the JWKS served at that
moment, never against the ring itself. Short settings make a full timeline cheap:
a key signs for an hour, its successor is published ten minutes before it signs, access
tokens live five minutes and verifiers allow 30 s of skew, so a retired key must stay
published for 330 s and no longer.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import ExpiredToken, KeyNotFound
from tokensmith.jose import JWK, JWKSet, JWTPolicy, decode_unverified, verify_jwt
from tokensmith.server.app import create_app
from tokensmith.server.services.keyring import HS256_KID
from tokensmith.server.settings import Settings

from .conftest import AUDIENCE, CHEAP, ISSUER, START, Server, basic

pytestmark = pytest.mark.anyio

JWKS = "/.well-known/jwks.json"
PERIOD = 3600
PREPUBLISH = 600
LIFETIME = 300
LEEWAY = 30
RETENTION = LIFETIME + LEEWAY
STEP = 30
TIMELINE: dict[str, Any] = {
    "rotation_period": PERIOD,
    "key_prepublish": PREPUBLISH,
    "jwks_max_age": 60,
    "access_token_lifetime": LIFETIME,
    "leeway": LEEWAY,
}
# The members a public JWK of each type may carry; anything else could be private.
PUBLIC_MEMBERS = {
    "RSA": {"kty", "n", "e", "kid", "alg", "use"},
    "EC": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "OKP": {"kty", "crv", "x", "kid", "alg", "use"},
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k", "r", "t"}


@asynccontextmanager
async def serving(
    tmp_path: Path, algorithms: tuple[str, ...] = ("ES256",), **settings: Any
) -> AsyncIterator[Server]:
    """``conftest.running`` with the signing algorithms chosen (and the short timeline)."""
    clock = FixedClock(START)
    config = Settings(
        issuer=ISSUER,
        data_dir=tmp_path,
        signing_algorithms=algorithms,
        **{**TIMELINE, **settings},
    )
    app = create_app(config, clock=clock, password_parameters=CHEAP)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Server(http, app.state.ctx, clock, app)


async def _service(server: Server) -> dict[str, str]:
    client = await server.add_client("svc", grant_types=("client_credentials",))
    assert client.secret is not None
    return basic("svc", client.secret)


async def _issue(server: Server, auth: dict[str, str]) -> str:
    response = await server.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=auth
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _kid(token: str) -> str:
    kid: str = decode_unverified(token).header["kid"]
    return kid


async def _jwks(server: Server) -> tuple[bytes, str, list[dict[str, Any]]]:
    response = await server.http.get(JWKS)
    assert response.status_code == 200
    keys: list[dict[str, Any]] = json.loads(response.content)["keys"]
    return response.content, response.headers["etag"], keys


def _verify(server: Server, token: str, body: bytes, alg: str = "ES256") -> dict[str, Any]:
    policy = JWTPolicy(
        algorithms=[alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        typ="at+jwt",
        leeway=LEEWAY,
        clock=server.clock,
    )
    return verify_jwt(token, JWKSet.from_json(body), policy)


async def _active(server: Server, auth: dict[str, str], token: str) -> bool:
    response = await server.http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert response.status_code == 200
    active: bool = response.json()["active"]
    return active


async def _maintain_at(server: Server, now: int) -> None:
    server.clock.set(now)
    await server.ctx.keyring.maintain(server.ctx.db)


def _assert_public_only(keys: list[dict[str, Any]]) -> None:
    for key in keys:
        assert key["kty"] != "oct"
        assert not PRIVATE_MEMBERS & key.keys(), sorted(key)
        assert key.keys() <= PUBLIC_MEMBERS[key["kty"]], sorted(key)
        assert key["use"] == "sig" and key["kid"] and key["alg"]
    assert all(not jwk.is_private for jwk in JWKSet.from_json(json.dumps({"keys": keys})))


# -- (d) the rotation timeline -------------------------------------------------------------


async def test_rotation_timeline_seen_through_the_served_jwks(tmp_path: Path) -> None:
    # Every STEP seconds, plus the instants just before each rotation and each deletion.
    edges = {START + n * PERIOD + d for n in (1, 2) for d in (-1, RETENTION - 2, RETENTION - 1)}
    end = START + 2 * PERIOD + RETENTION + 2 * STEP
    instants = sorted(set(range(START, end + 1, STEP)) | edges)
    async with serving(tmp_path) as server:
        auth = await _service(server)
        first_seen: dict[str, int] = {}  # kid -> first instant in the JWKS
        gone_at: dict[str, int] = {}  # kid -> first instant no longer in the JWKS
        signs_from: dict[str, int] = {}  # kid -> first instant a token carried it
        last_verified: dict[str, int] = {}  # kid -> last instant one of its tokens verified
        issued: list[tuple[str, int]] = []  # (token, exp) of tokens not yet seen expired
        cached: tuple[bytes, str] | None = None
        for now in instants:
            await _maintain_at(server, now)
            body, etag, keys = await _jwks(server)
            _assert_public_only(keys)
            kids = {key["kid"] for key in keys}
            if cached is not None:
                # A verifier revalidating its cached copy learns every change, and only then.
                again = await server.http.get(JWKS, headers={"If-None-Match": cached[1]})
                assert (again.status_code == 304) == (body == cached[0]), now
            cached = (body, etag)
            for kid in kids:
                assert kid not in gone_at, f"{kid} came back at {now}"
                first_seen.setdefault(kid, now)
            for kid in first_seen.keys() - kids - gone_at.keys():
                gone_at[kid] = now

            token = await _issue(server, auth)
            kid = _kid(token)
            assert kid in kids, "a token is signed by a key the JWKS does not publish"
            signs_from.setdefault(kid, now)
            issued.append((token, decode_unverified(token).claims["exp"]))
            # Every token a verifier must still accept verifies against this JWKS.
            live: list[tuple[str, int]] = []
            for old, exp in issued:
                if now < exp + LEEWAY:
                    assert _verify(server, old, body)["client_id"] == "svc"
                    last_verified[_kid(old)] = now
                    live.append((old, exp))
                else:
                    with pytest.raises((ExpiredToken, KeyNotFound)):
                        _verify(server, old, body)
            issued = live

            if now == START + PERIOD:
                # Right after the rotation, the last token of the retired key is active.
                last_old = next(t for t, _ in reversed(issued) if _kid(t) != kid)
                assert _kid(last_old) == next(iter(signs_from))
                assert await _active(server, auth, last_old)

        signers = list(signs_from)
        assert len(signers) == 3
        # New tokens carry the new kid from the rotation instant on ...
        assert signs_from == {
            signers[0]: START,
            signers[1]: START + PERIOD,
            signers[2]: START + 2 * PERIOD,
        }
        # ... and each new key was served prepublish seconds before it signed.
        assert first_seen[signers[1]] == START + PERIOD - PREPUBLISH
        assert first_seen[signers[2]] == START + 2 * PERIOD - PREPUBLISH
        # Old tokens verify until their key leaves the JWKS, which is exactly when the
        # last of them (signed the second before the rotation) can no longer verify.
        assert gone_at == {
            signers[0]: START + PERIOD + RETENTION,
            signers[1]: START + 2 * PERIOD + RETENTION,
        }
        assert last_verified[signers[0]] == START + PERIOD + RETENTION - 2
        assert last_verified[signers[1]] == START + 2 * PERIOD + RETENTION - 2
        # The maintenance passes deleted the rows of both retired keys.
        assert {record.kid for record in server.ctx.keyring.records} == {signers[2]}


async def test_revoking_the_current_key_unpublishes_it_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        auth = await _service(server)
        await _maintain_at(server, START + PERIOD - PREPUBLISH)
        old = await _issue(server, auth)
        old_kid = _kid(old)
        before, etag, keys = await _jwks(server)
        # A next key is published; it does not sign yet.
        assert len(keys) == 2
        (next_kid,) = {key["kid"] for key in keys} - {old_kid}
        assert _verify(server, old, before)["client_id"] == "svc"

        await server.ctx.keyring.revoke(server.ctx.db, old_kid, actor="test")
        # No clock step, no maintenance pass: the very next JWKS request reflects it.
        after, new_etag, keys = await _jwks(server)
        assert {key["kid"] for key in keys} == {next_kid}
        assert new_etag != etag
        stale = await server.http.get(JWKS, headers={"If-None-Match": etag})
        assert stale.status_code == 200 and stale.content == after
        with pytest.raises(KeyNotFound):
            _verify(server, old, after)
        assert not await _active(server, auth, old)
        # The published next key took over at once.
        new = await _issue(server, auth)
        assert _kid(new) == next_kid
        assert _verify(server, new, after)["client_id"] == "svc"


async def test_revoking_a_retired_key_ends_its_retention_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        auth = await _service(server)
        await _maintain_at(server, START + PERIOD - PREPUBLISH)
        server.clock.set(START + PERIOD - 1)
        old = await _issue(server, auth)
        await _maintain_at(server, START + PERIOD)  # old's key retires, still published
        body, _, _ = await _jwks(server)
        assert _verify(server, old, body)["client_id"] == "svc"
        await server.ctx.keyring.revoke(server.ctx.db, _kid(old))
        body, _, keys = await _jwks(server)
        assert _kid(old) not in {key["kid"] for key in keys}
        with pytest.raises(KeyNotFound):
            _verify(server, old, body)
        assert not await _active(server, auth, old)


async def test_revoking_the_next_key_means_it_never_signs(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        auth = await _service(server)
        current = _kid(await _issue(server, auth))
        await _maintain_at(server, START + PERIOD - PREPUBLISH)
        _, _, keys = await _jwks(server)
        (doomed,) = {key["kid"] for key in keys} - {current}
        await server.ctx.keyring.revoke(server.ctx.db, doomed)
        _, _, keys = await _jwks(server)
        assert {key["kid"] for key in keys} == {current}
        # The next pass publishes a replacement, which waits out its own prepublish.
        await _maintain_at(server, START + PERIOD - PREPUBLISH + 60)
        _, _, keys = await _jwks(server)
        (replacement,) = {key["kid"] for key in keys} - {current}
        assert replacement != doomed
        await _maintain_at(server, START + PERIOD)
        assert _kid(await _issue(server, auth)) == current
        await _maintain_at(server, START + PERIOD + 60)
        signer = _kid(await _issue(server, auth))
        assert signer == replacement
        _, _, keys = await _jwks(server)
        assert doomed not in {key["kid"] for key in keys}


async def test_revoking_the_only_key_publishes_and_signs_with_a_new_one(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        auth = await _service(server)
        old = await _issue(server, auth)
        await server.ctx.keyring.revoke(server.ctx.db, _kid(old))
        body, _, keys = await _jwks(server)
        new = await _issue(server, auth)
        assert [key["kid"] for key in keys] == [_kid(new)] and _kid(new) != _kid(old)
        assert _verify(server, new, body)["client_id"] == "svc"
        with pytest.raises(KeyNotFound):
            _verify(server, old, body)


# -- (e) the JWKS never carries a private member or a secret --------------------------------

_HS_SECRET = secrets.token_urlsafe(48)


@pytest.mark.parametrize(
    "algorithms",
    [
        ("RS256",),
        ("ES256",),
        ("EdDSA",),
        ("ES256", "HS256"),
        ("HS256", "RS256"),
        ("HS256",),
        ("RS256", "ES256", "EdDSA", "HS256"),
    ],
    ids=lambda algs: "+".join(algs),
)
async def test_jwks_is_public_keys_only_through_a_rotation(
    tmp_path: Path, algorithms: tuple[str, ...]
) -> None:
    hs256 = "HS256" in algorithms
    extra = {"hs256_secret": _HS_SECRET} if hs256 else {}
    secret_forms = [_HS_SECRET.encode(), base64.urlsafe_b64encode(_HS_SECRET.encode()).rstrip(b"=")]
    published_algs = {alg for alg in algorithms if alg != "HS256"}
    async with serving(tmp_path, algorithms, **extra) as server:
        auth = await _service(server)
        for now in (
            START,
            START + PERIOD - PREPUBLISH,  # next keys published
            START + PERIOD,  # rotation: current keys retire
            START + PERIOD + RETENTION,  # retired keys deleted
        ):
            await _maintain_at(server, now)
            body, _, keys = await _jwks(server)
            _assert_public_only(keys)
            assert {key["alg"] for key in keys} == published_algs
            assert b'"oct"' not in body
            for secret in secret_forms:
                assert secret not in body
            token = await _issue(server, auth)
            header = decode_unverified(token).header
            assert header["alg"] == algorithms[0]
            if algorithms[0] == "HS256":
                # Verifiers of HS256 tokens need the shared secret; the JWKS cannot help.
                with pytest.raises(KeyNotFound):
                    _verify(server, token, body, "HS256")
                assert header["kid"] == HS256_KID
                secret_key = JWK.from_secret(_HS_SECRET.encode(), alg="HS256", kid=HS256_KID)
                policy = JWTPolicy(algorithms=["HS256"], audience=AUDIENCE, clock=server.clock)
                assert verify_jwt(token, JWKSet([secret_key]), policy)["client_id"] == "svc"
            else:
                assert _verify(server, token, body, algorithms[0])["client_id"] == "svc"
        if hs256:
            for path in ("/.well-known/openid-configuration", "/openapi.json"):
                document = (await server.http.get(path)).content
                assert all(secret not in document for secret in secret_forms)
