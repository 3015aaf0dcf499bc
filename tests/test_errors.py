"""The error hierarchy: stable codes, claim names, safe messages, and misuse kept apart."""

from __future__ import annotations

import hmac
import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest

import tokensmith.errors as errors
import tokensmith.jose as jose
from tokensmith.clock import FixedClock
from tokensmith.errors import (
    AlgorithmNotAllowed,
    AmbiguousKey,
    BadSignature,
    ClaimError,
    ExpiredToken,
    InvalidClaim,
    InvalidKey,
    InvalidKeySet,
    InvalidType,
    JWKError,
    KeyNotFound,
    KeySetUnavailable,
    KeyUnusable,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    RevokedToken,
    TokenError,
    TokensmithError,
    TokenTooLarge,
    UnsupportedHeader,
)
from tokensmith.jose import (
    JWK,
    JWKSet,
    JWTPolicy,
    decode_unverified,
    encode_jwt,
    sign_compact,
    verify_compact,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_encode

NOW = 1_767_225_600

#: The public contract: renaming a code breaks clients that switch on it.
CODES = {
    TokensmithError: "tokensmith_error",
    TokenError: "invalid_token",
    MalformedToken: "malformed_token",
    TokenTooLarge: "token_too_large",
    UnsupportedHeader: "unsupported_header",
    AlgorithmNotAllowed: "algorithm_not_allowed",
    InvalidType: "invalid_type",
    KeyNotFound: "key_not_found",
    AmbiguousKey: "ambiguous_key",
    KeyUnusable: "key_unusable",
    BadSignature: "bad_signature",
    RevokedToken: "revoked_token",
    ClaimError: "invalid_claim",
    MissingClaim: "missing_claim",
    InvalidClaim: "invalid_claim",
    ExpiredToken: "expired_token",
    NotYetValid: "not_yet_valid",
    JWKError: "invalid_key",
    InvalidKey: "invalid_key",
    InvalidKeySet: "invalid_key_set",
    KeySetUnavailable: "key_set_unavailable",
}

#: Raised by the verifier SDK only; the JOSE core neither raises nor re-exports them.
VERIFIER_ONLY = {RevokedToken, KeySetUnavailable}

PARENTS = {
    TokenError: TokensmithError,
    MalformedToken: TokenError,
    TokenTooLarge: MalformedToken,
    UnsupportedHeader: TokenError,
    AlgorithmNotAllowed: TokenError,
    InvalidType: TokenError,
    KeyNotFound: TokenError,
    AmbiguousKey: TokenError,
    KeyUnusable: TokenError,
    BadSignature: TokenError,
    RevokedToken: TokenError,
    ClaimError: TokenError,
    MissingClaim: ClaimError,
    InvalidClaim: ClaimError,
    ExpiredToken: ClaimError,
    NotYetValid: ClaimError,
    JWKError: TokensmithError,
    InvalidKey: JWKError,
    InvalidKeySet: JWKError,
    KeySetUnavailable: TokensmithError,
}


def test_code_table() -> None:
    assert {cls: cls.code for cls in CODES} == CODES


def test_every_error_class_is_in_the_table() -> None:
    defined = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, TokensmithError)
    }
    assert defined == set(CODES)
    assert set(errors.__all__) == {cls.__name__ for cls in CODES}


def test_hierarchy() -> None:
    for cls, parent in PARENTS.items():
        assert cls.__bases__ == (parent,), cls
    assert TokensmithError.__bases__ == (Exception,)
    # Programmer misuse is never mistaken for a refused token, and vice versa.
    for cls in CODES:
        assert not issubclass(cls, TypeError)
        assert not issubclass(cls, ValueError)


def test_jose_reexports_the_same_classes() -> None:
    for cls in set(CODES) - VERIFIER_ONLY:
        assert getattr(jose, cls.__name__) is cls


def test_an_unavailable_key_set_is_not_a_token_error() -> None:
    # Nothing is known about the token: adapters answer 503, and clients keep it.
    assert not issubclass(KeySetUnavailable, TokenError)
    assert issubclass(RevokedToken, TokenError)


def test_codes_are_snake_case() -> None:
    for code in CODES.values():
        assert code.replace("_", "").isalpha()
        assert code == code.lower()


@pytest.mark.parametrize("cls", [cls for cls in CODES if not issubclass(cls, ClaimError)])
def test_default_message_and_to_dict(cls: type[TokensmithError]) -> None:
    exc = cls()
    assert str(exc) == exc.message == cls.description
    assert exc.to_dict() == {"code": cls.code, "message": cls.description}
    custom = cls("Something specific.")
    assert custom.to_dict() == {"code": cls.code, "message": "Something specific."}


@pytest.mark.parametrize("cls", [MissingClaim, InvalidClaim])
def test_claim_errors_name_the_claim(cls: type[ClaimError]) -> None:
    exc = cls("aud")
    assert exc.claim == "aud"
    assert "aud" in str(exc)
    assert exc.to_dict() == {"code": cls.code, "message": str(exc), "claim": "aud"}
    assert cls("aud", "Custom.").message == "Custom."


