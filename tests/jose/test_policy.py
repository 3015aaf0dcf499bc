"""JWTPolicy: construction rules and every claim check, with time walked on a FixedClock."""

from __future__ import annotations

import hmac
import json
import math
from typing import Any

import pytest

from tokensmith.clock import FixedClock, SystemClock
from tokensmith.jose import (
    JWK,
    MAX_LEEWAY,
    ClaimError,
    ExpiredToken,
    InvalidClaim,
    InvalidType,
    JWTPolicy,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    encode_jwt,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_encode

NOW = 1_767_225_600
SECRET = bytes(range(9, 73))
ISSUER = "https://test.example.com/auth"


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.from_secret(SECRET, alg="HS256")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def token_for(claims: dict[str, Any] | bytes, typ: str | None = None) -> str:
    """An HS256 token with the exact claims (or payload text) given."""
    header: dict[str, Any] = {"alg": "HS256"}
    if typ is not None:
        header["typ"] = typ
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = b64url_encode(json.dumps(header).encode()) + b"." + b64url_encode(payload)
    signature = hmac.digest(SECRET, signing_input, "sha256")
    return (signing_input + b"." + b64url_encode(signature)).decode()


def check(key: JWK, clock: FixedClock, claims: dict[str, Any] | bytes, **options: Any) -> dict:
    typ = options.pop("header_typ", None)
    policy = JWTPolicy(algorithms=["HS256"], clock=clock, **options)
    return verify_jwt(token_for(claims, typ), key, policy)


# -- construction ---------------------------------------------------------------------


def test_algorithms_is_required() -> None:
    with pytest.raises(TypeError):
        JWTPolicy()  # type: ignore[call-arg]


@pytest.mark.parametrize("algorithms", [None, "HS256", b"HS256", 1])
def test_algorithms_must_be_a_collection(algorithms: Any) -> None:
    with pytest.raises(TypeError):
        JWTPolicy(algorithms=algorithms)


@pytest.mark.parametrize(
    "algorithms",
    [[], (), ["none"], ["None"], ["NONE"], ["nOnE"], ["HS256", "none"], ["HS1"], ["hs256"]],
)
def test_algorithms_must_be_known_names_and_never_none(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        JWTPolicy(algorithms=algorithms)


def test_defaults() -> None:
    policy = JWTPolicy(algorithms=("ES256", "EdDSA"))
    assert policy.algorithms == {"ES256", "EdDSA"}
    assert policy.leeway == 0
    assert policy.require_exp is True
    assert policy.max_token_size == 8192
    assert policy.allow_key_headers is False
    assert policy.issuers is None
    assert policy.audiences is None
    assert policy.typ is None
    assert isinstance(policy.clock, SystemClock)


@pytest.mark.parametrize("leeway", [0, 1, 0.5, MAX_LEEWAY])
def test_leeway_within_bounds_is_accepted(leeway: float) -> None:
    assert JWTPolicy(algorithms=["HS256"], leeway=leeway).leeway == leeway


@pytest.mark.parametrize("leeway", [-1, -0.001, MAX_LEEWAY + 1, MAX_LEEWAY + 0.5, 10**9])
def test_leeway_out_of_bounds_is_a_value_error(leeway: float) -> None:
    with pytest.raises(ValueError):
        JWTPolicy(algorithms=["HS256"], leeway=leeway)


@pytest.mark.parametrize("leeway", ["5", None, True, math.nan, math.inf, [1]])
def test_leeway_must_be_a_finite_number(leeway: Any) -> None:
    with pytest.raises(TypeError):
        JWTPolicy(algorithms=["HS256"], leeway=leeway)


def test_max_leeway_is_a_few_minutes() -> None:
    assert 0 < MAX_LEEWAY <= 600


@pytest.mark.parametrize("name", ["issuer", "audience"])
@pytest.mark.parametrize("value", [b"x", 1, object()])
def test_issuer_and_audience_must_be_strings(name: str, value: Any) -> None:
    with pytest.raises(TypeError):
        JWTPolicy(algorithms=["HS256"], **{name: value})


@pytest.mark.parametrize("name", ["issuer", "audience"])
@pytest.mark.parametrize("value", ["", [], [""], ["a", 1], ["a", None], ("a", b"b")])
def test_issuer_and_audience_must_be_non_empty_strings(name: str, value: Any) -> None:
    with pytest.raises(ValueError):
        JWTPolicy(algorithms=["HS256"], **{name: value})


@pytest.mark.parametrize("typ", ["", 1, b"JWT"])
def test_typ_must_be_a_non_empty_string(typ: Any) -> None:
    with pytest.raises(TypeError):
        JWTPolicy(algorithms=["HS256"], typ=typ)


@pytest.mark.parametrize("required", ["sub", b"sub", 1, [1], ["sub", None]])
def test_required_claims_must_be_a_collection_of_strings(required: Any) -> None:
    with pytest.raises(TypeError):
        JWTPolicy(algorithms=["HS256"], required_claims=required)


@pytest.mark.parametrize("size", [0, -1, 1.5, "8192", None, True])
def test_max_token_size_must_be_a_positive_integer(size: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        JWTPolicy(algorithms=["HS256"], max_token_size=size)


# -- exp, nbf and iat boundaries ------------------------------------------------------------


def test_exp_is_required_by_default(key: JWK, clock: FixedClock) -> None:
    with pytest.raises(MissingClaim) as info:
        check(key, clock, {"sub": "a"})
    assert info.value.claim == "exp"
    assert check(key, clock, {"sub": "a"}, require_exp=False) == {"sub": "a"}


def test_exp_boundary(key: JWK, clock: FixedClock) -> None:
    exp = NOW + 100
    token = token_for({"exp": exp})
    policy = JWTPolicy(algorithms=["HS256"], clock=clock)
    clock.set(exp - 1)
    assert verify_jwt(token, key, policy) == {"exp": exp}
    clock.set(exp)
    with pytest.raises(ExpiredToken) as info:
        verify_jwt(token, key, policy)
    assert info.value.claim == "exp"
    clock.set(exp + 1)
    with pytest.raises(ExpiredToken):
        verify_jwt(token, key, policy)


@pytest.mark.parametrize("leeway", [1, 30, MAX_LEEWAY])
def test_leeway_shifts_the_exp_boundary(key: JWK, clock: FixedClock, leeway: int) -> None:
    exp = NOW
    token = token_for({"exp": exp})
    policy = JWTPolicy(algorithms=["HS256"], leeway=leeway, clock=clock)
    clock.set(exp + leeway - 1)
    assert verify_jwt(token, key, policy)["exp"] == exp
    clock.set(exp + leeway)
    with pytest.raises(ExpiredToken):
        verify_jwt(token, key, policy)


def test_fractional_exp(key: JWK, clock: FixedClock) -> None:
    token = token_for({"exp": NOW + 0.5})
    policy = JWTPolicy(algorithms=["HS256"], clock=clock)
    assert verify_jwt(token, key, policy)["exp"] == NOW + 0.5
    clock.advance(0.5)
    with pytest.raises(ExpiredToken):
        verify_jwt(token, key, policy)


def test_nbf_boundary(key: JWK, clock: FixedClock) -> None:
    nbf = NOW + 100
    token = token_for({"nbf": nbf, "exp": nbf + 100})
    policy = JWTPolicy(algorithms=["HS256"], clock=clock)
    clock.set(nbf - 1)
    with pytest.raises(NotYetValid) as info:
        verify_jwt(token, key, policy)
    assert info.value.claim == "nbf"
    clock.set(nbf)
    assert verify_jwt(token, key, policy)["nbf"] == nbf


@pytest.mark.parametrize("leeway", [1, 30, MAX_LEEWAY])
def test_leeway_shifts_the_nbf_boundary(key: JWK, clock: FixedClock, leeway: int) -> None:
    nbf = NOW + 1000
    token = token_for({"nbf": nbf, "exp": nbf + 1000})
    policy = JWTPolicy(algorithms=["HS256"], leeway=leeway, clock=clock)
    clock.set(nbf - leeway - 1)
    with pytest.raises(NotYetValid):
        verify_jwt(token, key, policy)
    clock.set(nbf - leeway)
    assert verify_jwt(token, key, policy)["nbf"] == nbf


def test_iat_in_the_future_is_refused(key: JWK, clock: FixedClock) -> None:
    assert check(key, clock, {"iat": NOW, "exp": NOW + 60})["iat"] == NOW
    assert check(key, clock, {"iat": NOW - 3600, "exp": NOW + 60})["iat"] == NOW - 3600
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"iat": NOW + 1, "exp": NOW + 60})
    assert info.value.claim == "iat"


@pytest.mark.parametrize("leeway", [1, 60])
def test_leeway_shifts_the_iat_boundary(key: JWK, clock: FixedClock, leeway: int) -> None:
    claims = {"iat": NOW + leeway, "exp": NOW + 600}
    assert check(key, clock, claims, leeway=leeway)["iat"] == NOW + leeway
    with pytest.raises(InvalidClaim):
        check(key, clock, dict(claims, iat=NOW + leeway + 1), leeway=leeway)


def test_the_policy_reads_its_clock_at_every_call(key: JWK, clock: FixedClock) -> None:
    token = encode_jwt({}, key, expires_in=60, clock=clock)
    policy = JWTPolicy(algorithms=["HS256"], clock=clock)
    assert verify_jwt(token, key, policy)["exp"] == NOW + 60
    clock.advance(60)
    with pytest.raises(ExpiredToken):
        verify_jwt(token, key, policy)


# -- NumericDate and string claim types ---------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value", ["9999999999", "1767225600", True, False, None, [NOW], {"t": NOW}, ""]
)
def test_numeric_dates_must_be_numbers(
    key: JWK, clock: FixedClock, name: str, value: object
) -> None:
    claims = {"exp": NOW + 60, name: value}
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, claims)
    assert info.value.claim == name


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
def test_non_finite_numeric_dates_are_malformed(
    key: JWK, clock: FixedClock, name: str, literal: bytes
) -> None:
    payload = b'{"' + name.encode() + b'":' + literal + b"}"
    with pytest.raises(MalformedToken):
        check(key, clock, payload, require_exp=False)


