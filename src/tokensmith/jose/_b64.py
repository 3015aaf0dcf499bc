"""Strict base64url without padding (RFC 7515 section 2, RFC 4648 section 5).

Every check runs in C: one ``bytes.translate`` maps the URL-safe alphabet onto
the standard one and maps ``+``, ``/`` and ``=`` to a byte the strict decoder
refuses, so a segment holding anything outside ``A-Z a-z 0-9 - _`` fails in
``binascii``. The only Python-level checks are the length and the last
character, which carries the trailing bits that must be zero.
"""

from __future__ import annotations

import binascii

__all__ = ["B64Error", "b64url_decode", "b64url_decode_uint", "b64url_encode", "uint_to_b64url"]


class B64Error(ValueError):
    """A segment is not canonical unpadded base64url."""


_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# With 2 or 3 characters in the last quantum, the last character's low 4 or
# 2 bits are padding and must be zero for the encoding to be canonical.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_PADDING = {2: b"==", 3: b"="}


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded base64url segment, refusing anything non-canonical."""
    rest = len(segment) & 3
    if rest:
        if rest == 1:
            raise B64Error("base64url segment has an impossible length")
        if segment[-1] not in _CANONICAL_LAST[rest]:
            raise B64Error("base64url segment has non-zero trailing bits")
        segment = segment.translate(_TO_STANDARD) + _PADDING[rest]
    else:
        segment = segment.translate(_TO_STANDARD)
    try:
        return binascii.a2b_base64(segment, strict_mode=True)
    except binascii.Error:
        raise B64Error("segment is not base64url") from None


def b64url_encode(data: bytes) -> bytes:
    """Encode to unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE)


def b64url_decode_uint(value: object, *, length: int | None = None) -> int:
    """Decode a JWK integer member (RFC 7518 section 2, Base64urlUInt).

    ``length`` demands an exact octet length (EC coordinates); otherwise the
    minimal encoding is required (no leading zero octets).
    """
    if type(value) is not str:
        raise B64Error("integer member is not a string")
    try:
        raw = b64url_decode(value.encode("ascii"))
    except UnicodeEncodeError:
        raise B64Error("segment is not base64url") from None
    if not raw:
        raise B64Error("integer member is empty")
    if length is not None:
        if len(raw) != length:
            raise B64Error("integer member has the wrong length")
    elif raw[0] == 0 and len(raw) > 1:
        raise B64Error("integer member has leading zero octets")
    return int.from_bytes(raw, "big")


def uint_to_b64url(value: int, length: int | None = None) -> str:
    """Encode a non-negative integer as Base64urlUInt (minimal, or fixed ``length``)."""
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big")).decode("ascii")
