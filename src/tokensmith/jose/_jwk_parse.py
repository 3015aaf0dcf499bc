"""Turning outside JWK members and PEM text into ``cryptography`` key objects.

Everything here treats its input as hostile: wrong types, wrong lengths,
points off the curve, inconsistent private parts and weak keys all raise
``InvalidKey`` with a message that names the problem and never the key.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tokensmith.errors import InvalidKey

from ._algorithms import CURVES
from ._b64 import B64Error, b64url_decode, b64url_decode_uint

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "MIN_SECRET_BYTES",
    "check_secret",
    "check_supported_key",
    "parse_jwk_members",
    "parse_pem",
]

MIN_RSA_BITS = 2048
# Bounds the verification cost an outside key can impose.
MAX_RSA_BITS = 16384
# The smallest HMAC key for the smallest hash (HS256).
MIN_SECRET_BYTES = 32

_PUBLIC_KEY_MARKERS = (
    b"-----BEGIN",
    b"ssh-",
    b"ecdsa-sha2-",
    b"sk-ssh-",
    b"sk-ecdsa-",
)
_RSA_PRIVATE_MEMBERS = ("p", "q", "dp", "dq", "qi")


def _member(members: Mapping[str, Any], name: str) -> Any:
    if name not in members:
        raise InvalidKey(f"JWK is missing the '{name}' member")
    return members[name]


def _uint(members: Mapping[str, Any], name: str, length: int | None = None) -> int:
    try:
        return b64url_decode_uint(_member(members, name), length=length)
    except B64Error as exc:
        raise InvalidKey(f"JWK member '{name}': {exc}") from None


def _octets(members: Mapping[str, Any], name: str) -> bytes:
    value = _member(members, name)
    if type(value) is not str:
        raise InvalidKey(f"JWK member '{name}' is not a string")
    try:
        return b64url_decode(value.encode("ascii"))
    except (B64Error, UnicodeEncodeError):
        raise InvalidKey(f"JWK member '{name}' is not base64url") from None


def check_supported_key(key: object) -> None:
    """Refuse key types and sizes the core does not use, whatever their source."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
            raise InvalidKey(
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {key.key_size}"
            )
    elif isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not any(type(key.curve) is type(c.curve) for c in CURVES.values()):
            raise InvalidKey(f"unsupported EC curve {key.curve.name}")
    elif not isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        raise InvalidKey(f"unsupported key type {type(key).__name__}")


def _looks_like_public_key(secret: bytes) -> bool:
    stripped = secret.strip()
    if stripped.startswith(_PUBLIC_KEY_MARKERS):
        return True
    # A JWK's JSON text. Matching on '{' alone would refuse one random secret in 256.
    if stripped[:1] == b"{" and b'"kty"' in stripped:
        return True
    candidates = [secret]
    if stripped[:1] == b"M":  # base64 of a DER SEQUENCE (0x30), PEM armour removed
        try:
            candidates.append(binascii.a2b_base64(stripped))
        except binascii.Error:
            pass
    for candidate in candidates:
        if candidate[:1] != b"\x30":
            continue
        for loader in (serialization.load_der_public_key, x509.load_der_x509_certificate):
            try:
                loader(candidate)
            except (ValueError, TypeError, UnsupportedAlgorithm):
                continue
            return True
    return False


def check_secret(secret: bytes) -> None:
    """Refuse HMAC secrets that are too short or are really a public key.

    A verifier that accepts a public key's text as an HMAC secret lets anyone
    forge tokens with it (PyJWT DSA-3293, CVE-2017-11424, CVE-2022-29217,
    python-jose CVE-2024-33663); every public encoding is refused here.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise InvalidKey(f"HMAC keys must be at least {MIN_SECRET_BYTES} bytes")
    if _looks_like_public_key(secret):
        raise InvalidKey("an HMAC secret must not be a public key or certificate")


def _parse_rsa(members: Mapping[str, Any]) -> rsa.RSAPublicKey | rsa.RSAPrivateKey:
    if "oth" in members:
        raise InvalidKey("multi-prime RSA keys are not supported")
    n, e = _uint(members, "n"), _uint(members, "e")
    public = rsa.RSAPublicNumbers(e, n)
    try:
        if "d" not in members:
            key: rsa.RSAPublicKey | rsa.RSAPrivateKey = public.public_key()
        else:
            d = _uint(members, "d")
            present = [name for name in _RSA_PRIVATE_MEMBERS if name in members]
            if present and len(present) != len(_RSA_PRIVATE_MEMBERS):
                raise InvalidKey("RSA private JWK has some but not all CRT members")
            if present:
                p, q, dp, dq, qi = (_uint(members, name) for name in _RSA_PRIVATE_MEMBERS)
            else:
                p, q = rsa.rsa_recover_prime_factors(n, e, d)
                dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
            key = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key()
    except ValueError:
        raise InvalidKey("RSA JWK members do not form a valid key") from None
    check_supported_key(key)
    return key


def _parse_ec(members: Mapping[str, Any]) -> ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey:
    crv = _member(members, "crv")
    curve = CURVES.get(crv) if type(crv) is str else None
    if curve is None:
        raise InvalidKey("unsupported EC curve")
    x = _uint(members, "x", curve.size)
    y = _uint(members, "y", curve.size)
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, curve.curve).public_key()
    except ValueError:
        raise InvalidKey("EC point is not on the curve") from None
    if "d" not in members:
        return public
    d = _uint(members, "d", curve.size)
    try:
        private = ec.derive_private_key(d, curve.curve)
    except ValueError:
        raise InvalidKey("EC private scalar is out of range") from None
    if private.public_key().public_numbers() != public.public_numbers():
        raise InvalidKey("EC private key does not match its public point")
    return private


def _parse_okp(members: Mapping[str, Any]) -> ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey:
    if _member(members, "crv") != "Ed25519":
        raise InvalidKey("unsupported OKP curve")
    x = _octets(members, "x")
    if len(x) != 32:
        raise InvalidKey("Ed25519 public key must be 32 bytes")
    try:
        public = ed25519.Ed25519PublicKey.from_public_bytes(x)
    except ValueError:
        raise InvalidKey("invalid Ed25519 public key") from None
    if "d" not in members:
        return public
    d = _octets(members, "d")
    if len(d) != 32:
        raise InvalidKey("Ed25519 private key must be 32 bytes")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(d)
    if private.public_key() != public:
        raise InvalidKey("Ed25519 private key does not match its public key")
    return private


def parse_jwk_members(members: Mapping[str, Any]) -> Any:
    """Return the secret (bytes) or the ``cryptography`` key a JWK describes."""
    kty = members.get("kty")
    if kty == "RSA":
        return _parse_rsa(members)
    if kty == "EC":
        return _parse_ec(members)
    if kty == "OKP":
        return _parse_okp(members)
    if kty == "oct":
        secret = _octets(members, "k")
        check_secret(secret)
        return secret
    raise InvalidKey("unsupported or missing kty")


def parse_pem(data: bytes, password: bytes | None = None) -> Any:
    """Load a PEM private key (PKCS#8, PKCS#1, SEC1), public key (SPKI, PKCS#1) or certificate."""
    if b"PRIVATE KEY-----" in data:
        try:
            key: Any = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise InvalidKey(
                "cannot load the PEM private key (wrong password or format?)"
            ) from None
    elif b"CERTIFICATE-----" in data:
        try:
            key = x509.load_pem_x509_certificate(data).public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise InvalidKey("cannot load the PEM certificate") from None
    else:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise InvalidKey("cannot load the PEM public key") from None
    check_supported_key(key)
    return key
