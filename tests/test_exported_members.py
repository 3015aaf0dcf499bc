"""The public API of tokensmith.jose is a visible decision: adding a name fails this test."""

from __future__ import annotations

import tokensmith.jose as jose

EXPECTED = {
    "JWK",
    "JWKSet",
    "JWTPolicy",
    "UnverifiedJWT",
    "VerifiedJWS",
    "decode_unverified",
    "encode_jwt",
    "new_jti",
    "sign_compact",
    "verify_compact",
    "verify_jwt",
    "DEFAULT_MAX_TOKEN_BYTES",
    "MAX_LEEWAY",
    "SUPPORTED_ALGORITHMS",
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
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(jose.__all__) == EXPECTED
    assert len(jose.__all__) == len(EXPECTED)


def test_every_exported_name_exists() -> None:
    for name in jose.__all__:
        assert hasattr(jose, name), name


def test_supported_algorithms() -> None:
    assert {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
    } == jose.SUPPORTED_ALGORITHMS
    assert "none" not in {alg.lower() for alg in jose.SUPPORTED_ALGORITHMS}
