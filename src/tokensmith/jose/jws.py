"""JWS Compact Serialization (RFC 7515 section 7.1): sign and verify.

Verification is strict: the caller's algorithm allow-list is mandatory, the
token's alg must be in it and fit the key, signatures are checked at their
exact length, and only the three-segment compact form is accepted (no JWE,
no JSON serialization, no unencoded payloads).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from tokensmith.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    KeyUnusable,
    MalformedToken,
    TokenTooLarge,
    UnsupportedHeader,
)

from ._algorithms import ALGORITHMS
from ._b64 import B64Error, b64url_decode, b64url_encode
from ._header import Header, parse_header
from ._json import dumps_compact
from .jwk import JWK
from .jwkset import JWKSet

__all__ = [
    "DEFAULT_MAX_TOKEN_BYTES",
    "VerifiedJWS",
    "allowed_algorithms",
    "check_keys",
    "check_max_size",
    "sign_compact",
    "split_compact",
    "verify_compact",
]

DEFAULT_MAX_TOKEN_BYTES = 8 * 1024


def allowed_algorithms(algorithms: Collection[str]) -> frozenset[str]:
    """Validate a caller's algorithm allow-list: required, non-empty, known names only."""
    if isinstance(algorithms, str | bytes) or not isinstance(algorithms, Collection):
        raise TypeError("algorithms must be a collection of algorithm names, e.g. ['RS256']")
    if not algorithms:
        raise ValueError("algorithms must not be empty")
    for alg in algorithms:
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r} (and 'none' is never allowed)")
    return frozenset(algorithms)


def check_max_size(max_size: int) -> int:
    """Validate a caller's size cap (misuse is a ValueError, not a token error)."""
    if type(max_size) is not int or max_size <= 0:
        raise ValueError("max_size must be a positive integer")
    return max_size


def split_compact(token: str | bytes, max_size: int) -> tuple[bytes, bytes, bytes, bytes]:
    """Check size and shape; return (signing_input, header, payload, signature) segments."""
    if isinstance(token, str):
        if len(token) > max_size:
            raise TokenTooLarge()
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("The token contains non-ASCII characters.") from None
    elif isinstance(token, bytes):
        if len(token) > max_size:
            raise TokenTooLarge()
        raw = token
    else:
        raise TypeError("token must be str or bytes")
    parts = raw.split(b".")
    if len(parts) != 3:
        if len(parts) == 5:
            raise MalformedToken("Encrypted (JWE) tokens are not accepted.")
        if raw[:1] == b"{":
            raise MalformedToken("JWS JSON serialization is not accepted.")
        raise MalformedToken("The token does not have three segments.")
    header, payload, signature = parts
    return raw[: len(header) + len(payload) + 1], header, payload, signature


# A tuple, not JWK | JWKSet: isinstance with a union builds nothing per call.
_KEY_TYPES = (JWK, JWKSet)


def check_keys(keys: object) -> None:
    """Misuse check: verification needs a JWK or a JWKSet."""
    if type(keys) is not JWKSet and not isinstance(keys, _KEY_TYPES):
        raise TypeError("keys must be a JWK or a JWKSet")


def check_signature(
    signing_input: bytes,
    header: Header,
    signature_segment: bytes,
    keys: JWK | JWKSet,
    algorithms: frozenset[str],
    allow_key_headers: bool = False,
) -> JWK:
    """Every header rule that depends on the caller, then the signature; return the key."""
    alg = header.alg
    if alg not in algorithms:
        raise AlgorithmNotAllowed()
    if header.has_key_members and not allow_key_headers:
        raise UnsupportedHeader("The token carries a key or key URL (jku, x5u, jwk, x5c).")
    # A single key chosen by the caller is used as given; a set is looked up by kid.
    key = keys if type(keys) is JWK else keys.resolve(header.kid, alg)  # type: ignore[union-attr]
    verifier = key._verifiers.get(alg)
    if verifier is None:
        raise KeyUnusable()
    try:
        signature = b64url_decode(signature_segment)
    except B64Error:
        raise MalformedToken("The signature is not base64url.") from None
    if not verifier(signing_input, signature):
        raise BadSignature()
    return key


class VerifiedJWS:
    """A verified compact JWS: its header, raw payload and the key that verified it."""

    __slots__ = ("header", "key", "payload")

    def __init__(self, header: dict[str, Any], payload: bytes, key: JWK) -> None:
        self.header = header
        self.payload = payload
        self.key = key


def verify_compact(
    token: str | bytes,
    keys: JWK | JWKSet,
    *,
    algorithms: Collection[str],
    max_size: int = DEFAULT_MAX_TOKEN_BYTES,
    allow_key_headers: bool = False,
) -> VerifiedJWS:
    """Verify a compact JWS with an arbitrary payload; raise a ``TokenError`` on any failure."""
    allowed = allowed_algorithms(algorithms)
    check_max_size(max_size)
    check_keys(keys)
    signing_input, header_segment, payload_segment, signature_segment = split_compact(
        token, max_size
    )
    header = parse_header(header_segment)
    key = check_signature(
        signing_input, header, signature_segment, keys, allowed, allow_key_headers
    )
    try:
        payload = b64url_decode(payload_segment)
    except B64Error:
        raise MalformedToken("The payload is not base64url.") from None
    return VerifiedJWS(dict(header.members), payload, key)


_header_segments: dict[tuple[str, str | None, str | None], bytes] = {}


def encode_header(
    alg: str, kid: str | None, typ: str | None, extra: Mapping[str, Any] | None
) -> bytes:
    """The base64url header segment; the common forms are encoded once and reused."""
    if extra:
        members: dict[str, Any] = {"alg": alg}
        if kid is not None:
            members["kid"] = kid
        if typ is not None:
            members["typ"] = typ
        for name, value in extra.items():
            if name in members or name in ("crit", "b64"):
                raise ValueError(f"header member {name!r} cannot be set through extra headers")
            members[name] = value
        return b64url_encode(dumps_compact(members))
    cache_key = (alg, kid, typ)
    segment = _header_segments.get(cache_key)
    if segment is None:
        members = {"alg": alg}
        if kid is not None:
            members["kid"] = kid
        if typ is not None:
            members["typ"] = typ
        segment = b64url_encode(dumps_compact(members))
        if len(_header_segments) >= 256:
            _header_segments.clear()
        _header_segments[cache_key] = segment
    return segment


def sign_compact(
    payload: bytes,
    key: JWK,
    *,
    alg: str | None = None,
    kid: str | None = None,
    include_kid: bool = True,
    typ: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``payload`` and return the compact JWS.

    ``alg`` defaults to the key's ``alg``; ``kid`` to the key's kid.
    """
    if not isinstance(key, JWK):
        raise TypeError("key must be a JWK")
    if not isinstance(payload, bytes):
        raise TypeError("payload must be bytes")
    alg = alg if alg is not None else key.alg
    if alg is None:
        raise ValueError("no algorithm given and the key names none")
    signer = key._signers.get(alg)
    if signer is None:
        raise ValueError(f"this key cannot sign {alg}")
    header_kid = (kid if kid is not None else key.kid) if include_kid else None
    signing_input = encode_header(alg, header_kid, typ, headers) + b"." + b64url_encode(payload)
    return (signing_input + b"." + b64url_encode(signer(signing_input))).decode("ascii")