def test_time_errors_name_their_claim() -> None:
    assert ExpiredToken().claim == "exp"
    assert NotYetValid().claim == "nbf"
    assert ExpiredToken().to_dict()["claim"] == "exp"
    assert NotYetValid().to_dict()["code"] == "not_yet_valid"


def test_to_dict_is_json_safe() -> None:
    for exc in (BadSignature(), MissingClaim("sub"), ExpiredToken(), InvalidKeySet()):
        assert json.loads(json.dumps(exc.to_dict())) == exc.to_dict()


# -- messages never carry the token, its signature or the secret -------------------------------


SECRET = bytes(range(200, 232)) + b"\xffSECRETSECRETSECRET"
SECRET_B64 = b64url_encode(SECRET).decode()


def hs256(
    header: dict[str, Any] | bytes, payload: bytes, secret: bytes = SECRET, raw: bool = False
) -> str:
    """An HS256 token; with ``raw`` the payload bytes are used as the segment itself."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    data = b64url_encode(text) + b"." + (payload if raw else b64url_encode(payload))
    return (data + b"." + b64url_encode(hmac.digest(secret, data, "sha256"))).decode()


def claims(**values: Any) -> bytes:
    return json.dumps({"exp": NOW + 60, **values}).encode()


FAILURES: dict[str, tuple[Callable[[], str], type[TokensmithError], dict[str, Any]]] = {
    "bad signature": (lambda: hs256({"alg": "HS256"}, claims(), bytes(64)), BadSignature, {}),
    "alg none": (lambda: hs256({"alg": "none"}, claims()), AlgorithmNotAllowed, {}),
    "alg not allowed": (lambda: hs256({"alg": "HS512"}, claims()), AlgorithmNotAllowed, {}),
    "crit": (lambda: hs256({"alg": "HS256", "crit": ["x"]}, claims()), UnsupportedHeader, {}),
    "jwk header": (lambda: hs256({"alg": "HS256", "jwk": {}}, claims()), UnsupportedHeader, {}),
    "kid unknown": (lambda: hs256({"alg": "HS256", "kid": "zz"}, claims()), KeyNotFound, {}),
    "kid type": (lambda: hs256({"alg": "HS256", "kid": 5}, claims()), MalformedToken, {}),
    "typ": (
        lambda: hs256({"alg": "HS256", "typ": "JWT"}, claims()),
        InvalidType,
        {"typ": "at+jwt"},
    ),
    "duplicate": (lambda: hs256({"alg": "HS256"}, b'{"a":1,"a":2}'), MalformedToken, {}),
    "nan": (lambda: hs256({"alg": "HS256"}, b'{"exp":NaN}'), MalformedToken, {}),
    "bad json header": (lambda: hs256(b'{"alg":', claims()), MalformedToken, {}),
    "expired": (lambda: hs256({"alg": "HS256"}, claims(exp=NOW)), ExpiredToken, {}),
    "nbf": (lambda: hs256({"alg": "HS256"}, claims(nbf=NOW + 9)), NotYetValid, {}),
    "exp type": (lambda: hs256({"alg": "HS256"}, claims(exp="x")), InvalidClaim, {}),
    "issuer": (
        lambda: hs256({"alg": "HS256"}, claims(iss="https://evil")),
        InvalidClaim,
        {"issuer": "https://good"},
    ),
    "audience": (
        lambda: hs256({"alg": "HS256"}, claims(aud="other")),
        InvalidClaim,
        {"audience": "api"},
    ),
    "missing": (
        lambda: hs256({"alg": "HS256"}, claims()),
        MissingClaim,
        {"required_claims": ["sub"]},
    ),
    "payload b64": (
        lambda: hs256({"alg": "HS256"}, b"+" + b64url_encode(claims()), raw=True),
        MalformedToken,
        {},
    ),
    "signature b64": (lambda: hs256({"alg": "HS256"}, claims()) + "=", MalformedToken, {}),
    "too large": (lambda: hs256({"alg": "HS256"}, b"{}" + b" " * 9000), TokenTooLarge, {}),
    "jwe": (lambda: "eyJhbGciOiJkaXIifQ.." + SECRET_B64 + ".AAAA.AAAA", MalformedToken, {}),
}


@pytest.fixture(scope="module")
def secret_key() -> JWK:
    return JWK.from_secret(SECRET, kid="k")


def assert_safe(exc: BaseException, token: str) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'to_dict', dict)()}"
    segments = token.split(".")
    assert token not in text
    for segment in segments:
        if len(segment) >= 8:
            assert segment not in text
    assert SECRET_B64 not in text
    assert SECRET.hex() not in text
    assert "SECRETSECRET" not in text
    assert exc.__cause__ is None or not any(
        segment in str(exc.__cause__) for segment in segments if len(segment) >= 8
    )


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_messages_never_contain_the_token_or_the_secret(secret_key: JWK, name: str) -> None:
    make, error, options = FAILURES[name]
    token = make()
    policy = JWTPolicy(algorithms=["HS256"], clock=FixedClock(NOW), **options)
    with pytest.raises(error) as info:
        verify_jwt(token, JWKSet([secret_key]), policy)
    assert_safe(info.value, token)
    # The JWS layer alone (no claim or payload rules) must be just as discreet when it fails.
    try:
        verify_compact(token, secret_key, algorithms=["HS256"])
    except TokensmithError as exc:
        assert_safe(exc, token)


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "!!!!!!!!!!!!.e30.AAAA",
        hs256({"alg": "HS256"}, b"[1]"),
        hs256({"alg": "HS256"}, b'{"a":"\xff"}'),
    ],
)
def test_decode_unverified_messages_are_safe(token: str) -> None:
    with pytest.raises(MalformedToken) as info:
        decode_unverified(token)
    assert_safe(info.value, token)


def test_ambiguous_key_message_is_safe() -> None:
    one, two = JWK.generate("ES256"), JWK.generate("ES256")
    token = sign_compact(b"{}", one, include_kid=False)
    with pytest.raises(AmbiguousKey) as info:
        verify_compact(token, JWKSet([one.public(), two.public()]), algorithms=["ES256"])
    assert_safe(info.value, token)


def test_key_errors_never_show_key_material() -> None:
    short = b"\x01SHORTSECRET"
    with pytest.raises(InvalidKey) as info:
        JWK.from_secret(short)
    assert "SHORTSECRET" not in str(info.value)
    assert b64url_encode(short).decode() not in str(info.value)
    private = JWK.generate("ES256").to_dict(private=True)
    wrong = dict(private, d=JWK.generate("ES256").to_dict(private=True)["d"])
    for members in (wrong, dict(private, x="AA"), dict(private, d="!!")):
        with pytest.raises(InvalidKey) as info:
            JWK.from_dict(members)
        for value in members.values():
            if isinstance(value, str) and len(value) > 8:
                assert value not in str(info.value)
    with pytest.raises(InvalidKeySet) as set_info:
        JWKSet.from_dict({"keys": [wrong]})
    assert wrong["d"] not in str(set_info.value)


# -- misuse is a TypeError or ValueError at the call -----------------------------------------------


MISUSE: dict[str, tuple[Callable[[JWK], Any], type[Exception]]] = {
    "policy without algorithms": (lambda key: JWTPolicy(), TypeError),  # type: ignore[call-arg]
    "algorithms as a bare string": (lambda key: JWTPolicy(algorithms="HS256"), TypeError),
    "algorithms empty": (lambda key: JWTPolicy(algorithms=[]), ValueError),
    "algorithms with none": (lambda key: JWTPolicy(algorithms=["none"]), ValueError),
    "negative leeway": (lambda key: JWTPolicy(algorithms=["HS256"], leeway=-1), ValueError),
    "huge leeway": (lambda key: JWTPolicy(algorithms=["HS256"], leeway=10**6), ValueError),
    "leeway as text": (lambda key: JWTPolicy(algorithms=["HS256"], leeway="5"), TypeError),
    "issuer as bytes": (lambda key: JWTPolicy(algorithms=["HS256"], issuer=b"x"), TypeError),
    "verify without algorithms": (
        lambda key: verify_compact("a.b.c", key),  # type: ignore[call-arg]
        TypeError,
    ),
    "verify with string algorithms": (
        lambda key: verify_compact("a.b.c", key, algorithms="HS256"),
        TypeError,
    ),
    "verify_jwt with a dict policy": (
        lambda key: verify_jwt("a.b.c", key, {"algorithms": ["HS256"]}),  # type: ignore[arg-type]
        TypeError,
    ),
    "verify_jwt with raw secret": (
        lambda key: verify_jwt("a.b.c", SECRET, JWTPolicy(algorithms=["HS256"])),  # type: ignore[arg-type]
        TypeError,
    ),
    "token as int": (lambda key: verify_compact(5, key, algorithms=["HS256"]), TypeError),  # type: ignore[arg-type]
    "bytes claims": (lambda key: encode_jwt({"sub": b"alice"}, key), TypeError),
    "claims not a mapping": (lambda key: encode_jwt([("sub", "a")], key), TypeError),  # type: ignore[arg-type]
    "payload as text": (lambda key: sign_compact("{}", key), TypeError),  # type: ignore[arg-type]
    "expires_in zero": (lambda key: encode_jwt({}, key, expires_in=0), ValueError),
    "secret as text": (lambda key: JWK.from_secret("x" * 40), TypeError),  # type: ignore[arg-type]
    "unknown algorithm to generate": (lambda key: JWK.generate("none"), ValueError),
}


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_misuse_raises_type_or_value_error(secret_key: JWK, name: str) -> None:
    call, error = MISUSE[name]
    with pytest.raises(error) as info:
        call(JWK.from_secret(SECRET, alg="HS256"))
    assert not isinstance(info.value, TokensmithError)