def test_huge_integer_exp_is_a_number_not_an_error(key: JWK, clock: FixedClock) -> None:
    assert check(key, clock, {"exp": 10**30})["exp"] == 10**30


@pytest.mark.parametrize("name", ["iss", "sub", "jti"])
@pytest.mark.parametrize("value", [1, 1.5, True, None, ["a"], {"a": "b"}])
def test_string_claims_must_be_strings(
    key: JWK, clock: FixedClock, name: str, value: object
) -> None:
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"exp": NOW + 60, name: value})
    assert info.value.claim == name


# -- iss: exact string equality ----------------------------------------------------------------


def test_expected_issuer_is_accepted(key: JWK, clock: FixedClock) -> None:
    assert check(key, clock, {"exp": NOW + 60, "iss": ISSUER}, issuer=ISSUER)["iss"] == ISSUER


@pytest.mark.parametrize(
    "iss",
    [
        "http",
        "abc",
        "https",
        "",
        "/",
        "test.example.com",
        "https://test.example.com",
        "https://test.example.com/",
        "https://test.example.com/auth/",
        "https://test.example.com/auth/x",
        "https://test.example.com/authx",
        "HTTPS://TEST.EXAMPLE.COM/AUTH",
        " https://test.example.com/auth",
        "https://test.example.com/auth\x00",
    ],
)
def test_issuer_is_compared_by_exact_equality(key: JWK, clock: FixedClock, iss: str) -> None:
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"exp": NOW + 60, "iss": iss}, issuer=ISSUER)
    assert info.value.claim == "iss"


