"""Shared fixtures: keys are generated once per session (RSA generation is slow)."""

from __future__ import annotations

import pytest

from tokensmith.clock import FixedClock
from tokensmith.jose import JWK

#: Every algorithm the core supports, with the family each belongs to.
ALGORITHMS = [
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
]
ASYMMETRIC = [alg for alg in ALGORITHMS if not alg.startswith("HS")]

#: A fixed instant used by tests that walk time (2026-01-01T00:00:00Z).
NOW = 1_767_225_600


@pytest.fixture(scope="session")
def private_keys() -> dict[str, JWK]:
    """One private key (or HMAC secret) per algorithm, bound to it via the JWK alg member."""
    rsa = JWK.generate("RS256")  # one RSA modulus serves all RS/PS algorithms
    rsa_members = rsa.to_dict(private=True)
    keys: dict[str, JWK] = {}
    for alg in ALGORITHMS:
        if alg[:2] in ("RS", "PS"):
            members = dict(rsa_members, alg=alg, kid=f"rsa-{alg}")
            keys[alg] = JWK.from_dict(members)
        else:
            keys[alg] = JWK.generate(alg)
    return keys


@pytest.fixture(scope="session")
def verify_keys(private_keys: dict[str, JWK]) -> dict[str, JWK]:
    """The verification side: the public half, or the secret itself for HMAC."""
    return {alg: key if alg.startswith("HS") else key.public() for alg, key in private_keys.items()}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)
