"""Property tests (Hypothesis): round trips, any byte flip fails, hostile input stays in the tree.

The failure properties say what a verifier must never do: accept a modified token, or
raise anything but a ``TokensmithError`` on input from outside.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from conftest import ALGORITHMS, ASYMMETRIC, NOW
from tokensmith.clock import FixedClock
from tokensmith.jose import (
    JWK,
    JWKSet,
    JWTPolicy,
    TokenError,
    TokensmithError,
    decode_unverified,
    encode_jwt,
    sign_compact,
    verify_compact,
    verify_jwt,
)
from tokensmith.jose._b64 import B64Error, b64url_decode, b64url_encode

# RSA signing costs a millisecond or two and varies; no deadline, modest example counts.
# The session key fixtures are shared across examples on purpose.
PROPERTY = settings(max_examples=50, deadline=None)

REGISTERED = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# -- JSON strategies -------------------------------------------------------------------------

json_text = st.text(st.characters(codec="utf-8"), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)


def json_values(depth: int) -> st.SearchStrategy[Any]:
    """JSON values nested at most ``depth`` levels (well under the core's limit of 32)."""
    if depth == 0:
        return json_scalars
    inner = json_values(depth - 1)
    return (
        json_scalars | st.lists(inner, max_size=3) | st.dictionaries(json_text, inner, max_size=3)
    )


# Claims a policy has no opinion on: registered names are left to the tests that set them.
free_claims = st.dictionaries(
    json_text.filter(lambda name: name not in REGISTERED), json_values(3), max_size=6
)

# Header members and claims with the names the verifier inspects, holding any JSON value.
HEADER_NAMES = ["alg", "kid", "typ", "cty", "crit", "b64", "jwk", "jku", "x5c", "x5u", "enc", "zip"]
any_header = st.one_of(
    st.dictionaries(st.sampled_from(HEADER_NAMES) | json_text, json_values(2), max_size=5),
    st.dictionaries(st.sampled_from(HEADER_NAMES) | json_text, json_values(2), max_size=4).map(
        lambda members: {"alg": "HS256", **members}
    ),
    # Mostly well-formed headers, so that many tokens reach the claim checks.
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["HS256", "HS384", "RS256"])},
        optional={
            "typ": st.sampled_from(["JWT", "jwt", "application/JWT", "at+jwt", "JWT/x"]),
            "kid": json_text,
            "cty": st.just("JWT"),
        },
    ),
)
any_claims = st.dictionaries(st.sampled_from(REGISTERED) | json_text, json_values(2), max_size=6)
# Registered claims near NOW and with plausible values, so some tokens pass every check.
# Valid values are listed more often than the invalid ones beside them.
timely_claims = st.fixed_dictionaries(
    {"exp": st.integers(NOW - 10, NOW + 3600) | st.floats(NOW + 0.5, NOW + 3600)},
    optional={
        "nbf": st.integers(NOW - 3600, NOW + 10),
        "iat": st.integers(NOW - 3600, NOW + 10),
        "iss": st.sampled_from(["https://issuer.example"] * 3 + ["https://issuer.example/", 7]),
        "aud": st.sampled_from(["api", ["other", "api"], [], ["other"], None]),
        "sub": st.sampled_from(["alice"] * 3 + ["", None, 1]),
        "jti": st.sampled_from(["id-1"] * 3 + [None, ["id"]]),
    },
)
mixed_claims = st.builds(lambda free, timely: {**free, **timely}, free_claims, timely_claims)


def _policies() -> list[JWTPolicy]:
    clock = FixedClock(NOW)
    return [
        JWTPolicy(algorithms=["HS256"], clock=clock),
        JWTPolicy(
            algorithms=["HS256", "HS384"],
            issuer="https://issuer.example",
            audience="api",
            typ="JWT",
            required_claims=("sub",),
            require_exp=False,
            leeway=5,
            clock=clock,
        ),
    ]


# -- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
@PROPERTY
@given(claims=free_claims, lifetime=st.integers(min_value=1, max_value=10**9))
def test_sign_verify_round_trip(
    alg: str,
    claims: dict[str, Any],
    lifetime: int,
    private_keys: dict[str, JWK],
    verify_keys: dict[str, JWK],
) -> None:
    clock = FixedClock(NOW)
    token = encode_jwt(claims, private_keys[alg], alg=alg, expires_in=lifetime, clock=clock)
    policy = JWTPolicy(algorithms=[alg], clock=clock)
    assert verify_jwt(token, verify_keys[alg], policy) == {
        **claims,
        "iat": NOW,
        "exp": NOW + lifetime,
    }
    # At exp the same token is refused.
    clock.advance(lifetime)
    with pytest.raises(TokenError):
        verify_jwt(token, verify_keys[alg], policy)