@pytest.mark.parametrize("iss", [[ISSUER], [ISSUER, "x"], {"iss": ISSUER}, 1])
def test_issuer_must_be_a_string_in_the_token(key: JWK, clock: FixedClock, iss: object) -> None:
    with pytest.raises(InvalidClaim):
        check(key, clock, {"exp": NOW + 60, "iss": iss}, issuer=ISSUER)


def test_missing_issuer_is_refused_when_expected(key: JWK, clock: FixedClock) -> None:
    with pytest.raises(MissingClaim) as info:
        check(key, clock, {"exp": NOW + 60}, issuer=ISSUER)
    assert info.value.claim == "iss"


def test_several_accepted_issuers(key: JWK, clock: FixedClock) -> None:
    issuers = [ISSUER, "https://other.example"]
    for iss in issuers:
        assert check(key, clock, {"exp": NOW + 60, "iss": iss}, issuer=issuers)["iss"] == iss
    with pytest.raises(InvalidClaim):
        check(key, clock, {"exp": NOW + 60, "iss": "https://other"}, issuer=issuers)


# -- aud ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("api", "api"),
        (["api"], "api"),
        (["web", "api"], "api"),
        ("api", ["api", "admin"]),
        (["x", "admin"], ["api", "admin"]),
    ],
)
def test_audience_match(key: JWK, clock: FixedClock, aud: object, expected: object) -> None:
    assert check(key, clock, {"exp": NOW + 60, "aud": aud}, audience=expected)["aud"] == aud


