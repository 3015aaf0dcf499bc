"""Turning ``cryptography`` key objects into JWK members: the mirror of ``_jwk_parse``.

Members come out in RFC 7638 order, so the public ones are also the input of the
thumbprint; private members are produced only when a caller asks ``JWK`` for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tokensmith.errors import InvalidKey

from ._algorithms import CURVES
from ._b64 import b64url_encode, uint_to_b64url

__all__ = ["is_private_key", "key_type", "private_members", "public_members", "rfc7638_thumbprint"]


def key_type(key: Any) -> tuple[str, str | None]:
    if isinstance(key, bytes):
        return "oct", None
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA", None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        for curve in CURVES.values():
            if type(key.curve) is type(curve.curve):
                return "EC", curve.name
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "OKP", "Ed25519"
    raise InvalidKey(f"unsupported key type {type(key).__name__}")


def public_members(key: Any, kty: str, crv: str | None) -> dict[str, str]:
    """The required public members in RFC 7638 order (lexicographic)."""
    if kty == "RSA":
        numbers = key.public_key().public_numbers() if is_private_key(key) else key.public_numbers()
        return {"e": uint_to_b64url(numbers.e), "kty": "RSA", "n": uint_to_b64url(numbers.n)}
    if kty == "EC":
        assert crv is not None
        size = CURVES[crv].size
        public = key.public_key() if is_private_key(key) else key
        numbers = public.public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": uint_to_b64url(numbers.x, size),
            "y": uint_to_b64url(numbers.y, size),
        }
    if kty == "OKP":
        public = key.public_key() if is_private_key(key) else key
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw).decode("ascii")}
    return {"k": b64url_encode(key).decode("ascii"), "kty": "oct"}


def is_private_key(key: Any) -> bool:
    return isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | bytes
    )


def private_members(key: Any, kty: str, crv: str | None) -> dict[str, str]:
    if kty == "RSA":
        numbers = key.private_numbers()
        return {
            "d": uint_to_b64url(numbers.d),
            "p": uint_to_b64url(numbers.p),
            "q": uint_to_b64url(numbers.q),
            "dp": uint_to_b64url(numbers.dmp1),
            "dq": uint_to_b64url(numbers.dmq1),
            "qi": uint_to_b64url(numbers.iqmp),
        }
    if kty == "EC":
        assert crv is not None
        return {"d": uint_to_b64url(key.private_numbers().private_value, CURVES[crv].size)}
    if kty == "OKP":
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return {"d": b64url_encode(raw).decode("ascii")}
    return {}


def rfc7638_thumbprint(public_members: Mapping[str, str]) -> str:
    canonical = json.dumps(public_members, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest()).decode("ascii")
