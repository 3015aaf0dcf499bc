"""The benchmark's names, token material and reference cases: the raw floor, the bare
primitive and tokensmith.

Every other bench module builds on these: the rows and algorithms, the RFC 9068 claims,
each algorithm's keys (`Material`), and the (sign, verify) `Pair` every row provides.
"""

from __future__ import annotations

import binascii
import hmac
import json
import os
import time
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

from tokensmith.jose import JWK, JWKSet, JWTPolicy, encode_jwt, verify_jwt

ALGS = ("HS256", "RS256", "PS256", "ES256", "EdDSA")
PRIMITIVE, FLOOR, TOKENSMITH = "primitive", "raw floor", "tokensmith"
PEERS = ("PyJWT", "joserfc", "jwcrypto", "authlib.jose")
LIBS = (PRIMITIVE, FLOOR, TOKENSMITH, *PEERS)
OPS = ("verify", "sign")

# RFC 9068 section 2.2 access token, with the identifiers of its example.
ISS = "https://authorization-server.example.com/"
AUD = "https://rs.example.com/"
TYP = "at+jwt"


class Rejected(Exception):
    """A verify function refused a token (the floor's and the peers' typ checks)."""


# -- keys and claims ---------------------------------------------------------------------


@dataclass
class Material:
    """One algorithm's keys, in every library's form, and the tokens the checks use."""

    alg: str
    secret: bytes | None
    private: Any  # cryptography private key, or None for HS
    public: Any
    kid: str
    claims: dict[str, Any]
    ts_private: JWK
    ts_keys: JWKSet
    header: dict[str, str]


def make_claims(now: int) -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": "5ba552d67",
        "aud": AUD,
        "exp": now + 86_400,
        "iat": now,
        "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
        "client_id": "s6BhdRkqt3",
        "scope": "openid profile reademail orders:read orders:write",
        "roles": ["editor", "viewer"],
    }


def build_material(algs: list[str], claims: dict[str, Any]) -> dict[str, Material]:
    rsa_key = rsa_decoy = None
    if any(alg[:2] in ("RS", "PS") for alg in algs):
        # One modulus serves RS256 and PS256 (as in tests/conftest.py); a second one is the
        # decoy that makes the verifier's key set a real lookup.
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_decoy = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    out = {}
    for alg in algs:
        secret = private = decoy = None
        if alg == "HS256":
            secret = os.urandom(32)
            ts_private = JWK.from_secret(secret, alg=alg)
            ts_decoy = JWK.from_secret(os.urandom(32), alg=alg)
        else:
            if alg in ("RS256", "PS256"):
                private, decoy = rsa_key, rsa_decoy
            elif alg == "ES256":
                private = ec.generate_private_key(ec.SECP256R1())
                decoy = ec.generate_private_key(ec.SECP256R1())
            else:
                private = ed25519.Ed25519PrivateKey.generate()
                decoy = ed25519.Ed25519PrivateKey.generate()
            ts_private = JWK(private, alg=alg, use="sig")
            ts_decoy = JWK(decoy, alg=alg, use="sig")
        ts_public = ts_private if secret is not None else ts_private.public()
        ts_decoy = ts_decoy if secret is not None else ts_decoy.public()
        kid = ts_private.kid  # the RFC 7638 thumbprint, as a JWKS would publish
        out[alg] = Material(
            alg=alg,
            secret=secret,
            private=private,
            public=private.public_key() if private is not None else None,
            kid=kid,
            claims=claims,
            ts_private=ts_private,
            ts_keys=JWKSet([ts_decoy, ts_public]),
            header={"alg": alg, "kid": kid, "typ": TYP},
        )
    return out


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL).decode()


_TO_URL = bytes.maketrans(b"+/", b"-_")
_FROM_URL = bytes.maketrans(b"-_", b"+/")


# -- the floor and the primitive ---------------------------------------------------------


