"""Where a verifier's keys come from, and which algorithms each source allows.

Static keys are a JWK Set (object, JSON or file) or one PEM key, kept to their public
halves; their allow-list is configured or read off the keys. Remote keys take the
configured list, or the one the issuer's discovery document announces.
"""

from __future__ import annotations

import os
from pathlib import Path

from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import JWK, JWKSet

from .config import ASYMMETRIC_ALGORITHMS, VerifierConfig
from .discovery import ProviderMetadata

__all__ = ["KeySource", "keys_algorithms", "load_jwks", "load_pem", "remote_algorithms"]

KeySource = JWKSet | str | bytes | os.PathLike[str]


def load_jwks(source: KeySource) -> JWKSet:
    """A ``JWKSet``, JWK Set JSON text or bytes, or the path of a file holding it."""
    if isinstance(source, JWKSet):
        keys = source
    elif isinstance(source, bytes):
        keys = JWKSet.from_json(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        keys = JWKSet.from_json(source)
    elif isinstance(source, str | os.PathLike):
        keys = JWKSet.from_json(Path(source).read_bytes())
    else:
        raise TypeError("keys must be a JWKSet, JWK Set JSON, or a path to a JWK Set file")
    if any(key.kty == "oct" for key in keys):
        raise ValueError("a key set for a verifier holds public keys; use from_secret for HS256")
    # A verifier never needs a private key: keep only the public halves.
    return JWKSet(key.public() for key in keys)


def load_pem(source: str | bytes | os.PathLike[str]) -> JWK:
    """A public key (or the public half of a private key) from PEM text or a PEM file."""
    if isinstance(source, bytes) or (isinstance(source, str) and "-----BEGIN" in source):
        data: str | bytes = source
    elif isinstance(source, str | os.PathLike):
        data = Path(source).read_bytes()
    else:
        raise TypeError("pem must be PEM text or bytes, or a path to a PEM file")
    return JWK.from_pem(data).public()


def keys_algorithms(config: VerifierConfig, keys: JWK | JWKSet) -> frozenset[str]:
    """The allow-list with static keys: configured, or what the keys themselves can verify."""
    if config.algorithms is not None:
        return frozenset(config.algorithms)
    members = (keys,) if isinstance(keys, JWK) else keys
    algorithms = frozenset().union(*(key.algorithms for key in members)) & ASYMMETRIC_ALGORITHMS
    if not algorithms:
        raise ValueError("the keys can verify no signature algorithm")
    return algorithms


def remote_algorithms(config: VerifierConfig, metadata: ProviderMetadata | None) -> frozenset[str]:
    """The allow-list with remote keys: configured, or announced, or every asymmetric one.

    Announced algorithms are intersected with the asymmetric ones the core supports:
    an issuer announcing HS256 or ``none`` cannot make us accept them.
    """
    if config.algorithms is not None:
        return frozenset(config.algorithms)
    if metadata is None or metadata.signing_algorithms is None:
        # Safe without a list: every key is bound to the algorithms of its type.
        return ASYMMETRIC_ALGORITHMS
    algorithms = frozenset(metadata.signing_algorithms) & ASYMMETRIC_ALGORITHMS
    if not algorithms:
        raise KeySetUnavailable("The issuer announces no asymmetric signature algorithm.")
    return algorithms
