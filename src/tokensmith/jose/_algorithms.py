"""The JWS algorithms (RFC 7518 section 3, RFC 8037, RFC 9864) and their primitives.

Each algorithm is bound to one key type (and curve), so a key can only ever
be used with the algorithms of its family: an RSA or EC public key can never
reach the HMAC code path. Signers and verifiers are closures built once per
key and algorithm, holding prebuilt ``cryptography`` padding and hash objects,
so nothing is parsed or allocated per call beyond what the primitive needs.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = [
    "ALGORITHMS",
    "CURVES",
    "Algorithm",
    "Curve",
    "Signer",
    "Verifier",
    "make_signer",
    "make_verifier",
]

Verifier = Callable[[bytes, bytes], bool]
Signer = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Curve:
    name: str
    size: int  # octets per coordinate, scalar and signature half
    order: int
    curve: ec.EllipticCurve


CURVES: dict[str, Curve] = {
    "P-256": Curve(
        "P-256",
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        ec.SECP256R1(),
    ),
    "P-384": Curve(
        "P-384",
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
        ec.SECP384R1(),
    ),
    "P-521": Curve(
        "P-521",
        66,
        int(
            "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
            "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
        ec.SECP521R1(),
    ),
}


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str
    kty: str  # the only key type this algorithm accepts
    family: str  # "HS", "RS", "PS", "ES", "EdDSA"
    hash_name: str | None  # hashlib name for HMAC
    hash: hashes.HashAlgorithm | None
    crv: str | None = None  # EC and OKP: the only curve accepted
    min_secret: int = 0  # HMAC: minimum key length in octets (the hash output size)


_HASHES: dict[int, hashes.HashAlgorithm] = {
    256: hashes.SHA256(),
    384: hashes.SHA384(),
    512: hashes.SHA512(),
}


def _hs(name: str, bits: int) -> Algorithm:
    return Algorithm(name, "oct", "HS", f"sha{bits}", _HASHES[bits], min_secret=bits // 8)


def _asym(name: str, kty: str, family: str, bits: int, crv: str | None = None) -> Algorithm:
    return Algorithm(name, kty, family, None, _HASHES[bits], crv=crv)


ALGORITHMS: dict[str, Algorithm] = {
    alg.name: alg
    for alg in (
        _hs("HS256", 256),
        _hs("HS384", 384),
        _hs("HS512", 512),
        _asym("RS256", "RSA", "RS", 256),
        _asym("RS384", "RSA", "RS", 384),
        _asym("RS512", "RSA", "RS", 512),
        _asym("PS256", "RSA", "PS", 256),
        _asym("PS384", "RSA", "PS", 384),
        _asym("PS512", "RSA", "PS", 512),
        _asym("ES256", "EC", "ES", 256, "P-256"),
        _asym("ES384", "EC", "ES", 384, "P-384"),
        _asym("ES512", "EC", "ES", 512, "P-521"),
        Algorithm("EdDSA", "OKP", "EdDSA", None, None, crv="Ed25519"),
        # RFC 9864's fully-specified name for the same signature.
        Algorithm("Ed25519", "OKP", "EdDSA", None, None, crv="Ed25519"),
    )
}


def _rsa_padding(alg: Algorithm) -> padding.AsymmetricPadding:
    assert alg.hash is not None
    if alg.family == "PS":
        # RFC 7518 section 3.5: MGF1 with the same hash, salt as long as the hash.
        return padding.PSS(mgf=padding.MGF1(alg.hash), salt_length=alg.hash.digest_size)
    return padding.PKCS1v15()


def make_verifier(alg: Algorithm, key: Any) -> Verifier:
    """Build ``verify(signing_input, signature) -> bool`` for a key already bound to ``alg``.

    ``key`` is the HMAC secret (bytes) or a ``cryptography`` public key.
    """
    if alg.family == "HS":
        return _hmac_verifier(key, alg)
    if alg.family in ("RS", "PS"):
        return _rsa_verifier(key, alg)
    if alg.family == "ES":
        return _ecdsa_verifier(key, alg)
    return _eddsa_verifier(key)


def _hmac_verifier(secret: bytes, alg: Algorithm) -> Verifier:
    digest = hmac.digest
    compare = hmac.compare_digest
    name = alg.hash_name

    def verify(signing_input: bytes, signature: bytes) -> bool:
        return compare(digest(secret, signing_input, name), signature)  # type: ignore[arg-type]

    return verify


def _rsa_verifier(public_key: rsa.RSAPublicKey, alg: Algorithm) -> Verifier:
    # RFC 8017 8.1.2/8.2.2: the signature is exactly the modulus length; OpenSSL
    # would accept a PSS signature one octet short.
    size = (public_key.key_size + 7) // 8
    pad = _rsa_padding(alg)
    hash_algorithm = alg.hash
    assert hash_algorithm is not None
    primitive = public_key.verify

    def verify(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            primitive(signature, signing_input, pad, hash_algorithm)
        except InvalidSignature:
            return False
        return True

    return verify


def _ecdsa_verifier(public_key: ec.EllipticCurvePublicKey, alg: Algorithm) -> Verifier:
    assert alg.crv is not None and alg.hash is not None
    curve = CURVES[alg.crv]
    size, order = curve.size, curve.order
    scheme = ec.ECDSA(alg.hash)
    primitive = public_key.verify

    def verify(signing_input: bytes, signature: bytes) -> bool:
        # RFC 7518 3.4: raw R || S of fixed length; DER is refused by length.
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        # r = s = 0 is the "psychic signature" (CVE-2022-21449); >= n is never valid.
        if not (0 < r < order and 0 < s < order):
            return False
        try:
            primitive(encode_dss_signature(r, s), signing_input, scheme)
        except InvalidSignature:
            return False
        return True

    return verify


def _eddsa_verifier(public_key: ed25519.Ed25519PublicKey) -> Verifier:
    primitive = public_key.verify

    def verify(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            primitive(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return verify


def make_signer(alg: Algorithm, key: Any) -> Signer:
    """Build ``sign(signing_input) -> signature`` for a private key or secret bound to ``alg``."""
    if alg.family == "HS":
        digest = hmac.digest
        name = alg.hash_name
        secret: bytes = key

        def sign_hmac(signing_input: bytes) -> bytes:
            return digest(secret, signing_input, name)  # type: ignore[arg-type]

        return sign_hmac
    if alg.family in ("RS", "PS"):
        pad = _rsa_padding(alg)
        hash_algorithm = alg.hash
        assert hash_algorithm is not None
        rsa_sign = key.sign

        def sign_rsa(signing_input: bytes) -> bytes:
            return rsa_sign(signing_input, pad, hash_algorithm)  # type: ignore[no-any-return]

        return sign_rsa
    if alg.family == "ES":
        assert alg.crv is not None and alg.hash is not None
        size = CURVES[alg.crv].size
        scheme = ec.ECDSA(alg.hash)
        ec_sign = key.sign

        def sign_ecdsa(signing_input: bytes) -> bytes:
            r, s = decode_dss_signature(ec_sign(signing_input, scheme))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return sign_ecdsa
    ed_sign = key.sign

    def sign_eddsa(signing_input: bytes) -> bytes:
        return ed_sign(signing_input)  # type: ignore[no-any-return]

    return sign_eddsa
