"""The public API of tokensmith.verify is a visible decision: adding a name fails this test."""

from __future__ import annotations

import tokensmith.errors as errors
import tokensmith.verify as verify

EXPECTED = {
    "AccessClaims",
    "AsyncVerifier",
    "Verifier",
    "VerifierConfig",
    "AsyncRemoteJWKS",
    "JWKSCacheMachine",
    "JWKSCachePolicy",
    "JWKSCacheState",
    "ProviderMetadata",
    "RemoteJWKS",
    "Denylist",
    "RevocationState",
    "ASYMMETRIC_ALGORITHMS",
    "KeySetUnavailable",
    "RevokedToken",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(verify.__all__) == EXPECTED
    assert len(verify.__all__) == len(EXPECTED)


def test_every_exported_name_exists() -> None:
    for name in verify.__all__:
        assert hasattr(verify, name), name


def test_the_errors_are_the_shared_ones() -> None:
    assert verify.RevokedToken is errors.RevokedToken
    assert verify.KeySetUnavailable is errors.KeySetUnavailable
