"""Strict unpadded base64url (RFC 7515 section 2): one canonical spelling per byte string."""

from __future__ import annotations

import base64
import hmac
import string

import pytest

from tokensmith.jose import JWK, MalformedToken, verify_compact
from tokensmith.jose._b64 import (
    B64Error,
    b64url_decode,
    b64url_decode_uint,
    b64url_encode,
    uint_to_b64url,
)

ALPHABET = (string.ascii_letters + string.digits + "-_").encode("ascii")


def reference_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@pytest.mark.parametrize("length", range(70))
def test_round_trip_matches_the_standard_library(length: int) -> None:
    data = bytes((i * 37 + length) & 0xFF for i in range(length))
    encoded = b64url_encode(data)
    assert encoded == reference_encode(data)
    assert b"=" not in encoded
    assert b64url_decode(encoded) == data


def test_every_byte_value_round_trips() -> None:
    data = bytes(range(256))
    assert b64url_decode(b64url_encode(data)) == data


def test_empty_segment_decodes_to_empty() -> None:
    assert b64url_decode(b"") == b""


@pytest.mark.parametrize(
    "segment",
    [
        b"QQ==",  # "A" padded
        b"QUI=",  # "AB" padded
        b"QQ=",
        b"QUJD====",
        b"=QUJD",
        b"QU=JD",
    ],
)
def test_padding_is_rejected(segment: bytes) -> None:
    with pytest.raises(B64Error):
        b64url_decode(segment)


@pytest.mark.parametrize(
    "segment",
    [
        b"+/+/",  # the standard alphabet, length 4n
        b"ab+d",
        b"ab/d",
        b"++",
        b"//8",
    ],
)
def test_standard_alphabet_is_rejected(segment: bytes) -> None:
    with pytest.raises(B64Error):
        b64url_decode(segment)


@pytest.mark.parametrize(
    "segment",
    [
        b"ab cd",
        b"abcd efgh",  # 4n+... with the space making it 9
        b"abc ",  # length 4n, whitespace at the end
        b" abc",
        b"abc\n",
        b"ab\ncdefg",  # length 8
        b"abc\t",
        b"abc\r",
        b"ab\r\n",
        b"abcd\n",
    ],
)
def test_whitespace_is_rejected(segment: bytes) -> None:
    with pytest.raises(B64Error):
        b64url_decode(segment)


@pytest.mark.parametrize("byte", range(256))
def test_every_character_outside_the_alphabet_is_rejected(byte: int) -> None:
    # One odd byte inside an otherwise valid length-4 quantum: accepted only if
    # it belongs to the URL-safe alphabet.
    segment = b"AA" + bytes([byte]) + b"A"
    if byte in ALPHABET:
        assert b64url_decode(segment) == base64.urlsafe_b64decode(segment)
    else:
        with pytest.raises(B64Error):
            b64url_decode(segment)


@pytest.mark.parametrize("segment", [b"A", b"AAAAA", b"QUJDR", b"QUJDRUZHS", b"_"])
def test_length_4n_plus_1_is_rejected(segment: bytes) -> None:
    assert len(segment) % 4 == 1
    with pytest.raises(B64Error):
        b64url_decode(segment)


@pytest.mark.parametrize("prefix", [b"", b"QUJD"])
@pytest.mark.parametrize("rest", [2, 3])
def test_only_canonical_trailing_bits_are_accepted(prefix: bytes, rest: int) -> None:
    # With 2 (3) characters in the last quantum, the low 4 (2) bits of the last
    # character are padding; exactly 64 / 16 (resp. 64 / 4) spellings are canonical.
    accepted = []
    for last in ALPHABET:
        segment = prefix + b"Q" * (rest - 1) + bytes([last])
        try:
            decoded = b64url_decode(segment)
        except B64Error:
            continue
        accepted.append(segment)
        assert reference_encode(decoded) == segment
    assert len(accepted) == (4 if rest == 2 else 16)