@pytest.mark.parametrize("alg", ALGORITHMS)
@PROPERTY
@given(payload=st.binary(max_size=300))
def test_compact_round_trip_any_payload(
    alg: str, payload: bytes, private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    token = sign_compact(payload, private_keys[alg], alg=alg)
    assert verify_compact(token, verify_keys[alg], algorithms=[alg]).payload == payload


# -- any single byte changed -----------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_tokens(private_keys: dict[str, JWK], verify_keys: dict[str, JWK]) -> dict[str, bytes]:
    claims = {"sub": "alice", "scope": "read", "n": [1, 2.5, None]}
    tokens = {}
    for alg in ALGORITHMS:
        token = encode_jwt(
            claims, private_keys[alg], alg=alg, expires_in=3600, clock=FixedClock(NOW)
        )
        # The unmodified token verifies, so a refusal below is caused by the flip.
        verify_jwt(token, verify_keys[alg], JWTPolicy(algorithms=[alg], clock=FixedClock(NOW)))
        tokens[alg] = token.encode("ascii")
    return tokens


@pytest.mark.parametrize("alg", ALGORITHMS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_refused(
    alg: str, data: st.DataObject, signed_tokens: dict[str, bytes], verify_keys: dict[str, JWK]
) -> None:
    token = signed_tokens[alg]
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    delta = data.draw(st.integers(min_value=1, max_value=255), label="delta")
    flipped = bytearray(token)
    flipped[position] = (flipped[position] + delta) % 256
    policy = JWTPolicy(algorithms=[alg], clock=FixedClock(NOW))
    with pytest.raises(TokenError):
        verify_jwt(bytes(flipped), verify_keys[alg], policy)
    # Also as text, for the bytes that decode as one.
    try:
        text = bytes(flipped).decode("utf-8")
    except UnicodeDecodeError:
        return
    with pytest.raises(TokenError):
        verify_jwt(text, verify_keys[alg], policy)


# -- hostile input stays inside the error tree -----------------------------------------------


@pytest.fixture(scope="module")
def hostile_targets(verify_keys: dict[str, JWK]) -> list[tuple[JWK | JWKSet, JWTPolicy]]:
    clock = FixedClock(NOW)
    asymmetric = JWKSet([verify_keys[alg] for alg in ASYMMETRIC])
    return [
        (asymmetric, JWTPolicy(algorithms=ASYMMETRIC, clock=clock)),
        (verify_keys["HS256"], JWTPolicy(algorithms=["HS256", "HS384", "HS512"], clock=clock)),
    ]


segment_text = st.text(alphabet=B64URL_ALPHABET + "=+/.", max_size=40)
token_like = (
    st.text(max_size=200)
    | st.binary(max_size=200)
    | st.lists(segment_text, min_size=1, max_size=6).map(".".join)
    | st.lists(
        st.binary(max_size=40).map(lambda raw: b64url_encode(raw).decode("ascii")),
        min_size=3,
        max_size=3,
    ).map(".".join)
    | st.lists(
        st.dictionaries(json_text, json_values(2), max_size=3).map(
            lambda obj: b64url_encode(json.dumps(obj).encode("utf-8")).decode("ascii")
        ),
        min_size=2,
        max_size=2,
    ).map(lambda parts: ".".join([*parts, "c2ln"]))
)


@settings(max_examples=200, deadline=None)
@given(token=token_like)
def test_arbitrary_token_raises_only_token_errors(
    token: str | bytes, hostile_targets: list[tuple[JWK | JWKSet, JWTPolicy]]
) -> None:
    for keys, policy in hostile_targets:
        with pytest.raises(TokenError):
            verify_jwt(token, keys, policy)
        with pytest.raises(TokenError):
            verify_compact(token, keys, algorithms=policy.algorithms)
    try:
        decode_unverified(token)
    except TokensmithError:
        pass


def _signed(header_segment: bytes, payload_segment: bytes, key: JWK) -> bytes:
    # The MAC is made by the key's bound signer so that hostile headers and payloads reach
    # the code behind the signature check; sign_compact would refuse to build most of them.
    signing_input = header_segment + b"." + payload_segment
    return signing_input + b"." + b64url_encode(key._signers["HS256"](signing_input))


def _segment(obj: Any) -> bytes:
    return b64url_encode(json.dumps(obj, ensure_ascii=False).encode("utf-8"))


raw_json_text = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(1, 200).map(lambda depth: b'{"a":' + b"[" * depth + b"]" * depth + b"}"),
    st.sampled_from(
        [
            b'{"alg":"HS256","alg":"none"}',
            b'{"exp":NaN}',
            b'{"exp":1e999}',
            b'{"exp":Infinity}',
            b'{"exp":-Infinity}',
            b"[]",
            b"null",
            b'"str"',
            b"\xef\xbb\xbf{}",
            b'{"a":"\\ud800"}',
            b'{"exp":' + b"9" * 5000 + b"}",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(header=any_header, claims=any_claims | mixed_claims)
def test_arbitrary_signed_json_raises_only_token_errors(
    header: dict[str, Any], claims: dict[str, Any], private_keys: dict[str, JWK]
) -> None:
    key = private_keys["HS256"]
    token = _signed(_segment(header), _segment(claims), key)
    for policy in _policies():
        try:
            result = verify_jwt(token, key, policy)
        except TokenError as exc:
            event(exc.code)
            continue
        event("accepted")
        # Accepted: then it really was an acceptable HS256 JWT, returned unchanged.
        assert header.get("alg") in policy.algorithms
        assert result == claims
        assert "exp" in claims or not policy.require_exp


@settings(max_examples=200, deadline=None)
@given(header=st.one_of(raw_json_text, st.just(b'{"alg":"HS256"}')), payload=raw_json_text)
def test_arbitrary_signed_segments_raise_only_token_errors(
    header: bytes, payload: bytes, private_keys: dict[str, JWK]
) -> None:
    key = private_keys["HS256"]
    token = _signed(b64url_encode(header), b64url_encode(payload), key)
    for policy in _policies():
        try:
            verify_jwt(token, key, policy)
        except TokenError as exc:
            event(exc.code)
    try:
        decode_unverified(token)
    except TokensmithError:
        pass


# -- base64url ---------------------------------------------------------------------------------


@settings(max_examples=200)
@given(data=st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=")
    assert len(encoded) == math.ceil(len(data) * 4 / 3)
    assert b64url_decode(encoded) == data


@settings(max_examples=200)
@given(
    segment=st.text(alphabet=B64URL_ALPHABET + "=+/ \n.\x00", max_size=24).map(
        lambda text: text.encode("ascii")
    )
    | st.binary(max_size=24)
)
def test_b64url_decode_accepts_only_canonical_segments(segment: bytes) -> None:
    # Canonical means: re-encoding the decoded bytes gives the same segment back.
    try:
        decoded = b64url_decode(segment)
    except B64Error:
        assert not _is_canonical(segment)
    else:
        assert b64url_encode(decoded) == segment


@settings(max_examples=200)
@given(
    data=st.binary(min_size=1, max_size=60).filter(lambda raw: len(raw) % 3 != 0),
    noise=st.integers(min_value=1, max_value=15),
)
def test_b64url_nonzero_trailing_bits_are_refused(data: bytes, noise: int) -> None:
    encoded = b64url_encode(data)
    # 1 or 2 trailing octets leave 4 or 2 unused bits in the last character.
    mask = (1 << (4 if len(encoded) % 4 == 2 else 2)) - 1
    last = B64URL_ALPHABET.index(chr(encoded[-1]))
    assert last & mask == 0
    altered = encoded[:-1] + B64URL_ALPHABET[last | (noise & mask or 1)].encode("ascii")
    with pytest.raises(B64Error):
        b64url_decode(altered)


@settings(max_examples=100)
@given(data=st.binary(max_size=60), extra=st.integers(min_value=1, max_value=3))
def test_b64url_padding_is_refused(data: bytes, extra: int) -> None:
    with pytest.raises(B64Error):
        b64url_decode(b64url_encode(data) + b"=" * extra)
    # The standard padded form, where it differs, is not base64url either.
    padded = base64.urlsafe_b64encode(data)
    if padded.endswith(b"="):
        with pytest.raises(B64Error):
            b64url_decode(padded)


def _is_canonical(segment: bytes) -> bool:
    """An independent oracle: the standard library's decoder plus a re-encode."""
    if any(chr(byte) not in B64URL_ALPHABET for byte in segment) or len(segment) % 4 == 1:
        return False
    padded = segment + b"=" * (-len(segment) % 4)
    decoded = base64.urlsafe_b64decode(padded)
    return base64.urlsafe_b64encode(decoded).rstrip(b"=") == segment
