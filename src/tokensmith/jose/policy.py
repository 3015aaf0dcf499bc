"""What a JWT must satisfy to be accepted (RFC 7519 section 4, RFC 8725, RFC 9068).

A ``JWTPolicy`` is built once, validated at construction (misuse raises
``TypeError``/``ValueError`` there, not at verification), and applied to
every token. The time comes from an injectable clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from typing import Any

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import (
    ExpiredToken,
    InvalidClaim,
    MissingClaim,
    NotYetValid,
)

from ._header import normalize_typ
from .jws import DEFAULT_MAX_TOKEN_BYTES, allowed_algorithms, check_max_size

__all__ = ["MAX_LEEWAY", "JWTPolicy", "check_claim_types"]

# Clock skew larger than this is a misconfiguration, not skew.
MAX_LEEWAY = 300
_STRING_CLAIMS = ("iss", "sub", "jti")
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _string_set(name: str, value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        values: Collection[Any] = (value,)
    elif isinstance(value, bytes) or not isinstance(value, Collection):
        raise TypeError(f"{name} must be a string or a collection of strings")
    else:
        values = value
    if not values or any(type(item) is not str or not item for item in values):
        raise ValueError(f"{name} must hold non-empty strings")
    return frozenset(values)


def _numeric_date(claims: dict[str, Any], name: str) -> float | int | None:
    value = claims.get(name)
    if value is None:
        if name in claims:
            raise InvalidClaim(name, f"The {name} claim must be a number, not null.")
        return None
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is float and math.isfinite(value):
        return value  # type: ignore[no-any-return]
    raise InvalidClaim(name, f"The {name} claim must be a finite number.")


def _check_strings(claims: dict[str, Any]) -> None:
    get = claims.get
    for name in _STRING_CLAIMS:
        if type(get(name, "")) is not str:
            raise InvalidClaim(name, f"The {name} claim must be a string.")


def _audience_list_ok(aud: Any) -> bool:
    return type(aud) is list and bool(aud) and all(type(item) is str for item in aud)


def check_claim_types(claims: dict[str, Any]) -> None:
    """The type rules ``JWTPolicy.check_claims`` applies to the registered claims
    (RFC 7519 section 4.1), without comparing times, issuer or audience: for a payload
    that did not come through ``verify_jwt`` (a handler test's ``AccessClaims``)."""
    for name in _TIME_CLAIMS:
        _numeric_date(claims, name)
    _check_strings(claims)
    if "aud" in claims:
        aud = claims["aud"]
        if type(aud) is not str and not _audience_list_ok(aud):
            raise InvalidClaim("aud", "The aud claim must be a string or a list of strings.")


class JWTPolicy:
    """The checks ``verify_jwt`` applies; immutable once built."""

    __slots__ = (
        "_audiences",
        "_issuers",
        "_now",
        "algorithms",
        "allow_key_headers",
        "clock",
        "leeway",
        "max_token_size",
        "require_exp",
        "required_claims",
        "typ",
    )

    def __init__(
        self,
        *,
        algorithms: Collection[str],
        issuer: str | Collection[str] | None = None,
        audience: str | Collection[str] | None = None,
        typ: str | None = None,
        required_claims: Collection[str] = (),
        require_exp: bool = True,
        leeway: int | float = 0,
        max_token_size: int = DEFAULT_MAX_TOKEN_BYTES,
        allow_key_headers: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """
        :param algorithms: the allow-list, required (``none`` is never accepted).
        :param issuer: the accepted ``iss`` value(s), compared by exact string equality.
        :param audience: accepted audience(s); the token's ``aud`` must contain one.
        :param typ: the expected ``typ`` header (e.g. ``"at+jwt"``), case-insensitive.
        :param required_claims: claims that must be present.
        :param require_exp: refuse tokens without ``exp`` (default, RFC 8725 advice).
        :param leeway: seconds of clock skew tolerated, 0 to ``MAX_LEEWAY``.
        :param max_token_size: the largest token accepted, checked before decoding.
        :param allow_key_headers: accept (and ignore) ``jku``/``x5u``/``jwk``/``x5c``.
        :param clock: source of the current time, ``SystemClock()`` by default.
        """
        self.algorithms = allowed_algorithms(algorithms)
        self._issuers = _string_set("issuer", issuer)
        self._audiences = _string_set("audience", audience)
        if typ is not None and (type(typ) is not str or not typ):
            raise TypeError("typ must be a non-empty string")
        self.typ = normalize_typ(typ) if typ is not None else None
        if isinstance(required_claims, str) or not isinstance(required_claims, Collection):
            raise TypeError("required_claims must be a collection of claim names")
        if any(type(name) is not str for name in required_claims):
            raise TypeError("required_claims must hold strings")
        self.required_claims = tuple(dict.fromkeys(required_claims))
        self.require_exp = bool(require_exp)
        if type(leeway) not in (int, float) or not math.isfinite(leeway):
            raise TypeError("leeway must be a number of seconds")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        self.leeway = leeway
        self.max_token_size = check_max_size(max_token_size)
        self.allow_key_headers = bool(allow_key_headers)
        self.clock: Clock = clock if clock is not None else SystemClock()
        # The system clock is read directly: one call fewer on every verification.
        self._now = time.time if type(self.clock) is SystemClock else self.clock.now

    @property
    def issuers(self) -> frozenset[str] | None:
        return self._issuers

    @property
    def audiences(self) -> frozenset[str] | None:
        return self._audiences

    def check_claims(self, claims: dict[str, Any]) -> None:
        """Apply every claim rule to a verified payload; raise a ``ClaimError`` subclass."""
        # On the hot path of every request: integer dates and present, well-typed
        # claims take the shortest route; anything unusual goes to _numeric_date.
        now = self._now()
        leeway = self.leeway
        get = claims.get
        exp = get("exp")
        if type(exp) is not int:
            exp = _numeric_date(claims, "exp")
        if exp is None:
            if self.require_exp:
                raise MissingClaim("exp")
        elif now >= exp + leeway:
            raise ExpiredToken()
        if "nbf" in claims:
            nbf = _numeric_date(claims, "nbf")
            if nbf is not None and now + leeway < nbf:
                raise NotYetValid()
        if "iat" in claims:
            iat = get("iat")
            if type(iat) is not int:
                iat = _numeric_date(claims, "iat")
            if iat is not None and iat > now + leeway:
                raise InvalidClaim("iat", "The token was issued in the future.")
        _check_strings(claims)
        issuers = self._issuers
        if issuers is not None:
            iss = get("iss")
            if iss is None:
                raise MissingClaim("iss")
            if iss not in issuers:
                raise InvalidClaim("iss", "The token was issued by an unexpected issuer.")
        self._check_audience(get("aud"), "aud" in claims)
        for name in self.required_claims:
            if name not in claims:
                raise MissingClaim(name)

    def _check_audience(self, aud: Any, present: bool) -> None:
        audiences = self._audiences
        if not present:
            if audiences is not None:
                raise MissingClaim("aud")
            return
        # RFC 7519 4.1.3: a recipient that does not identify itself with a value
        # in a present aud claim must reject the token.
        if type(aud) is str:
            if audiences is None or aud not in audiences:
                raise InvalidClaim("aud", "The token is not intended for this audience.")
            return
        if not _audience_list_ok(aud):
            raise InvalidClaim("aud", "The aud claim must be a string or a list of strings.")
        if audiences is None or audiences.isdisjoint(aud):
            raise InvalidClaim("aud", "The token is not intended for this audience.")
