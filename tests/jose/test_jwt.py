"""JWT: encoding helpers, one-call verification, and reading without verification."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest

from tokensmith.clock import FixedClock
from tokensmith.jose import (
    JWK,
    AlgorithmNotAllowed,
    BadSignature,
    ExpiredToken,
    InvalidType,
    JWKSet,
    JWTPolicy,
    KeyNotFound,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
    UnverifiedJWT,
    decode_unverified,
    encode_jwt,
    new_jti,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_decode, b64url_encode

NOW = 1_767_225_600
SECRET = bytes(range(7, 71))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header.encode())), json.loads(b64url_decode(payload.encode()))


def hs256(header: dict[str, Any], claims: dict[str, Any] | bytes, secret: bytes = SECRET) -> str:
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = b64url_encode(json.dumps(header).encode()) + b"." + b64url_encode(payload)
    signature = hmac.digest(secret, signing_input, "sha256")
    return (signing_input + b"." + b64url_encode(signature)).decode()


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.from_secret(SECRET, kid="main", alg="HS256")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def policy(clock: FixedClock) -> JWTPolicy:
    return JWTPolicy(algorithms=["HS256"], clock=clock)


# -- encode_jwt ---------------------------------------------------------------------


def test_plain_claims_are_signed_as_given(key: JWK) -> None:
    header, claims = parts(encode_jwt({"sub": "alice", "n": 1}, key))
    assert header == {"alg": "HS256", "kid": "main", "typ": "JWT"}
    assert claims == {"sub": "alice", "n": 1}


def test_expires_in_sets_iat_and_exp(key: JWK, clock: FixedClock) -> None:
    _, claims = parts(encode_jwt({"sub": "a"}, key, expires_in=900, clock=clock))
    assert claims == {"sub": "a", "iat": NOW, "exp": NOW + 900}


def test_issued_at_false_leaves_iat_out(key: JWK, clock: FixedClock) -> None:
    _, claims = parts(encode_jwt({}, key, expires_in=60, issued_at=False, clock=clock))
    assert claims == {"exp": NOW + 60}


def test_issued_at_alone(key: JWK, clock: FixedClock) -> None:
    _, claims = parts(encode_jwt({}, key, issued_at=True, clock=clock))
    assert claims == {"iat": NOW}


@pytest.mark.parametrize("offset", [0, 30])
def test_not_before_in(key: JWK, clock: FixedClock, offset: int) -> None:
    _, claims = parts(encode_jwt({}, key, not_before_in=offset, clock=clock))
    assert claims == {"nbf": NOW + offset}


def test_time_helpers_use_whole_seconds(key: JWK) -> None:
    _, claims = parts(encode_jwt({}, key, expires_in=10, clock=FixedClock(NOW + 0.75)))
    assert claims == {"iat": NOW, "exp": NOW + 10}


def test_encode_does_not_mutate_the_callers_claims(key: JWK, clock: FixedClock) -> None:
    claims = {"sub": "a"}
    encode_jwt(claims, key, expires_in=60, jti=True, clock=clock)
    assert claims == {"sub": "a"}


def test_jti_is_random_and_at_least_128_bits(key: JWK) -> None:
    first = parts(encode_jwt({}, key, jti=True))[1]["jti"]
    second = parts(encode_jwt({}, key, jti=True))[1]["jti"]
    assert first != second
    for jti in (first, second):
        assert isinstance(jti, str)
        assert len(b64url_decode(jti.encode())) * 8 >= 128
    assert new_jti() != new_jti()
    assert len(b64url_decode(new_jti().encode())) * 8 >= 128


def test_jti_with_an_injected_random_source_is_deterministic(key: JWK) -> None:
    requested: list[int] = []

    def fixed(n: int) -> bytes:
        requested.append(n)
        return bytes(range(n))

    token_a = encode_jwt({}, key, jti=True, random=fixed)
    token_b = encode_jwt({}, key, jti=True, random=fixed)
    assert token_a == token_b
    assert requested and all(n * 8 >= 128 for n in requested)
    assert parts(token_a)[1]["jti"] == b64url_encode(bytes(range(requested[0]))).decode()
    assert new_jti(fixed) == new_jti(fixed)


def test_typ_kid_and_extra_headers(key: JWK) -> None:
    header, _ = parts(encode_jwt({}, key, typ="at+jwt", kid="other", headers={"cty": "x"}))
    assert header == {"alg": "HS256", "kid": "other", "typ": "at+jwt", "cty": "x"}
    header, _ = parts(encode_jwt({}, key, typ=None, include_kid=False))
    assert header == {"alg": "HS256"}


@pytest.mark.parametrize(
    ("claims", "options"),
    [
        ({"exp": 1}, {"expires_in": 60}),
        ({"iat": 1}, {"expires_in": 60}),
        ({"iat": 1}, {"issued_at": True}),
        ({"nbf": 1}, {"not_before_in": 0}),
        ({"jti": "x"}, {"jti": True}),
    ],
)
def test_helpers_refuse_to_overwrite_given_claims(
    key: JWK, claims: dict[str, Any], options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        encode_jwt(claims, key, **options)


@pytest.mark.parametrize("expires_in", [0, -1, True, 1.5, "60"])
def test_expires_in_must_be_a_positive_integer(key: JWK, expires_in: Any) -> None:
    with pytest.raises(ValueError):
        encode_jwt({}, key, expires_in=expires_in)


@pytest.mark.parametrize("claims", [[("sub", "a")], "claims", b'{"sub":"a"}', None])
def test_claims_must_be_a_mapping(key: JWK, claims: Any) -> None:
    with pytest.raises(TypeError):
        encode_jwt(claims, key)


@pytest.mark.parametrize(
    "claims", [{"sub": b"alice"}, {"x": {1, 2}}, {"x": object()}, {"aud": [b"api"]}]
)
def test_claims_must_be_json(key: JWK, claims: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        encode_jwt(claims, key)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_claims_must_be_finite(key: JWK, value: float) -> None:
    with pytest.raises(ValueError):
        encode_jwt({"exp": value}, key)


def test_key_must_be_a_jwk() -> None:
    with pytest.raises(TypeError):
        encode_jwt({}, SECRET, alg="HS256")  # type: ignore[arg-type]


# -- verify_jwt: one call does everything ---------------------------------------------


def test_verify_returns_the_claims(key: JWK, clock: FixedClock, policy: JWTPolicy) -> None:
    token = encode_jwt({"sub": "alice"}, key, expires_in=60, clock=clock)
    assert verify_jwt(token, key, policy) == {"sub": "alice", "iat": NOW, "exp": NOW + 60}
    assert verify_jwt(token.encode(), JWKSet([key]), policy)["sub"] == "alice"


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda key, clock: "x" * 9000, TokenTooLarge),
        (lambda key, clock: "a.b", MalformedToken),
        (lambda key, clock: hs256({"alg": "none"}, {"exp": NOW + 60}), AlgorithmNotAllowed),
        (lambda key, clock: hs256({"alg": "HS256", "crit": ["x"]}, {}), UnsupportedHeader),
        (lambda key, clock: hs256({"alg": "HS256", "jwk": {}}, {}), UnsupportedHeader),
        (lambda key, clock: hs256({"alg": "HS256", "kid": "?"}, {}), KeyNotFound),
        (lambda key, clock: hs256({"alg": "HS256"}, {"exp": NOW + 60}, bytes(64)), BadSignature),
        (lambda key, clock: hs256({"alg": "HS256"}, {"exp": NOW}), ExpiredToken),
        (lambda key, clock: hs256({"alg": "HS256"}, b'{"exp":NaN}'), MalformedToken),
    ],
    ids=["size", "shape", "none", "crit", "jwk", "kid", "signature", "claims", "payload"],
)
def test_verify_checks_every_layer(
    key: JWK, clock: FixedClock, policy: JWTPolicy, make: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify_jwt(make(key, clock), JWKSet([key]), policy)


def test_typ_is_checked_in_the_same_call(key: JWK, clock: FixedClock) -> None:
    policy = JWTPolicy(algorithms=["HS256"], typ="at+jwt", clock=clock)
    with pytest.raises(InvalidType):
        verify_jwt(encode_jwt({}, key, expires_in=60, clock=clock), key, policy)
    token = encode_jwt({}, key, expires_in=60, typ="at+jwt", clock=clock)
    assert verify_jwt(token, key, policy)["exp"] == NOW + 60


@pytest.mark.parametrize("policy", [None, {"algorithms": ["HS256"]}, ["HS256"], "HS256"])
def test_verify_wants_a_policy_object(key: JWK, policy: Any) -> None:
    token = encode_jwt({}, key, expires_in=60)
    with pytest.raises(TypeError):
        verify_jwt(token, key, policy)


@pytest.mark.parametrize("keys", [None, SECRET, {"keys": []}])
def test_verify_wants_a_jwk_or_set(keys: Any, policy: JWTPolicy, key: JWK) -> None:
    token = encode_jwt({}, key, expires_in=60)
    with pytest.raises(TypeError):
        verify_jwt(token, keys, policy)


@pytest.mark.parametrize("token", [None, 5, ["a.b.c"]])
def test_verify_wants_a_str_or_bytes_token(token: Any, policy: JWTPolicy, key: JWK) -> None:
    with pytest.raises(TypeError):
        verify_jwt(token, key, policy)


def test_verify_jwt_refuses_what_verify_compact_would_accept_as_payload(
    key: JWK, policy: JWTPolicy
) -> None:
    token = hs256({"alg": "HS256"}, b"[1,2,3]")
    with pytest.raises(MalformedToken):
        verify_jwt(token, key, policy)


def test_size_limit_follows_the_policy(key: JWK, clock: FixedClock) -> None:
    token = encode_jwt({"pad": "x" * 10_000}, key, expires_in=60, clock=clock)
    with pytest.raises(TokenTooLarge):
        verify_jwt(token, key, JWTPolicy(algorithms=["HS256"], clock=clock))
    roomy = JWTPolicy(algorithms=["HS256"], max_token_size=len(token), clock=clock)
    assert verify_jwt(token, key, roomy)["exp"] == NOW + 60
    tight = JWTPolicy(algorithms=["HS256"], max_token_size=len(token) - 1, clock=clock)
    with pytest.raises(TokenTooLarge):
        verify_jwt(token, key, tight)


# -- decode_unverified -------------------------------------------------------------------


def test_decode_unverified_reads_a_badly_signed_token(key: JWK, policy: JWTPolicy) -> None:
    forged = hs256({"alg": "HS256", "kid": "main"}, {"sub": "mallory", "exp": NOW + 60}, bytes(64))
    unverified = decode_unverified(forged)
    assert isinstance(unverified, UnverifiedJWT)
    assert unverified.header == {"alg": "HS256", "kid": "main"}
    assert unverified.claims == {"sub": "mallory", "exp": NOW + 60}
    with pytest.raises(BadSignature):
        verify_jwt(forged, key, policy)


def test_decode_unverified_reads_expired_and_none_tokens(key: JWK, policy: JWTPolicy) -> None:
    expired = encode_jwt({"exp": NOW - 10}, key)
    assert decode_unverified(expired).claims == {"exp": NOW - 10}
    with pytest.raises(ExpiredToken):
        verify_jwt(expired, key, policy)
    unsigned = hs256({"alg": "none"}, {"sub": "x"}).rsplit(".", 1)[0] + "."
    assert decode_unverified(unsigned).header == {"alg": "none"}
    with pytest.raises(AlgorithmNotAllowed):
        verify_jwt(unsigned, key, policy)


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d.e",
        "!!.e30.AA",
        hs256({"alg": "HS256"}, b"[]"),
        hs256({"alg": "HS256"}, b'{"a":1,"a":2}'),
        hs256({"alg": "HS256"}, b'{"exp":NaN}'),
        "W10.e30.AA",  # header []
    ],
)
def test_decode_unverified_still_needs_a_well_formed_jwt(token: str) -> None:
    with pytest.raises(MalformedToken):
        decode_unverified(token)


def test_decode_unverified_has_a_size_limit(key: JWK) -> None:
    token = encode_jwt({"pad": "x" * 10_000}, key)
    with pytest.raises(TokenTooLarge):
        decode_unverified(token)
    assert decode_unverified(token, max_size=len(token)).claims["pad"] == "x" * 10_000


@pytest.mark.parametrize("max_size", [0, -1, True, "8192", None])
def test_decode_unverified_max_size_must_be_a_positive_integer(key: JWK, max_size: Any) -> None:
    # As for JWTPolicy(max_token_size=...): misuse fails at the call, not as TokenTooLarge.
    with pytest.raises((TypeError, ValueError)):
        decode_unverified(encode_jwt({}, key), max_size=max_size)


@pytest.mark.parametrize("value", [-1, 1.5, "10", True])
def test_not_before_in_must_be_a_non_negative_integer(value: object) -> None:
    key = JWK.generate("HS256")
    with pytest.raises(ValueError, match="not_before_in"):
        encode_jwt({"sub": "a"}, key, not_before_in=value)  # type: ignore[arg-type]