@pytest.mark.parametrize("segment", [b"QR", b"QV", b"Qf", b"QUK", b"QUL", b"QUJDRF"])
def test_non_canonical_trailing_bits_are_rejected(segment: bytes) -> None:
    # Lenient decoders return the same bytes as the canonical spelling.
    assert base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    with pytest.raises(B64Error):
        b64url_decode(segment)


def test_error_message_does_not_quote_the_input() -> None:
    secret_looking = b"c2VjcmV0LXZhbHVl+"
    with pytest.raises(B64Error) as info:
        b64url_decode(secret_looking)
    assert secret_looking.decode() not in str(info.value)


# -- Base64urlUInt (JWK integer members) -------------------------------------


@pytest.mark.parametrize("value", [0, 1, 255, 256, 65537, 2**255 - 19, 2**521 - 1])
def test_uint_round_trip_is_minimal(value: int) -> None:
    encoded = uint_to_b64url(value)
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    assert len(raw) == max(1, (value.bit_length() + 7) // 8)
    assert b64url_decode_uint(encoded) == value


def test_uint_fixed_length_keeps_leading_zeros() -> None:
    encoded = uint_to_b64url(1, 32)
    assert b64url_decode_uint(encoded, length=32) == 1
    with pytest.raises(B64Error):
        b64url_decode_uint(encoded, length=31)


def test_uint_leading_zero_octets_are_rejected_without_fixed_length() -> None:
    with pytest.raises(B64Error):
        b64url_decode_uint(b64url_encode(b"\x00\x01").decode())


@pytest.mark.parametrize("value", ["", 1, None, b"AQAB", ["AQAB"], "AQAB=", "é"])
def test_uint_rejects_empty_and_non_string(value: object) -> None:
    with pytest.raises(B64Error):
        b64url_decode_uint(value)


# -- the same rules applied to every segment of a token ----------------------


@pytest.fixture(scope="module")
def hs_key() -> JWK:
    return JWK.from_secret(bytes(range(32)), kid="k")


def mac(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.digest(secret, signing_input, "sha256")


def _verify(token: str, key: JWK) -> None:
    verify_compact(token, key, algorithms=["HS256"])


def test_non_canonical_signature_is_malformed_even_though_the_mac_matches(hs_key: JWK) -> None:
    header = b64url_encode(b'{"alg":"HS256"}')
    payload = b64url_encode(b"{}")
    signing_input = header + b"." + payload
    signature = b64url_encode(mac(bytes(range(32)), signing_input))
    assert len(signature) % 4 == 3  # 32 bytes: the last character carries 2 padding bits
    _verify((signing_input + b"." + signature).decode(), hs_key)
    last = ALPHABET.index(signature[-1])
    twin = signature[:-1] + bytes([ALPHABET[last | 1]])
    assert twin != signature
    assert base64.urlsafe_b64decode(twin + b"=") == base64.urlsafe_b64decode(signature + b"=")
    with pytest.raises(MalformedToken):
        _verify((signing_input + b"." + twin).decode(), hs_key)


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
@pytest.mark.parametrize("mutation", ["pad", "plus", "slash", "space", "newline"])
def test_each_segment_is_strict(hs_key: JWK, where: str, mutation: str) -> None:
    header = b64url_encode(b'{"alg":"HS256","x":"~~~"}')
    payload = b64url_encode(b'{"a":"??>"}')
    segments = {"header": header, "payload": payload}

    def bad(segment: bytes) -> bytes:
        if mutation == "pad":
            return segment + b"=" * (-len(segment) % 4 or 4)
        if mutation == "plus":
            return segment.replace(b"-", b"+") if b"-" in segment else b"+" + segment[1:]
        if mutation == "slash":
            return segment.replace(b"_", b"/") if b"_" in segment else b"/" + segment[1:]
        if mutation == "space":
            return segment[:4] + b" " + segment[4:]
        return segment + b"\n"

    if where != "signature":
        segments[where] = bad(segments[where])
    signing_input = segments["header"] + b"." + segments["payload"]
    signature = b64url_encode(mac(bytes(range(32)), signing_input))
    if where == "signature":
        signature = bad(signature)
    token = (signing_input + b"." + signature).decode()
    with pytest.raises(MalformedToken):
        _verify(token, hs_key)