@pytest.mark.parametrize(
    "aud", ["ap", "apis", "API", "web", ["web"], ["ap", "i"], "api ", "https://api"]
)
def test_audience_mismatch(key: JWK, clock: FixedClock, aud: object) -> None:
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"exp": NOW + 60, "aud": aud}, audience="api")
    assert info.value.claim == "aud"


@pytest.mark.parametrize("aud", [[], 1, None, True, ["api", 1], [["api"]], {"api": 1}])
def test_audience_must_be_a_string_or_list_of_strings(
    key: JWK, clock: FixedClock, aud: object
) -> None:
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"exp": NOW + 60, "aud": aud}, audience="api")
    assert info.value.claim == "aud"


def test_missing_audience_is_refused_when_expected(key: JWK, clock: FixedClock) -> None:
    with pytest.raises(MissingClaim) as info:
        check(key, clock, {"exp": NOW + 60}, audience="api")
    assert info.value.claim == "aud"


@pytest.mark.parametrize("aud", ["api", ["api"], ["a", "b"]])
def test_token_with_audience_is_refused_when_none_is_expected(
    key: JWK, clock: FixedClock, aud: object
) -> None:
    # RFC 7519 4.1.3: a recipient that does not identify itself with aud rejects it.
    with pytest.raises(InvalidClaim) as info:
        check(key, clock, {"exp": NOW + 60, "aud": aud})
    assert info.value.claim == "aud"


# -- required claims ---------------------------------------------------------------------------


def test_required_claims(key: JWK, clock: FixedClock) -> None:
    required = ["sub", "scope"]
    claims = {"exp": NOW + 60, "sub": "a", "scope": "read"}
    assert check(key, clock, claims, required_claims=required) == claims
    for name in required:
        partial = {k: v for k, v in claims.items() if k != name}
        with pytest.raises(MissingClaim) as info:
            check(key, clock, partial, required_claims=required)
        assert info.value.claim == name


def test_a_required_claim_may_not_be_an_absent_exp(key: JWK, clock: FixedClock) -> None:
    with pytest.raises(MissingClaim) as info:
        check(key, clock, {"sub": "a"}, require_exp=False, required_claims=["exp"])
    assert info.value.claim == "exp"


# -- typ -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header_typ", ["at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "APPLICATION/at+JWT"]
)
@pytest.mark.parametrize("expected", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_expected_typ_matches(key: JWK, clock: FixedClock, header_typ: str, expected: str) -> None:
    claims = {"exp": NOW + 60}
    assert check(key, clock, claims, typ=expected, header_typ=header_typ) == claims


@pytest.mark.parametrize(
    "header_typ",
    [
        None,
        "JWT",
        "jwt",
        "application/jwt",
        "at+jwt ",
        "at-jwt",
        "application/at+jwt/x",
        "text/at+jwt",
        "application/application/at+jwt",
        "",
    ],
)
def test_expected_typ_mismatch(key: JWK, clock: FixedClock, header_typ: str | None) -> None:
    with pytest.raises(InvalidType):
        check(key, clock, {"exp": NOW + 60}, typ="at+jwt", header_typ=header_typ)


def test_no_expected_typ_accepts_any(key: JWK, clock: FixedClock) -> None:
    for header_typ in (None, "JWT", "at+jwt", "whatever"):
        assert check(key, clock, {"exp": NOW + 60}, header_typ=header_typ)


def test_claim_errors_are_claim_errors(key: JWK, clock: FixedClock) -> None:
    failures = [
        {"sub": "a"},
        {"exp": NOW},
        {"exp": NOW + 60, "nbf": NOW + 1},
        {"exp": NOW + 60, "iat": "x"},
    ]
    for claims in failures:
        with pytest.raises(ClaimError):
            check(key, clock, claims)
