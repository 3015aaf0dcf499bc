"""The sync Verifier against a fake issuer: tokens signed by the real core, no mocks of it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    ExpiredToken,
    InvalidClaim,
    InvalidType,
    KeyNotFound,
    KeySetUnavailable,
    MissingClaim,
    NotYetValid,
    RevokedToken,
    TokenTooLarge,
)
from tokensmith.jose import JWK, JWKSet, encode_jwt
from tokensmith.jose._b64 import b64url_encode
from tokensmith.verify import AccessClaims, JWKSCachePolicy, Verifier, VerifierConfig

from .conftest import AUDIENCE, CLIENT_ID, CLIENT_SECRET, ISSUER, NOW, FakeIssuer, sign


def config(**overrides: Any) -> VerifierConfig:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    values.update(overrides)
    return VerifierConfig(**values)


def verifier(fake: FakeIssuer, clock: FixedClock, **overrides: Any) -> Verifier:
    return Verifier(config(**overrides), clock=clock, transport=fake.transport())


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    import json

    parts = [b64url_encode(json.dumps(p).encode()) for p in (header, claims)]
    return b".".join([*parts, b64url_encode(signature)]).decode()


# -- a valid token ----------------------------------------------------------------------------


def test_a_valid_token_gives_typed_claims(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    v = verifier(fake, clock)
    claims = v.verify(sign(es_key, clock))
    assert isinstance(claims, AccessClaims)
    assert claims.sub == "42" and claims.iss == ISSUER and claims.aud == (AUDIENCE,)
    assert claims.scopes == ("api", "read") and claims.roles == ("EDITOR",)
    assert claims.client_id == "demo" and claims.exp == NOW + 900 and claims.iat == NOW
    assert claims.jti is not None and claims.claims["sub"] == "42"
    assert fake.counts["/.well-known/openid-configuration"] == 1 and fake.jwks_fetches == 1
    v.close()


def test_bytes_tokens_verify_too(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    assert verifier(fake, clock).verify(sign(es_key, clock).encode()).sub == "42"


def test_an_rs256_token_from_an_explicit_jwks_uri(clock: FixedClock, rsa_key: JWK) -> None:
    fake = FakeIssuer(keys=[rsa_key])
    v = verifier(fake, clock, jwks_uri="https://keys.example.test/.well-known/jwks.json")
    assert v.verify(sign(rsa_key, clock)).sub == "42"
    assert fake.counts["/.well-known/openid-configuration"] == 0


# -- refusals -------------------------------------------------------------------------------


def test_an_expired_token_is_refused_after_the_leeway(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    token = sign(es_key, clock)
    v = verifier(fake, clock, token_cache_size=0)
    clock.advance(900 + 59)
    assert v.verify(token)
    clock.advance(1)
    with pytest.raises(ExpiredToken) as info:
        v.verify(token)
    assert info.value.code == "expired_token"


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"iss": "https://evil.example"}, InvalidClaim, "invalid_claim"),
        ({"aud": "https://other.example"}, InvalidClaim, "invalid_claim"),
        ({"typ": "JWT"}, InvalidType, "invalid_type"),
        ({"typ": None}, InvalidType, "invalid_type"),
        ({"nbf": NOW + 3600}, NotYetValid, "not_yet_valid"),
        ({"roles": "ADMIN"}, InvalidClaim, "invalid_claim"),
        ({"scope": ["api"]}, InvalidClaim, "invalid_claim"),
    ],
)
def test_wrong_claims_are_refused(
    fake: FakeIssuer,
    clock: FixedClock,
    es_key: JWK,
    overrides: dict[str, Any],
    error: type[Exception],
    code: str,
) -> None:
    with pytest.raises(error) as info:
        verifier(fake, clock).verify(sign(es_key, clock, **overrides))
    assert info.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize("claim", ["client_id", "jti", "iat", "sub", "exp"])
def test_rfc9068_claims_are_required(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK, claim: str
) -> None:
    with pytest.raises(MissingClaim) as info:
        verifier(fake, clock).verify(sign(es_key, clock, omit=(claim,)))
    assert info.value.claim == claim


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(fake: FakeIssuer, clock: FixedClock, alg: str) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "42", "exp": NOW + 60}
    token = unsigned({"alg": alg, "typ": "at+jwt", "kid": "key-1"}, claims)
    with pytest.raises(AlgorithmNotAllowed):
        verifier(fake, clock).verify(token)


def test_an_hs256_token_is_refused_with_remote_keys(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    # Whatever the MAC key, an HMAC algorithm is never allowed with a published key set.
    forged = encode_jwt(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "admin"},
        JWK.from_secret(secrets.token_bytes(32), kid="key-1"),
        alg="HS256",
        typ="at+jwt",
        expires_in=60,
        clock=clock,
    )
    with pytest.raises(AlgorithmNotAllowed):
        verifier(fake, clock).verify(forged)
    with pytest.raises(ValueError, match="from_secret"):
        config(algorithms=["HS256"])


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    impostor = JWK.generate("ES256", kid="key-1")
    with pytest.raises(BadSignature):
        verifier(fake, clock).verify(sign(impostor, clock))


def test_an_oversized_token_is_refused_before_decoding(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    token = sign(es_key, clock, padding="x" * 9000)
    with pytest.raises(TokenTooLarge):
        verifier(fake, clock).verify(token)
    small = verifier(fake, clock, max_token_size=4096)
    with pytest.raises(TokenTooLarge):
        small.verify(sign(es_key, clock, padding="x" * 4000))


# -- algorithms ----------------------------------------------------------------------------


def test_the_announced_algorithms_limit_the_allow_list(
    clock: FixedClock, es_key: JWK, rsa_key: JWK
) -> None:
    fake = FakeIssuer(keys=[es_key, rsa_key])
    fake.metadata = {
        **fake.default_metadata(),
        "id_token_signing_alg_values_supported": ["ES256", "HS256", "none"],
    }
    v = verifier(fake, clock)
    assert v.verify(sign(es_key, clock)).sub == "42"
    with pytest.raises(AlgorithmNotAllowed):
        v.verify(sign(rsa_key, clock))


def test_without_announced_algorithms_every_asymmetric_one_is_allowed(
    clock: FixedClock, es_key: JWK, rsa_key: JWK
) -> None:
    fake = FakeIssuer(keys=[es_key, rsa_key])
    v = verifier(fake, clock)
    assert v.verify(sign(es_key, clock)) and v.verify(sign(rsa_key, clock))


def test_an_issuer_announcing_only_hmac_leaves_nothing_to_verify(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    fake.metadata = {**fake.default_metadata(), "id_token_signing_alg_values_supported": ["HS256"]}
    with pytest.raises(KeySetUnavailable, match="asymmetric"):
        verifier(fake, clock).verify(sign(es_key, clock))


def test_an_algorithm_the_issuer_adds_is_allowed_once_its_key_is_fetched(
    clock: FixedClock, es_key: JWK, rsa_key: JWK
) -> None:
    fake = FakeIssuer(keys=[es_key])
    fake.metadata = {**fake.default_metadata(), "id_token_signing_alg_values_supported": ["ES256"]}
    v = verifier(fake, clock)
    assert v.verify(sign(es_key, clock)).sub == "42"
    # The issuer adds RS256: its key is published and announced, and signs only after
    # its prepublication period, which is longer than the JWKS max-age (600 s here).
    fake.keys = [es_key, rsa_key]
    fake.metadata["id_token_signing_alg_values_supported"] = ["ES256", "RS256"]
    with pytest.raises(AlgorithmNotAllowed):
        v.verify(sign(rsa_key, clock))  # too early: not announced when last read
    clock.advance(600)  # the set is due: fetched again, and the document read again
    assert v.verify(sign(rsa_key, clock)).sub == "42"


def test_configured_algorithms_win(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    with pytest.raises(AlgorithmNotAllowed):
        verifier(fake, clock, algorithms=["RS256"]).verify(sign(es_key, clock))


# -- unknown kids and rotation ----------------------------------------------------------


def test_a_flood_of_random_kids_costs_one_fetch_per_cooldown(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    attacker = JWK.generate("ES256")
    v = verifier(fake, clock)
    v.start()
    assert fake.jwks_fetches == 1
    for window in range(1, 4):
        clock.advance(30)
        for _ in range(1000):
            with pytest.raises(KeyNotFound) as info:
                v.verify(sign(attacker, clock, kid=secrets.token_hex(8)))
            assert info.value.code == "key_not_found"
        assert fake.jwks_fetches == 1 + window  # counted at the transport
    v.close()


def test_a_rotated_key_is_found_on_the_first_miss_after_the_cooldown(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK, es_key_2: JWK
) -> None:
    v = verifier(fake, clock)
    assert v.verify(sign(es_key, clock))
    fake.keys = [es_key, es_key_2]
    with pytest.raises(KeyNotFound):  # within the cooldown of the first fetch
        v.verify(sign(es_key_2, clock))
    clock.advance(30)
    assert v.verify(sign(es_key_2, clock)).sub == "42"
    assert fake.jwks_fetches == 2


def test_a_miss_on_a_set_another_thread_has_replaced_takes_the_new_set(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK, es_key_2: JWK
) -> None:
    v = verifier(fake, clock)
    v.verify(sign(es_key, clock))
    fake.keys = [es_key, es_key_2]
    clock.advance(30)
    token_a, token_b = sign(es_key_2, clock, sub="A"), sign(es_key_2, clock, sub="B")
    verify_with = v._verify_with
    raced = []

    def racing(token: str | bytes, installed: Any) -> AccessClaims:
        try:
            return verify_with(token, installed)
        except KeyNotFound:
            if not raced:
                # Between A's miss and its refetch, "thread B" misses on the same old set,
                # fetches and installs the new one; the cooldown now holds for A.
                raced.append("B is verifying")
                raced[0] = v.verify(token_b).sub
            raise

    v._verify_with = racing  # type: ignore[method-assign]
    assert v.verify(token_a).sub == "A"  # from the set B installed, not refused
    assert raced == ["B"] and fake.jwks_fetches == 2


# -- the verified-token cache -----------------------------------------------------------


def test_a_cached_token_is_the_same_object_and_costs_no_fetch(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock)
    token = sign(es_key, clock)
    first = v.verify(token)
    assert all(v.verify(token) is first for _ in range(10))
    assert fake.jwks_fetches == 1


def test_a_cache_hit_still_checks_expiry(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    v = verifier(fake, clock, leeway=0, jwks_cache=JWKSCachePolicy(max_refresh=10_000))
    token = sign(es_key, clock)
    v.verify(token)
    clock.advance(899)
    assert v.verify(token)
    clock.advance(1)
    with pytest.raises(ExpiredToken):
        v.verify(token)


def test_a_cache_hit_still_checks_not_before(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock, leeway=10)
    token = sign(es_key, clock, nbf=NOW + 5)
    assert v.verify(token)  # within the leeway
    clock.set(NOW - 10)  # a clock stepped back: the hit path checks nbf again
    with pytest.raises(NotYetValid):
        v.verify(token)


def test_a_cache_hit_still_checks_the_denylist(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock)
    token = sign(es_key, clock)
    claims = v.verify(token)
    assert claims.jti is not None
    v.denylist.revoke(claims.jti, claims.exp)
    with pytest.raises(RevokedToken) as info:
        v.verify(token)
    assert info.value.code == "revoked_token"


def test_a_key_removed_from_the_set_invalidates_cached_tokens(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK, es_key_2: JWK
) -> None:
    v = verifier(fake, clock)
    old = sign(es_key, clock)
    v.verify(old)
    fake.keys = [es_key_2]
    clock.advance(600)  # the next refresh
    with pytest.raises(KeyNotFound):
        v.verify(old)
    assert v.verify(sign(es_key_2, clock)).sub == "42"


def test_a_304_keeps_the_cache(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    v = verifier(fake, clock)
    token = sign(es_key, clock)
    first = v.verify(token)
    clock.advance(600)
    assert v.verify(token) is first and fake.jwks_fetches == 2


def test_the_cache_is_bounded(fake: FakeIssuer, clock: FixedClock, es_key: JWK) -> None:
    v = verifier(fake, clock, token_cache_size=2)
    tokens = [sign(es_key, clock) for _ in range(3)]
    for token in tokens:
        v.verify(token)
    assert len(v._tokens) == 2 and tokens[0] not in v._tokens


def test_past_the_stale_window_even_cached_tokens_fail(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock, jwks_cache=JWKSCachePolicy(stale_if_error=60))
    token = sign(es_key, clock)
    v.verify(token)
    fake.jwks_status = 503
    clock.advance(600 + 59)
    assert v.verify(token)
    clock.advance(1)
    with pytest.raises(KeySetUnavailable) as info:
        v.verify(token)
    assert info.value.code == "key_set_unavailable"


# -- revocation -------------------------------------------------------------------------


def test_revoked_tokens_and_subjects_are_refused_after_a_poll(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    token = sign(es_key, clock, jti="revoked-1")
    other = sign(es_key, clock, sub="7")
    assert v.verify(token) and v.verify(other)
    fake.feed = [
        (1, "revoked", {"jti": "revoked-1", "exp": NOW + 960}),
        (2, "not_before", {"sub": "7", "nbf": NOW + 1}),
    ]
    state = v.poll_revocations()
    assert state.revoked == 1 and state.not_before == 1
    with pytest.raises(RevokedToken):
        v.verify(token)
    with pytest.raises(RevokedToken):
        v.verify(other)
    clock.advance(1)
    assert v.verify(sign(es_key, clock, sub="7")).sub == "7"  # issued after the log-out


def test_an_unreachable_feed_does_not_stop_verification(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    v = verifier(fake, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    fake.feed_error = httpx.ConnectError("down")
    state = v.poll_revocations()
    assert v.verify(sign(es_key, clock)).sub == "42"
    assert state.last_error == "request failed (ConnectError)" and state.last_success is None
    assert v.revocation_state == state


def test_no_credentials_no_feed(fake: FakeIssuer, clock: FixedClock) -> None:
    v = verifier(fake, clock)
    assert v.revocation_state is None
    with pytest.raises(ValueError):
        v.poll_revocations()


def test_the_context_manager_loads_keys_and_runs_the_poller(
    fake: FakeIssuer, clock: FixedClock, es_key: JWK
) -> None:
    fake.feed = [(1, "revoked", {"jti": "gone", "exp": NOW + 900})]
    with verifier(fake, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as v:
        assert fake.jwks_fetches == 1  # start() fetched the keys
        thread = v._poller._thread if v._poller else None
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    assert v.denylist.refuses("gone", "42", NOW)  # the thread's first poll ran


def test_start_survives_an_unreachable_issuer(fake: FakeIssuer, clock: FixedClock) -> None:
    fake.jwks_status = 500
    v = verifier(fake, clock)
    v.start()
    assert v.jwks is not None and v.jwks.state.last_error == "HTTP 500"
    v.close()


# -- offline modes ----------------------------------------------------------------------


def test_from_jwks_takes_a_set_its_json_or_its_file(
    tmp_path: Path, clock: FixedClock, es_key: JWK
) -> None:
    keys = JWKSet([es_key])  # private keys are reduced to their public halves
    path = tmp_path / "jwks.json"
    path.write_text(JWKSet([es_key.public()]).to_json())
    token = sign(es_key, clock)
    for source in (keys, keys.to_json(), keys.to_json().encode(), path, str(path)):
        v = Verifier.from_jwks(source, config(), clock=clock)
        assert v.verify(token).sub == "42"
        assert v.jwks is None and v.keys is not None
        assert all(not key.is_private for key in v.keys)


def test_from_jwks_defaults_to_the_algorithms_of_its_keys(
    clock: FixedClock, es_key: JWK, rsa_key: JWK
) -> None:
    v = Verifier.from_jwks(JWKSet([es_key.public()]), config(), clock=clock)
    with pytest.raises(AlgorithmNotAllowed):
        v.verify(sign(rsa_key, clock))


def test_from_pem_takes_text_a_file_or_a_private_key(
    tmp_path: Path, clock: FixedClock, rsa_key: JWK
) -> None:
    token = sign(rsa_key, clock)
    public_pem = rsa_key.to_pem()
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem)
    for source in (public_pem, public_pem.decode(), path, rsa_key.to_pem(private=True)):
        v = Verifier.from_pem(source, config(), clock=clock)  # the token's kid is rsa-1
        assert v.verify(token).sub == "42"


def test_from_secret_is_hs256_only_with_a_long_secret(clock: FixedClock) -> None:
    secret = secrets.token_bytes(32)
    token = sign(JWK.from_secret(secret, alg="HS256", kid="hs256"), clock)  # as the server signs
    assert Verifier.from_secret(secret, config(), clock=clock).verify(token).sub == "42"
    with pytest.raises(ValueError, match="32 bytes"):
        Verifier.from_secret(secret[:31], config())
    with pytest.raises(TypeError):
        Verifier.from_secret("text", config())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="HS256 only"):
        Verifier.from_secret(secret, config(algorithms=["ES256"]))
    with pytest.raises(BadSignature):
        other = secrets.token_bytes(32)
        Verifier.from_secret(other, config(), clock=clock).verify(token)


def test_offline_misuse_is_refused(es_key: JWK) -> None:
    with pytest.raises(ValueError, match="from_secret"):
        Verifier.from_jwks(JWKSet([JWK.from_secret(secrets.token_bytes(32))]), config())
    with pytest.raises(ValueError, match="exclude"):
        Verifier.from_jwks(JWKSet([es_key]), config(jwks_uri="https://a.test/jwks"))
    with pytest.raises(TypeError):
        Verifier.from_jwks(42, config())  # type: ignore[arg-type]


def test_a_remote_verifier_needs_an_issuer_url() -> None:
    with pytest.raises(ValueError):
        Verifier(config(issuer="my-app"))
    with pytest.raises(ValueError):
        Verifier(config(issuer="http://auth.example.test"))
    with pytest.raises(TypeError):
        Verifier({"issuer": ISSUER})  # type: ignore[arg-type]


def test_offline_constructors_keep_only_public_halves(clock: FixedClock, rsa_key: JWK) -> None:
    from_pem = Verifier.from_pem(rsa_key.to_pem(private=True), config(), clock=clock)
    assert isinstance(from_pem.keys, JWK) and not from_pem.keys.is_private
    private_json = JWKSet([rsa_key]).to_json(private=True)
    from_jwks = Verifier.from_jwks(private_json, config(), clock=clock)
    assert from_jwks.keys is not None and not any(key.is_private for key in from_jwks.keys)
