"""Strict JSON for headers and claims: one UTF-8 object, no duplicates, finite, bounded depth."""

from __future__ import annotations

import hmac

import pytest

from tokensmith.clock import FixedClock
from tokensmith.jose import (
    JWK,
    JWTPolicy,
    MalformedToken,
    decode_unverified,
    verify_compact,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_encode
from tokensmith.jose._json import MAX_DEPTH, JSONError, dumps_compact, loads_object

SECRET = bytes(range(100, 132))
NOW = 1_767_225_600


def hs256_token(header: bytes, payload: bytes) -> str:
    """A correctly MACed token with the exact header and payload text given."""
    signing_input = b64url_encode(header) + b"." + b64url_encode(payload)
    signature = hmac.digest(SECRET, signing_input, "sha256")
    return (signing_input + b"." + b64url_encode(signature)).decode("ascii")


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.from_secret(SECRET)


@pytest.fixture
def policy() -> JWTPolicy:
    return JWTPolicy(algorithms=["HS256"], require_exp=False, clock=FixedClock(NOW))


# -- the parser ----------------------------------------------------------------


def test_a_plain_object_parses() -> None:
    assert loads_object(b'{"a":1,"b":[true,null,"x"],"c":{"d":1.5}}') == {
        "a": 1,
        "b": [True, None, "x"],
        "c": {"d": 1.5},
    }


@pytest.mark.parametrize(
    "text",
    [
        b'{"role":"EDITOR","role":"ADMIN"}',
        b'{"a":1,"a":1}',
        b'{"x":{"k":1,"k":2}}',
        b'{"x":[{"k":1,"k":2}]}',
        b'{"a":1,"\\u0061":2}',  # the same name, spelled with an escape
    ],
)
def test_duplicate_member_names_are_rejected(text: bytes) -> None:
    with pytest.raises(JSONError):
        loads_object(text)


@pytest.mark.parametrize(
    "text",
    [
        b'{"n":NaN}',
        b'{"n":Infinity}',
        b'{"n":-Infinity}',
        b'{"n":1e999}',
        b'{"n":-1e999}',
        b'{"n":1.7976931348623159e308}',
        b'{"n":[1,2,1E400]}',
    ],
)
def test_non_finite_numbers_are_rejected(text: bytes) -> None:
    with pytest.raises(JSONError):
        loads_object(text)


def test_large_finite_numbers_are_accepted() -> None:
    assert loads_object(b'{"n":1.7976931348623157e308}') == {"n": 1.7976931348623157e308}
    assert loads_object(b'{"n":' + b"9" * 400 + b"}") == {"n": int("9" * 400)}


def test_integers_beyond_the_digit_limit_fail_as_json_errors() -> None:
    # CPython refuses to convert more than 4300 digits with a ValueError of its own.
    with pytest.raises(JSONError) as info:
        loads_object(b'{"n":' + b"7" * 5000 + b"}")
    assert "7777" not in str(info.value)


def nested(depth: int, opener: str = "[") -> bytes:
    closer = "]" if opener == "[" else "}"
    inner = "1" if opener == "[" else '"v"'
    if opener == "{":
        body = ('{"k":' * (depth - 1)) + "{" + '"k":' + inner + "}" + "}" * (depth - 1)
        return body.encode()
    # The top-level object is one level; the arrays make up the rest.
    return ('{"k":' + opener * (depth - 1) + inner + closer * (depth - 1) + "}").encode()


@pytest.mark.parametrize("opener", ["[", "{"])
def test_nesting_up_to_the_limit_is_accepted(opener: str) -> None:
    assert isinstance(loads_object(nested(MAX_DEPTH, opener)), dict)


@pytest.mark.parametrize("opener", ["[", "{"])
@pytest.mark.parametrize("extra", [1, 2, 1000])
def test_nesting_beyond_the_limit_is_rejected(opener: str, extra: int) -> None:
    with pytest.raises(JSONError):
        loads_object(nested(MAX_DEPTH + extra, opener))


def test_very_deep_nesting_is_a_json_error_not_a_recursion_error() -> None:
    with pytest.raises(JSONError):
        loads_object(b'{"k":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = b'{"a":"' + b"[{" * 200 + b'","b":"\\"[[[["}'
    assert loads_object(text)["a"] == "[{" * 200


def test_many_shallow_brackets_are_accepted() -> None:
    text = b'{"a":[' + b",".join([b"[]"] * 500) + b"]}"
    assert len(loads_object(text)["a"]) == 500


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":"\xff"}',
        b'{"a":"\xc3"}',  # truncated sequence
        b'{"a":"\xed\xa0\x80"}',  # an encoded surrogate is not UTF-8
        b'{"a":"caf\xe9"}',  # Latin-1
        '{"a":1}'.encode("utf-16"),
    ],
)
def test_text_must_be_utf8(text: bytes) -> None:
    with pytest.raises(JSONError):
        loads_object(text)


def test_non_ascii_utf8_is_accepted() -> None:
    assert loads_object('{"name":"Zoë 🙂"}'.encode()) == {"name": "Zoë 🙂"}


@pytest.mark.parametrize(
    "text",
    [b"[]", b'"x"', b"1", b"null", b"true", b"", b" ", b"{", b'{"a":1} x', b"{}{}", b"{'a':1}"],
)
def test_only_a_single_object_is_accepted(text: bytes) -> None:
    with pytest.raises(JSONError):
        loads_object(text)


def test_error_messages_never_quote_the_input() -> None:
    for text in (b'{"secret-value":', b'{"secret-value":1,"secret-value":2}', b"[secret-value]"):
        with pytest.raises(JSONError) as info:
            loads_object(text)
        assert "secret-value" not in str(info.value)


def test_dumps_compact_has_no_whitespace_and_keeps_utf8() -> None:
    assert dumps_compact({"a": 1, "b": ["é", None]}) == '{"a":1,"b":["é",null]}'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dumps_compact_refuses_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValueError):
        dumps_compact({"n": value})


# -- the same rules, through a whole token --------------------------------------


def test_duplicate_role_never_yields_admin(key: JWK, policy: JWTPolicy) -> None:
    token = hs256_token(b'{"alg":"HS256"}', b'{"role":"EDITOR","role":"ADMIN"}')
    with pytest.raises(MalformedToken):
        verify_jwt(token, key, policy)
    with pytest.raises(MalformedToken):
        decode_unverified(token)


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg":"HS256","alg":"none"}',
        b'{"alg":"none","alg":"HS256"}',
        b'{"alg":"HS256","kid":"a","kid":"b"}',
    ],
)
def test_duplicate_header_members_are_rejected(key: JWK, header: bytes) -> None:
    token = hs256_token(header, b"{}")
    with pytest.raises(MalformedToken):
        verify_compact(token, key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header",
    [b"[]", b'"HS256"', b"null", b"1", b'{"alg":"HS256"', b"", b'{"alg":"HS256"}\x00'],
)
def test_header_must_be_a_json_object(key: JWK, header: bytes) -> None:
    with pytest.raises(MalformedToken):
        verify_compact(hs256_token(header, b"{}"), key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header", [b'{"alg":"HS256","x":"\xff"}', '{"alg":"HS256"}'.encode("utf-16")]
)
def test_header_must_be_utf8(key: JWK, header: bytes) -> None:
    with pytest.raises(MalformedToken):
        verify_compact(hs256_token(header, b"{}"), key, algorithms=["HS256"])


def test_header_nesting_is_bounded(key: JWK) -> None:
    header = b'{"alg":"HS256","x":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"
    with pytest.raises(MalformedToken):
        verify_compact(hs256_token(header, b"{}"), key, algorithms=["HS256"])


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_header_numbers_must_be_finite(key: JWK, number: bytes) -> None:
    header = b'{"alg":"HS256","x":' + number + b"}"
    with pytest.raises(MalformedToken):
        verify_compact(hs256_token(header, b"{}"), key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'"claims"',
        b"null",
        b"",
        b'{"sub":"a"',
        b'{"sub":"\xff"}',
        b'{"n":NaN}',
        b'{"n":Infinity}',
        b'{"n":-1e999}',
        b'{"x":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
    ],
)
def test_payload_must_be_a_strict_json_object(key: JWK, policy: JWTPolicy, payload: bytes) -> None:
    token = hs256_token(b'{"alg":"HS256"}', payload)
    with pytest.raises(MalformedToken):
        verify_jwt(token, key, policy)


def test_a_jws_payload_need_not_be_json(key: JWK) -> None:
    # verify_compact signs and verifies bytes; only the JWT layer demands an object.
    token = hs256_token(b'{"alg":"HS256"}', b"\xff\x00 not json")
    assert verify_compact(token, key, algorithms=["HS256"]).payload == b"\xff\x00 not json"
