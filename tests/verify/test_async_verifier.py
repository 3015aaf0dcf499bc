"""The AsyncVerifier: the same rules on asyncio, one shared fetch, the poller as a task."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import (
    AlgorithmNotAllowed,
    ExpiredToken,
    InvalidClaim,
    KeyNotFound,
    KeySetUnavailable,
    RevokedToken,
)
from tokensmith.jose import JWK, JWKSet
from tokensmith.verify import AsyncVerifier, VerifierConfig

from .conftest import AUDIENCE, CLIENT_ID, CLIENT_SECRET, ISSUER, NOW, FakeIssuer, sign

pytestmark = pytest.mark.anyio


def config(**overrides: Any) -> VerifierConfig:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    values.update(overrides)
    return VerifierConfig(**values)


def verifier(fake: FakeIssuer, clock: FixedClock, **overrides: Any) -> AsyncVerifier:
    return AsyncVerifier(config(**overrides), clock=clock, transport=fake.async_transport())


async def test_a_valid_token_gives_typed_claims(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    async with verifier(fake, clock) as v:
        claims = await v.verify(sign(es_key, clock))
        assert claims.sub == "42" and claims.roles == ("EDITOR",)
        assert claims.scopes == ("api", "read") and claims.aud == (AUDIENCE,)
        assert await v.verify(sign(es_key, clock)) != claims  # another jti
    assert fake.jwks_fetches == 1


async def test_refusals_carry_the_cores_codes(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock)
    with pytest.raises(InvalidClaim) as info:
        await v.verify(sign(es_key, clock, aud="https://other.example"))
    assert info.value.code == "invalid_claim" and info.value.claim == "aud"
    token = sign(es_key, clock)
    await v.verify(token)
    clock.advance(900 + 60)
    with pytest.raises(ExpiredToken):
        await v.verify(token)  # a cache hit, still expired
    await v.aclose()


async def test_fifty_concurrent_first_verifications_share_one_fetch(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return fake.handle(request)

    v = AsyncVerifier(
        config(jwks_uri="https://auth.example.test/.well-known/jwks.json"),
        clock=clock,
        transport=httpx.MockTransport(slow),
    )
    calls = [asyncio.ensure_future(v.verify(sign(es_key, clock))) for _ in range(50)]
    # The fetch starts only after every caller has found it in flight and waits.
    await asyncio.wait_for(entered.wait(), 10)
    release.set()
    results = await asyncio.gather(*calls)
    assert fake.jwks_fetches == 1 and all(claims.sub == "42" for claims in results)
    await v.aclose()


async def test_fifty_concurrent_misses_of_a_rotated_kid_share_one_fetch(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK, es_key_2: JWK
) -> None:
    v = verifier(fake, clock)
    await v.start()
    fake.keys = [es_key, es_key_2]
    clock.advance(30)
    tokens = [sign(es_key_2, clock) for _ in range(50)]
    results = await asyncio.gather(*(v.verify(token) for token in tokens))
    assert fake.jwks_fetches == 2 and len(results) == 50
    await v.aclose()


async def test_random_kids_cost_one_fetch_per_cooldown(fake: FakeIssuer, clock: FixedClock) -> None:
    attacker = JWK.generate("ES256")
    v = verifier(fake, clock)
    await v.start()
    clock.advance(30)
    for _ in range(200):
        with pytest.raises(KeyNotFound):
            await v.verify(sign(attacker, clock, kid=secrets.token_hex(8)))
    assert fake.jwks_fetches == 2
    await v.aclose()


async def test_no_keys_at_all_is_key_set_unavailable(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    fake.jwks_error = httpx.ConnectError("down")
    v = verifier(fake, clock)
    await v.start()  # logged, not raised
    with pytest.raises(KeySetUnavailable, match="ConnectError"):
        await v.verify(sign(es_key, clock))
    assert fake.jwks_fetches == 1
    await v.aclose()


async def test_the_poller_task_runs_between_start_and_aclose(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    polled = asyncio.Event()
    fake.on_request = lambda request: (
        polled.set() if request.url.path == "/oauth/revocations" else None
    )
    fake.feed = [(1, "revoked", {"jti": "gone", "exp": NOW + 900})]
    token = sign(es_key, clock, jti="gone")
    v = verifier(
        fake,
        clock,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        revocation_poll_interval=0.001,
    )
    async with v:
        await asyncio.wait_for(polled.wait(), 10)
        task = v._poller._task if v._poller else None
        assert task is not None and not task.done()
        state = v.revocation_state
        assert state is not None and state.cursor == 1
        with pytest.raises(RevokedToken):
            await v.verify(token)
    assert task.cancelled()


async def test_an_unreachable_feed_keeps_verification_going(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    fake.feed_error = httpx.ReadTimeout("slow")
    v = verifier(fake, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    state = await v.poll_revocations()
    assert state.last_error == "timed out"
    assert (await v.verify(sign(es_key, clock))).sub == "42"
    await v.aclose()


async def test_offline_async_verifier(clock: FixedClock, es_key: JWK) -> None:
    v = AsyncVerifier.from_jwks(JWKSet([es_key.public()]), config(), clock=clock)
    assert (await v.verify(sign(es_key, clock))).sub == "42"
    assert v.jwks is None and v.revocation_state is None
    with pytest.raises(ValueError):
        await v.poll_revocations()
    await v.aclose()
    secret = secrets.token_bytes(32)
    hs = AsyncVerifier.from_secret(secret, config(), clock=clock)
    assert (await hs.verify(sign(JWK.from_secret(secret, alg="HS256"), clock))).sub == "42"


async def test_an_algorithm_the_issuer_adds_is_allowed_after_the_next_fetch(
    clock: FixedClock, es_key: JWK, rsa_key: JWK, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeIssuer(keys=[es_key])
    fake.metadata = {**fake.default_metadata(), "id_token_signing_alg_values_supported": ["ES256"]}
    async with verifier(fake, clock) as v:
        assert (await v.verify(sign(es_key, clock))).sub == "42"
        fake.keys = [es_key, rsa_key]
        fake.metadata["id_token_signing_alg_values_supported"] = ["ES256", "RS256"]
        with pytest.raises(AlgorithmNotAllowed):
            await v.verify(sign(rsa_key, clock))
        clock.advance(600)  # due: the key set and the document are read again
        assert (await v.verify(sign(rsa_key, clock))).sub == "42"
        # A failing document later leaves the last one standing; keys still refresh.
        fake.metadata = {"issuer": "https://evil.example", "jwks_uri": "https://evil.example/k"}
        clock.advance(600)
        assert (await v.verify(sign(rsa_key, clock))).sub == "42"
        assert fake.jwks_fetches == 3 and "the last document stands" in caplog.text
