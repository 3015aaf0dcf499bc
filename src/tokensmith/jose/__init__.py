"""The JOSE core: strict, fast JWS, JWK and JWT on pyca/cryptography. No I/O.

from tokensmith.jose import JWK, JWTPolicy, encode_jwt, verify_jwt

key = JWK.generate("ES256")
token = encode_jwt({"sub": "alice"}, key, expires_in=900)
claims = verify_jwt(token, key.public(), JWTPolicy(algorithms=["ES256"]))
"""

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
    KeyUnusable,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    TokenError,
    TokensmithError,
    TokenTooLarge,
    UnsupportedHeader,
)

from ._algorithms import ALGORITHMS as _ALGORITHMS
from .jwk import JWK
from .jwkset import JWKSet
from .jws import DEFAULT_MAX_TOKEN_BYTES, VerifiedJWS, sign_compact, verify_compact
from .jwt import UnverifiedJWT, decode_unverified, encode_jwt, new_jti, verify_jwt
from .policy import MAX_LEEWAY, JWTPolicy

#: Every algorithm name the core signs and verifies.
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(_ALGORITHMS)

__all__ = [
    # types
    "JWK",
    "JWKSet",
    "JWTPolicy",
    "UnverifiedJWT",
    "VerifiedJWS",
    # functions
    "decode_unverified",
    "encode_jwt",
    "new_jti",
    "sign_compact",
    "verify_compact",
    "verify_jwt",
    # constants
    "DEFAULT_MAX_TOKEN_BYTES",
    "MAX_LEEWAY",
    "SUPPORTED_ALGORITHMS",
    # errors
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
    "KeyUnusable",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "TokenError",
    "TokenTooLarge",
    "TokensmithError",
    "UnsupportedHeader",
]
