"""JSON Web Tokens (RFC 7519): encode, verify in one call, or read without checking.

``verify_jwt`` does the whole check (size, shape, header rules, signature,
claims) and returns the claims or raises. ``decode_unverified`` is separate
and plainly named: what it returns must not be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokensmith.clock import Clock, RandomSource, SystemClock, system_random
from tokensmith.errors import InvalidType, MalformedToken

from ._b64 import B64Error, b64url_decode, b64url_encode
from ._header import parse_header
from ._json import JSONError, dumps_compact, loads_object
from .jwk import JWK
from .jwkset import JWKSet
from .jws import (
    DEFAULT_MAX_TOKEN_BYTES,
    check_keys,
    check_max_size,
    check_signature,
    sign_compact,
    split_compact,
)
from .policy import JWTPolicy

__all__ = ["JTI_BYTES", "UnverifiedJWT", "decode_unverified", "encode_jwt", "new_jti", "verify_jwt"]

# 144 bits: comfortably above RFC 9068's need for a unique identifier.
JTI_BYTES = 18


def new_jti(random: RandomSource = system_random) -> str:
    """A random token identifier (``JTI_BYTES`` of randomness, base64url)."""
    return b64url_encode(random(JTI_BYTES)).decode("ascii")


def _reject_overridden(claims: Mapping[str, Any], name: str) -> None:
    if name in claims:
        raise ValueError(f"the claims already hold {name!r}; do not also ask for it to be set")


def encode_jwt(
    claims: Mapping[str, Any],
    key: JWK,
    *,
    alg: str | None = None,
    expires_in: int | None = None,
    not_before_in: int | None = None,
    issued_at: bool | None = None,
    jti: bool = False,
    typ: str | None = "JWT",
    kid: str | None = None,
    include_kid: bool = True,
    headers: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    random: RandomSource = system_random,
) -> str:
    """Sign ``claims`` as a compact JWT.

    :param expires_in: set ``exp`` this many seconds from now (and ``iat``).
    :param not_before_in: set ``nbf`` this many seconds from now (may be 0).
    :param issued_at: set ``iat`` (default: when ``expires_in`` is given).
    :param jti: set a random ``jti``.
    :param typ: the ``typ`` header; ``"at+jwt"`` for RFC 9068 access tokens.
    """
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    helpers = expires_in is not None or not_before_in is not None or issued_at or jti
    if helpers:
        payload = dict(claims)
        now = int((clock or SystemClock()).now())
        if issued_at or (issued_at is None and expires_in is not None):
            _reject_overridden(claims, "iat")
            payload["iat"] = now
        if expires_in is not None:
            if type(expires_in) is not int or expires_in <= 0:
                raise ValueError("expires_in must be a positive number of seconds")
            _reject_overridden(claims, "exp")
            payload["exp"] = now + expires_in
        if not_before_in is not None:
            if type(not_before_in) is not int or not_before_in < 0:
                raise ValueError("not_before_in must be a non-negative number of seconds")
            _reject_overridden(claims, "nbf")
            payload["nbf"] = now + not_before_in
        if jti:
            _reject_overridden(claims, "jti")
            payload["jti"] = new_jti(random)
    else:
        payload = claims if type(claims) is dict else dict(claims)
    return sign_compact(
        dumps_compact(payload),
        key,
        alg=alg,
        kid=kid,
        include_kid=include_kid,
        typ=typ,
        headers=headers,
    )


def verify_jwt(token: str | bytes, keys: JWK | JWKSet, policy: JWTPolicy) -> dict[str, Any]:
    """Verify everything about ``token`` and return its claims, or raise a ``TokenError``.

    In order: size, shape, header rules (alg allow-list, typ, crit, key-carrying
    members), the key by kid, the signature, then the claims under ``policy``.
    """
    if type(policy) is not JWTPolicy:
        raise TypeError("policy must be a JWTPolicy")
    check_keys(keys)
    signing_input, header_segment, payload_segment, signature_segment = split_compact(
        token, policy.max_token_size
    )
    header = parse_header(header_segment)
    if policy.typ is not None and header.typ != policy.typ:
        raise InvalidType()
    check_signature(
        signing_input,
        header,
        signature_segment,
        keys,
        policy.algorithms,
        policy.allow_key_headers,
    )
    try:
        claims = loads_object(b64url_decode(payload_segment))
    except B64Error:
        raise MalformedToken("The payload is not base64url.") from None
    except JSONError as exc:
        raise MalformedToken(f"The payload is not a JSON object: {exc}.") from None
    policy.check_claims(claims)
    return claims


class UnverifiedJWT:
    """A token's header and claims, read WITHOUT checking signature or claims."""

    __slots__ = ("claims", "header")

    def __init__(self, header: dict[str, Any], claims: dict[str, Any]) -> None:
        self.header = header
        self.claims = claims


def decode_unverified(
    token: str | bytes, *, max_size: int = DEFAULT_MAX_TOKEN_BYTES
) -> UnverifiedJWT:
    """Read a JWT's header and claims with NO verification. Never trust the result."""
    _, header_segment, payload_segment, _ = split_compact(token, check_max_size(max_size))
    try:
        header = loads_object(b64url_decode(header_segment))
        claims = loads_object(b64url_decode(payload_segment))
    except (B64Error, JSONError) as exc:
        raise MalformedToken(f"The token cannot be decoded: {exc}.") from None
    return UnverifiedJWT(header, claims)