def floor_primitives(
    m: Material,
) -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    """The least sign/verify of a JWS signature: prebuilt key, padding and hash objects."""
    alg = m.alg
    if alg == "HS256":
        secret = m.secret
        digest, compare = hmac.digest, hmac.compare_digest

        def sign_hs(si: bytes) -> bytes:
            return digest(secret, si, "sha256")

        def verify_hs(si: bytes, sig: bytes) -> None:
            if not compare(digest(secret, si, "sha256"), sig):
                raise InvalidSignature

        return sign_hs, verify_hs
    sha256 = hashes.SHA256()
    if alg in ("RS256", "PS256"):
        pad = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(sha256), salt_length=32)
        )
        rsa_sign, rsa_verify = m.private.sign, m.public.verify

        def sign_rsa(si: bytes) -> bytes:
            return rsa_sign(si, pad, sha256)

        def verify_rsa(si: bytes, sig: bytes) -> None:
            rsa_verify(sig, si, pad, sha256)

        return sign_rsa, verify_rsa
    if alg == "ES256":
        scheme = ec.ECDSA(sha256)
        ec_sign, ec_verify = m.private.sign, m.public.verify

        def sign_ec(si: bytes) -> bytes:
            r, s = decode_dss_signature(ec_sign(si, scheme))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        def verify_ec(si: bytes, sig: bytes) -> None:
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            ec_verify(der, si, scheme)

        return sign_ec, verify_ec
    return m.private.sign, lambda si, sig: m.public.verify(sig, si)


def floor_cases(m: Material) -> tuple[Callable[[], str], Callable[[str], dict[str, Any]]]:
    prim_sign, prim_verify = floor_primitives(m)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    b2a, a2b = binascii.b2a_base64, binascii.a2b_base64
    to_url, from_url = _TO_URL, _FROM_URL
    header, claims = m.header, m.claims
    loads, now = json.loads, time.time

    def b64e(data: bytes) -> bytes:
        return b2a(data, newline=False).rstrip(b"=").translate(to_url)

    def sign() -> str:
        si = b64e(encode(header).encode()) + b"." + b64e(encode(claims).encode())
        return (si + b"." + b64e(prim_sign(si))).decode()

    def verify(token: str) -> dict[str, Any]:
        raw = token.encode()
        h, p, s = raw.split(b".")
        # Non-strict decoding tolerates the surplus padding: the cheapest correct decode.
        sig = a2b(s.translate(from_url) + b"==")
        try:
            prim_verify(raw[: len(h) + len(p) + 1], sig)
        except InvalidSignature:
            raise Rejected("signature") from None
        c = loads(a2b(p.translate(from_url) + b"=="))
        if c["exp"] <= now():
            raise Rejected("exp")
        if c["iss"] != ISS:
            raise Rejected("iss")
        aud = c["aud"]
        if aud != AUD and (type(aud) is not list or AUD not in aud):
            raise Rejected("aud")
        return c

    return sign, verify


def primitive_cases(m: Material, token: str) -> tuple[Callable[[], object], Callable[[], object]]:
    prim_sign, prim_verify = floor_primitives(m)
    si_bytes = token.rpartition(".")[0].encode()
    if m.alg == "ES256":
        scheme = ec.ECDSA(hashes.SHA256())
        der = m.private.sign(si_bytes, scheme)
        ec_sign, ec_verify = m.private.sign, m.public.verify
        return (lambda: ec_sign(si_bytes, scheme)), (lambda: ec_verify(der, si_bytes, scheme))
    sig = prim_sign(si_bytes)
    return (lambda: prim_sign(si_bytes)), (lambda: prim_verify(si_bytes, sig))


# -- tokensmith --------------------------------------------------------------------------

Pair = tuple[Callable[[], str], Callable[[str], dict[str, Any]]]


def tokensmith_cases(m: Material) -> Pair:
    policy = JWTPolicy(algorithms=[m.alg], issuer=ISS, audience=AUD, typ=TYP)
    keys, private, claims = m.ts_keys, m.ts_private, m.claims

    def sign() -> str:
        return encode_jwt(claims, private, typ=TYP)

    def verify(token: str) -> dict[str, Any]:
        return verify_jwt(token, keys, policy)

    return sign, verify
