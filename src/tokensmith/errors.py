"""The one exception hierarchy of tokensmith.

Every failure caused by hostile or broken input raises a subclass of
``TokensmithError``. Each class carries a stable, machine-readable ``code``
(snake_case, never renamed once released) and a safe ``description``. Messages
name the problem; they never contain a token, a secret or key material.

Misuse by the programmer (a missing algorithm list, a wrong argument type, a
negative leeway) is not an attack and raises ``TypeError``/``ValueError`` at
the call instead, so the 401 path stays free of programmer bugs.

    TokensmithError                      code
    ├── TokenError
    │   ├── MalformedToken               malformed_token
    │   │   └── TokenTooLarge            token_too_large
    │   ├── UnsupportedHeader            unsupported_header
    │   ├── AlgorithmNotAllowed          algorithm_not_allowed
    │   ├── InvalidType                  invalid_type
    │   ├── KeyNotFound                  key_not_found
    │   ├── AmbiguousKey                 ambiguous_key
    │   ├── KeyUnusable                  key_unusable
    │   ├── BadSignature                 bad_signature
    │   ├── RevokedToken                 revoked_token
    │   └── ClaimError                   (abstract: carries ``claim``)
    │       ├── MissingClaim             missing_claim
    │       ├── InvalidClaim             invalid_claim
    │       ├── ExpiredToken             expired_token
    │       └── NotYetValid              not_yet_valid
    ├── JWKError                         (abstract)
    │   ├── InvalidKey                   invalid_key
    │   └── InvalidKeySet                invalid_key_set
    └── KeySetUnavailable                key_set_unavailable

``KeySetUnavailable`` is not a ``TokenError``: the verifier has no usable key set
(the JWKS could not be fetched and no cached copy is left), so nothing is known about
the token. An HTTP adapter answers it 503, not 401, so clients keep their tokens.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowed",
    "AmbiguousKey",
    "BadSignature",
    "ClaimError",
    "ExpiredToken",
    "InvalidClaim",
    "InvalidKey",
    "InvalidKeySet",
    "InvalidType",
    "JWKError",
    "KeyNotFound",
    "KeySetUnavailable",
    "KeyUnusable",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "RevokedToken",
    "TokenError",
    "TokenTooLarge",
    "TokensmithError",
    "UnsupportedHeader",
]


class TokensmithError(Exception):
    """Root of every error tokensmith raises for bad input."""

    code: str = "tokensmith_error"
    description: str = "The request could not be processed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.description
        super().__init__(self.message)

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe rendering: the stable code and the safe message."""
        return {"code": self.code, "message": self.message}


class TokenError(TokensmithError):
    """The token was refused."""

    code = "invalid_token"
    description = "The token is invalid."


class MalformedToken(TokenError):
    code = "malformed_token"
    description = "The token is not a well-formed compact JWS."


class TokenTooLarge(MalformedToken):
    code = "token_too_large"
    description = "The token is larger than the configured maximum."


class UnsupportedHeader(TokenError):
    code = "unsupported_header"
    description = "The token header uses a feature this verifier refuses."


class AlgorithmNotAllowed(TokenError):
    code = "algorithm_not_allowed"
    description = "The token's algorithm is not in the allowed list."


class InvalidType(TokenError):
    code = "invalid_type"
    description = "The token's typ header is not the expected type."


class KeyNotFound(TokenError):
    code = "key_not_found"
    description = "No key matches the token's kid."


class AmbiguousKey(TokenError):
    code = "ambiguous_key"
    description = "The token names no kid and several keys could verify it."


class KeyUnusable(TokenError):
    code = "key_unusable"
    description = "The selected key may not be used with the token's algorithm."


class BadSignature(TokenError):
    code = "bad_signature"
    description = "The signature does not verify."


class RevokedToken(TokenError):
    code = "revoked_token"
    description = "The token has been revoked."


class ClaimError(TokenError):
    """A claim is missing, of the wrong type, or has a value that fails a check."""

    code = "invalid_claim"

    def __init__(self, claim: str, message: str | None = None) -> None:
        self.claim = claim
        super().__init__(message or f"{self.description} ({claim})")

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "claim": self.claim}


class MissingClaim(ClaimError):
    code = "missing_claim"
    description = "A required claim is missing"


class InvalidClaim(ClaimError):
    code = "invalid_claim"
    description = "A claim is invalid"


class ExpiredToken(ClaimError):
    code = "expired_token"
    description = "The token has expired"

    def __init__(self, message: str | None = None) -> None:
        super().__init__("exp", message)


class NotYetValid(ClaimError):
    code = "not_yet_valid"
    description = "The token is not valid yet"

    def __init__(self, message: str | None = None) -> None:
        super().__init__("nbf", message)


class JWKError(TokensmithError):
    """A key or key set from outside could not be used."""

    code = "invalid_key"
    description = "The key is invalid."


class InvalidKey(JWKError):
    code = "invalid_key"
    description = "The key is invalid or unsupported."


class InvalidKeySet(JWKError):
    code = "invalid_key_set"
    description = "The key set is invalid."


class KeySetUnavailable(TokensmithError):
    code = "key_set_unavailable"
    description = "No usable key set: the JWKS could not be fetched and no cached copy is left."
