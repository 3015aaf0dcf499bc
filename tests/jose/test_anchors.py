"""One test per row of ANCHORS.md section 3 that concerns JWS/JWT verification.

Each test is named after the CVE or issue of a peer library and reproduces
"the test that would have caught it" as literally as the core allows. Rows
about JWE (PBES2 p2c, zip bombs, RSA1_5) get a test that the JWE-shaped input
is refused as MalformedToken before any decompression or key unwrapping:
tokensmith implements no JWE at all.

Not here: CVE-2026-48524 (remote JWKS refetch cooldown) is tested in the verifier
SDK's tests/verify/test_anchors_verify.py; GHSA-cq42-vhv7-xr7p and CVE-2026-9798 (the
token server's login throttle) in tests/server/test_anchors_server.py.
"""

from __future__ import annotations

import ast
import base64
import datetime
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.oid import NameOID

import tokensmith
import tokensmith.jose
from tokensmith.clock import FixedClock
from tokensmith.jose import (
    JWK,
    SUPPORTED_ALGORITHMS,
    AlgorithmNotAllowed,
    BadSignature,
    InvalidClaim,
    InvalidKey,
    InvalidKeySet,
    JWKSet,
    JWTPolicy,
    KeyNotFound,
    KeyUnusable,
    MalformedToken,
    TokenError,
    TokenTooLarge,
    UnsupportedHeader,
    decode_unverified,
    encode_jwt,
    verify_compact,
    verify_jwt,
)
from tokensmith.jose._algorithms import CURVES
from tokensmith.jose._b64 import b64url_decode, b64url_encode

NOW = 1_767_225_600
CLAIMS = {"sub": "admin", "role": "ADMIN", "exp": NOW + 3600}
EVERY_ALGORITHM = sorted(SUPPORTED_ALGORITHMS)


# -- helpers ------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return b64url_encode(data).decode("ascii")


def signing_input(header: dict[str, Any], payload: bytes) -> bytes:
    return b64url_encode(json.dumps(header).encode()) + b"." + b64url_encode(payload)


def hs256_forged(header: dict[str, Any], secret: bytes, claims: dict[str, Any] = CLAIMS) -> str:
    """What an attacker sends: a token MACed with HMAC-SHA256 under ``secret``, by hand."""
    data = signing_input(header, json.dumps(claims).encode())
    return (data + b"." + b64url_encode(hmac.digest(secret, data, "sha256"))).decode()


def policy(algorithms: list[str], **options: Any) -> JWTPolicy:
    return JWTPolicy(algorithms=algorithms, clock=FixedClock(NOW), **options)


def self_signed_certificate(private_key: Any) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "victim")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    digest = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(private_key, digest)
    )


def public_key_encodings(key: JWK) -> dict[str, bytes]:
    """Every encoding of a public key a confused verifier might take as an HMAC secret."""
    private = key.crypto_key()
    public = private.public_key()
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    cert = self_signed_certificate(private)
    forms = {
        "SPKI PEM": public.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo),
        "SPKI DER": public.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo),
        "OpenSSH": public.public_bytes(enc.OpenSSH, fmt.OpenSSH),
        "X.509 certificate PEM": cert.public_bytes(enc.PEM),
        "X.509 certificate DER": cert.public_bytes(enc.DER),
        "JWK JSON": key.public().to_json().encode(),
    }
    if key.kty == "RSA":
        forms["PKCS#1 PEM"] = public.public_bytes(enc.PEM, fmt.PKCS1)
        forms["PKCS#1 DER"] = public.public_bytes(enc.DER, fmt.PKCS1)
    return forms


def assert_alg_confusion_fails(token: str, public: JWK, algorithms: list[str]) -> None:
    """The forged token fails through every entry point, with a key or a key set."""
    for keys in (public, JWKSet([public])):
        with pytest.raises(TokenError):
            verify_compact(token, keys, algorithms=algorithms)
        with pytest.raises(TokenError):
            verify_jwt(token, keys, policy(algorithms))


def jwe_compact(header: dict[str, Any], encrypted_key: bytes = b"", body: bytes = b"x") -> str:
    """A compact JWE (RFC 7516 section 7.1): five segments."""
    iv = os.urandom(12)
    return ".".join(
        [b64(json.dumps(header).encode()), b64(encrypted_key), b64(iv), b64(body), b64(bytes(16))]
    )


@pytest.fixture
def no_jwe_machinery(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make decompression and password-based key derivation fail loudly if anything calls them."""
    called: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            called.append(name)
            raise AssertionError(f"{name} was called while rejecting a JWE")

        return refuse

    monkeypatch.setattr(zlib, "decompress", trap("zlib.decompress"))
    monkeypatch.setattr(zlib, "decompressobj", trap("zlib.decompressobj"))
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", trap("hashlib.pbkdf2_hmac"))
    monkeypatch.setattr(PBKDF2HMAC, "derive", trap("PBKDF2HMAC.derive"))
    yield called
    assert called == []


def assert_rejected_as_malformed(
    token: str, keys: JWK, max_size: int = 8192, *, unverified: bool = True
) -> None:
    """Refused as MalformedToken by every verifying entry point, with a real key and with none.

    An empty key set raises KeyNotFound as soon as anything looks up a key, so a
    MalformedToken from it shows that rejection happened before any key was touched.
    ``unverified`` also asks decode_unverified, which refuses anything but three segments
    but does not apply the header rules (it checks nothing by design).
    """
    for candidate in (keys, JWKSet([])):
        with pytest.raises(MalformedToken):
            verify_compact(token, candidate, algorithms=EVERY_ALGORITHM, max_size=max_size)
        with pytest.raises(MalformedToken):
            verify_jwt(token, candidate, policy(EVERY_ALGORITHM, max_token_size=max_size))
    if unverified:
        with pytest.raises(MalformedToken):
            decode_unverified(token, max_size=max_size)


# -- algorithm confusion: public keys as HMAC secrets -------------------------------------------


def test_dsa_3293_hs256_maced_with_rsa_public_key_pem(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """PyJWT < 1.0: RS/ES public key accepted as HMAC secret when the token says HS256."""
    rsa_public = verify_keys["RS256"]
    pem = rsa_public.to_pem()
    token = hs256_forged({"alg": "HS256", "typ": "JWT", "kid": rsa_public.kid}, pem)
    key_set = JWKSet([rsa_public])
    with pytest.raises(AlgorithmNotAllowed):
        verify_jwt(token, key_set, policy(["RS256"]))
    # Even a caller who also allows HS256 is safe: an RSA key never serves HMAC.
    with pytest.raises(KeyUnusable):
        verify_jwt(token, key_set, policy(["RS256", "HS256"]))
    assert_alg_confusion_fails(token, rsa_public, ["RS256", "HS256"])
    # Sanity: a genuine RS256 token passes the same set and policy.
    genuine = encode_jwt(CLAIMS, private_keys["RS256"])
    assert verify_jwt(genuine, key_set, policy(["RS256", "HS256"]))["role"] == "ADMIN"


@pytest.mark.parametrize(
    "form",
    [
        "SPKI PEM",
        "PKCS#1 PEM",
        "OpenSSH",
        "X.509 certificate PEM",
        "JWK JSON",
        "SPKI DER",
        "PKCS#1 DER",
        "X.509 certificate DER",
    ],
)
def test_cve_2017_11424_every_public_key_encoding_as_hmac_secret(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], form: str
) -> None:
    """PyJWT: the HMAC key blocklist missed the PKCS#1 PEM form; try every encoding."""
    rsa_public = verify_keys["RS256"]
    secret = public_key_encodings(private_keys["RS256"])[form]
    token = hs256_forged({"alg": "HS256", "kid": rsa_public.kid}, secret)
    assert_alg_confusion_fails(token, rsa_public, ["RS256", "HS256"])
    # The key side refuses too: the encoding cannot be loaded as an HMAC key at all.
    with pytest.raises(InvalidKey):
        JWK.from_secret(secret)


@pytest.mark.parametrize("kind", ["ES256", "ES384", "ES512", "EdDSA"])
def test_cve_2017_11424_every_encoding_of_ec_and_okp_keys(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], kind: str
) -> None:
    """The same confusion attempted with every encoding of the other asymmetric key types."""
    public = verify_keys[kind]
    for secret in public_key_encodings(private_keys[kind]).values():
        token = hs256_forged({"alg": "HS256", "kid": public.kid}, secret)
        assert_alg_confusion_fails(token, public, [kind, "HS256"])


def test_cve_2022_29217_openssh_ed25519_key_as_hmac_secret(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """PyJWT < 2.4: ssh-ed25519 public keys not blocklisted as HMAC secrets."""
    ed_public = verify_keys["EdDSA"]
    openssh = (
        private_keys["EdDSA"]
        .crypto_key()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    assert openssh.startswith(b"ssh-ed25519 ")
    token = hs256_forged({"alg": "HS256"}, openssh)
    for keys in (ed_public, JWKSet([ed_public])):
        with pytest.raises(TokenError):
            verify_compact(token, keys, algorithms=["HS256", "EdDSA"])
        with pytest.raises(TokenError):
            verify_jwt(token, keys, policy(["HS256", "EdDSA"]))
    with pytest.raises(InvalidKey):
        JWK.from_secret(openssh)


def test_cve_2024_33663_openssh_ecdsa_key_as_hmac_secret(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """python-jose < 3.4: OpenSSH ECDSA public keys used as HMAC secrets."""
    ec_public = verify_keys["ES256"]
    openssh = (
        private_keys["ES256"]
        .crypto_key()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    assert openssh.startswith(b"ecdsa-sha2-nistp256 ")
    token = hs256_forged({"alg": "HS256", "kid": ec_public.kid}, openssh)
    assert_alg_confusion_fails(token, ec_public, ["HS256", "ES256"])
    with pytest.raises(InvalidKey):
        JWK.from_secret(openssh)
    # The key type is bound to its algorithm family.
    assert JWK(ec_public.crypto_key()).algorithms == {"ES256"}


def test_cve_2024_37568_algorithm_list_is_mandatory(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """Authlib < 1.3.1: with no algorithm given, HMAC verified with an asymmetric public key."""
    rsa_public = verify_keys["RS256"]
    token = hs256_forged({"alg": "HS256", "kid": rsa_public.kid}, rsa_public.to_pem())
    # No algorithm list: refused at the call, before the token is looked at.
    with pytest.raises(TypeError):
        verify_compact(token, rsa_public)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        verify_compact(token, rsa_public, algorithms=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        verify_compact(token, rsa_public, algorithms=[])
    with pytest.raises(TypeError):
        JWTPolicy()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        JWTPolicy(algorithms="HS256")
    # With a list that even includes HS256, the public key never becomes a MAC key.
    assert_alg_confusion_fails(token, rsa_public, ["HS256", "RS256"])
    ec_public = verify_keys["ES256"]
    token = hs256_forged({"alg": "HS256", "kid": ec_public.kid}, ec_public.to_pem())
    assert_alg_confusion_fails(token, ec_public, ["HS256", "ES256"])


def test_issue_274_mixed_oct_and_rsa_key_set(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """python-jose #274: a key set tried key by key, the algorithm of each key not checked."""
    rsa_public = verify_keys["RS256"]
    secret = JWK.from_secret(os.urandom(32), kid="hmac")
    document = {"keys": [secret.to_dict(private=True), rsa_public.to_dict()]}
    # A set mixing secrets with public keys is refused outright.
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(document)
    with pytest.raises(InvalidKeySet):
        JWKSet([secret, rsa_public])
    # RS256 tokens forged with HS256 over the RSA key's public material fail
    # against the RSA set, whatever the header says.
    pem = rsa_public.to_pem()
    rsa_set = JWKSet([rsa_public])
    for header in (
        {"alg": "RS256", "kid": rsa_public.kid},
        {"alg": "HS256", "kid": rsa_public.kid},
        {"alg": "HS256"},
        {"alg": "RS256"},
    ):
        token = hs256_forged(header, pem)
        with pytest.raises(TokenError):
            verify_jwt(token, rsa_set, policy(["RS256", "HS256"]))
    # And a token MACed with the secret never verifies against the RSA set.
    token = hs256_forged({"alg": "HS256", "kid": rsa_public.kid}, secret.crypto_key())
    with pytest.raises(KeyUnusable):
        verify_jwt(token, rsa_set, policy(["RS256", "HS256"]))


# -- claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize("iss", ["http", "abc", "https", "test.example.com", "/auth", "h"])
def test_cve_2024_53861_issuer_is_not_substring_matched(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], iss: str
) -> None:
    """PyJWT 2.10.0: an issuer string treated as a sequence, so ``in`` matched substrings."""
    expected = "https://test.example.com/auth"
    checks = policy(["ES256"], issuer=expected)
    token = encode_jwt(dict(CLAIMS, iss=iss), private_keys["ES256"])
    with pytest.raises(InvalidClaim) as info:
        verify_jwt(token, verify_keys["ES256"], checks)
    assert info.value.claim == "iss"
    genuine = encode_jwt(dict(CLAIMS, iss=expected), private_keys["ES256"])
    assert verify_jwt(genuine, verify_keys["ES256"], checks)["iss"] == expected


@pytest.mark.parametrize(
    ("name", "literal", "error"),
    [
        ("exp", b'"9999999999"', InvalidClaim),
        ("nbf", b"true", InvalidClaim),
        ("exp", b"NaN", MalformedToken),
        ("exp", b"true", InvalidClaim),
        ("nbf", b'"0"', InvalidClaim),
        ("iat", b"null", InvalidClaim),
        ("exp", b"Infinity", MalformedToken),
        ("exp", b"1e999", MalformedToken),
    ],
)
def test_cve_2026_25537_numeric_dates_of_the_wrong_type(
    verify_keys: dict[str, JWK], name: str, literal: bytes, error: type[Exception]
) -> None:
    """Rust jsonwebtoken: exp/nbf of the wrong JSON type treated as absent."""
    secret = verify_keys["HS256"].crypto_key()
    claims = {"sub": "admin", "exp": NOW + 3600}
    claims.pop(name, None)
    text = json.dumps(claims)[:-1].encode() + b', "' + name.encode() + b'": ' + literal + b"}"
    data = signing_input({"alg": "HS256"}, text)
    token = (data + b"." + b64url_encode(hmac.digest(secret, data, "sha256"))).decode()
    # Rejected with or without require_exp: a wrong-typed value is never "absent".
    for require_exp in (True, False):
        with pytest.raises(error) as info:
            verify_jwt(token, verify_keys["HS256"], policy(["HS256"], require_exp=require_exp))
        if isinstance(info.value, InvalidClaim):
            assert info.value.claim == name


# -- header rules ------------------------------------------------------------------------------


def signed_with_header(key: JWK, alg: str, header: dict[str, Any]) -> str:
    """A token with a correct signature over an arbitrary header (sign_compact refuses crit)."""
    data = signing_input(header, json.dumps(CLAIMS).encode())
    private = key.crypto_key()
    if alg == "HS256":
        signature = hmac.digest(private, data, "sha256")
    elif alg == "RS256":
        signature = private.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = private.sign(data)
    return (data + b"." + b64url_encode(signature)).decode()


def assert_signature_valid_but_refused(
    key: JWK, public: JWK, alg: str, header: dict[str, Any]
) -> None:
    without_crit = {k: v for k, v in header.items() if k != "crit"}
    assert verify_jwt(signed_with_header(key, alg, without_crit), public, policy([alg]))
    token = signed_with_header(key, alg, header)
    with pytest.raises(UnsupportedHeader):
        verify_jwt(token, public, policy([alg]))
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, JWKSet([public]), algorithms=[alg])


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_cve_2026_32597_unknown_crit_with_valid_signature(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    """PyJWT < 2.12: the crit header was ignored."""
    header = {"alg": alg, "kid": private_keys[alg].kid, "crit": ["x-unknown"], "x-unknown": 1}
    assert_signature_valid_but_refused(private_keys[alg], verify_keys[alg], alg, header)


def test_cve_2025_59420_authlib_unknown_crit(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """Authlib < 1.6.4: unknown crit accepted (as CVE-2026-32597)."""
    header = {"alg": "RS256", "crit": ["x-unknown"], "x-unknown": {"nested": True}}
    assert_signature_valid_but_refused(private_keys["RS256"], verify_keys["RS256"], "RS256", header)


@pytest.mark.parametrize("crit", [["x-unknown"], ["exp"], ["b64"], ["kid"]])
def test_issue_413_python_jose_crit_ignored(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], crit: list[str]
) -> None:
    """python-jose 3.5.0 #413 (no CVE, still open): crit ignored (as CVE-2026-32597)."""
    header: dict[str, Any] = {"alg": "ES256", "crit": crit}
    for name in crit:
        header.setdefault(name, True if name == "b64" else "x")
    assert_signature_valid_but_refused(private_keys["ES256"], verify_keys["ES256"], "ES256", header)


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "AAAA", "real-hmac", "64-zero-bytes"])
def test_cve_2026_28802_alg_none(
    verify_keys: dict[str, JWK], spelling: str, signature: str
) -> None:
    """Authlib 1.6.5-1.6.6: alg none with an empty signature passed verification."""
    data = signing_input({"alg": spelling, "typ": "JWT"}, json.dumps(CLAIMS).encode())
    secret = verify_keys["HS256"].crypto_key()
    segment = {
        "": b"",
        "AAAA": b"AAAA",
        "real-hmac": b64url_encode(hmac.digest(secret, data, "sha256")),
        "64-zero-bytes": b64url_encode(bytes(64)),
    }[signature]
    token = (data + b"." + segment).decode()
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        for keys in (verify_keys[alg], JWKSet([verify_keys[alg]])):
            with pytest.raises(AlgorithmNotAllowed):
                verify_jwt(token, keys, policy(EVERY_ALGORITHM))
            with pytest.raises(AlgorithmNotAllowed):
                verify_compact(token, keys, algorithms=EVERY_ALGORITHM)
    # And no caller can opt in.
    with pytest.raises(ValueError):
        policy([spelling])
    with pytest.raises(ValueError):
        verify_compact(token, verify_keys["HS256"], algorithms=["HS256", spelling])


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_cve_2026_27962_key_embedded_in_the_token_is_never_used(
    private_keys: dict[str, JWK],
    verify_keys: dict[str, JWK],
    monkeypatch: pytest.MonkeyPatch,
    member: str,
) -> None:
    """Authlib < 1.6.9: with key=None, the key in the token's jwk header was used."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verifier tried to fetch a key")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)

    victim = verify_keys["ES256"]
    attacker = JWK.generate("ES256", kid=victim.kid)
    value: Any = {
        "jwk": attacker.public().to_dict(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": [
            base64.b64encode(
                self_signed_certificate(attacker.crypto_key()).public_bytes(
                    serialization.Encoding.DER
                )
            ).decode()
        ],
    }[member]
    forged = encode_jwt(CLAIMS, attacker, headers={member: value})
    for keys in (victim, JWKSet([victim])):
        with pytest.raises(UnsupportedHeader):
            verify_jwt(forged, keys, policy(["ES256"]))
        # Even when such headers are tolerated, they are ignored: the caller's key decides.
        with pytest.raises(BadSignature):
            verify_jwt(forged, keys, policy(["ES256"], allow_key_headers=True))
    genuine = encode_jwt(CLAIMS, private_keys["ES256"], headers={member: value})
    assert verify_jwt(genuine, victim, policy(["ES256"], allow_key_headers=True))["sub"] == "admin"


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_cve_2026_27962_no_key_given_never_means_the_tokens_own(
    monkeypatch: pytest.MonkeyPatch, member: str
) -> None:
    """Authlib < 1.6.9, as reported: with key=None, the key in the token's jwk header was used.

    Here "no key" is refused at the call (None) or finds nothing (an empty set), whether
    the key headers are refused (the default) or tolerated, and nothing is fetched.
    """

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verifier tried to fetch a key")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)

    attacker = JWK.generate("ES256", kid="attacker")
    value: Any = {
        "jwk": attacker.public().to_dict(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": [
            base64.b64encode(
                self_signed_certificate(attacker.crypto_key()).public_bytes(
                    serialization.Encoding.DER
                )
            ).decode()
        ],
    }[member]
    forged = encode_jwt(CLAIMS, attacker, headers={member: value})
    no_key: Any = None
    for tolerated in (False, True):
        with pytest.raises(TypeError):
            verify_jwt(forged, no_key, policy(["ES256"], allow_key_headers=tolerated))
        with pytest.raises(TypeError):
            verify_compact(forged, no_key, algorithms=["ES256"], allow_key_headers=tolerated)
        refusal = KeyNotFound if tolerated else UnsupportedHeader
        with pytest.raises(refusal):
            verify_jwt(forged, JWKSet([]), policy(["ES256"], allow_key_headers=tolerated))
        with pytest.raises(refusal):
            verify_compact(forged, JWKSet([]), algorithms=["ES256"], allow_key_headers=tolerated)


@pytest.mark.parametrize("alg", ["HS1", "XS256", "RS256X", "ES256K", "HS256+at_hash", "unknown"])
def test_cve_2026_28498_unknown_alg_fails_closed(verify_keys: dict[str, JWK], alg: str) -> None:
    """Authlib < 1.6.9: the at_hash/c_hash check returned True for an unknown alg.

    The core has no OIDC ID-token hashes (at_hash/c_hash belong to a later
    layer); what carries over is that an unknown alg fails every check: it is
    never in an allow-list, and no key can verify it.
    """
    secret = verify_keys["HS256"].crypto_key()
    token = hs256_forged({"alg": alg}, secret, dict(CLAIMS, at_hash="wrong"))
    with pytest.raises(AlgorithmNotAllowed):
        verify_jwt(token, verify_keys["HS256"], policy(EVERY_ALGORITHM))
    with pytest.raises(ValueError):
        policy([alg])
    assert not any(key.can_verify(alg) for key in verify_keys.values())


# -- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("segment", ["header", "signature"])
def test_cve_2025_61920_one_megabyte_segment_rejected_before_decoding(
    verify_keys: dict[str, JWK], monkeypatch: pytest.MonkeyPatch, segment: str
) -> None:
    """Authlib < 1.6.5: unbounded header/signature segments decoded before rejection."""
    import tokensmith.jose._header as header_module
    import tokensmith.jose.jws as jws_module
    import tokensmith.jose.jwt as jwt_module

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoding started before the size check")

    for module in (header_module, jws_module, jwt_module):
        for name in ("b64url_decode", "loads_object", "parse_header"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, must_not_run)
    huge = "!" * (1 << 20)  # not even base64url: decoding it would have said malformed
    small = b64(b'{"alg":"HS256"}')
    token = f"{huge}.e30.AAAA" if segment == "header" else f"{small}.e30.{huge}"
    key = verify_keys["HS256"]
    tracemalloc.start()
    try:
        for call in (
            lambda: verify_compact(token, key, algorithms=["HS256"]),
            lambda: verify_jwt(token, key, policy(["HS256"])),
            lambda: decode_unverified(token),
        ):
            with pytest.raises(TokenTooLarge) as info:
                call()
            assert info.value.code == "token_too_large"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Rejection allocates nothing proportional to the token (decoding 1 MB would).
    assert peak < 256 * 1024


# -- signatures --------------------------------------------------------------------------------


def test_cve_2022_21449_psychic_signature(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    """Java 15-18: r = s = 0 not rejected, so a zero signature verified anything."""
    public = verify_keys["ES256"]
    token = encode_jwt(CLAIMS, private_keys["ES256"])
    data = token.rsplit(".", 1)[0]
    checks = policy(["ES256"])
    assert verify_jwt(token, public, checks)["sub"] == "admin"
    r_s = b64url_decode(token.rsplit(".", 1)[1].encode())
    r, s = int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big")
    n = CURVES["P-256"].order
    forgeries = {
        "64 zero bytes": bytes(64),
        "r = 0": bytes(32) + s.to_bytes(32, "big"),
        "s = 0": r.to_bytes(32, "big") + bytes(32),
        "r = n": n.to_bytes(32, "big") + s.to_bytes(32, "big"),
        "s = n": r.to_bytes(32, "big") + n.to_bytes(32, "big"),
        "r = s = n": n.to_bytes(32, "big") * 2,
        "DER": encode_dss_signature(r, s),
        "DER of zeros": encode_dss_signature(0, 0),
    }
    for signature in forgeries.values():
        forged = f"{data}.{b64(signature)}"
        with pytest.raises(BadSignature):
            verify_jwt(forged, public, checks)
        with pytest.raises(BadSignature):
            verify_compact(forged, JWKSet([public]), algorithms=["ES256"])


# -- token kind ---------------------------------------------------------------------------------


def test_cve_2022_3102_jwe_where_jws_expected(verify_keys: dict[str, JWK]) -> None:
    """jwcrypto < 1.4: a JWE encrypted to the verify key stood in for a signed JWS."""
    from jwcrypto import jwe as jwcrypto_jwe
    from jwcrypto import jwk as jwcrypto_jwk

    rsa_public = verify_keys["RS256"]
    members = {k: v for k, v in rsa_public.to_dict().items() if k in ("kty", "n", "e")}
    encryption = jwcrypto_jwe.JWE(
        json.dumps(CLAIMS).encode(),
        json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "typ": "JWT"}),
    )
    encryption.add_recipient(jwcrypto_jwk.JWK(**members))
    token = encryption.serialize(compact=True)
    assert token.count(".") == 4
    assert_rejected_as_malformed(token, rsa_public)
    # A three-segment token whose header claims to be a JWE is refused the same way.
    three = hs256_forged({"alg": "HS256", "enc": "A256GCM"}, verify_keys["HS256"].crypto_key())
    assert_rejected_as_malformed(three, verify_keys["HS256"], unverified=False)


# -- JWE-only rows: no JWE is implemented --------------------------------------------------------


def pbes2_jwe(iterations: int) -> str:
    header = {
        "alg": "PBES2-HS512+A256KW",
        "enc": "A256GCM",
        "p2c": iterations,
        "p2s": b64(os.urandom(16)),
    }
    return jwe_compact(header, encrypted_key=os.urandom(40))


def assert_pbes2_rejected(verify_keys: dict[str, JWK]) -> None:
    for iterations in (2**31, 2**31 - 1, 10**12):
        assert_rejected_as_malformed(pbes2_jwe(iterations), verify_keys["HS256"])
    header = {"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2c": 2**31, "p2s": "AAAA"}
    three = hs256_forged(header, verify_keys["HS256"].crypto_key())
    assert_rejected_as_malformed(three, verify_keys["HS256"], unverified=False)
    with pytest.raises(ValueError):
        policy(["PBES2-HS512+A256KW"])


def test_cve_2026_27932_pbes2_p2c_unbounded(
    verify_keys: dict[str, JWK], no_jwe_machinery: list[str]
) -> None:
    """joserfc <= 1.6.2: PBES2 p2c unbounded. tokensmith implements no JWE: refused unread."""
    assert_pbes2_rejected(verify_keys)


def test_cve_2023_6681_pbes2_p2c_unbounded(
    verify_keys: dict[str, JWK], no_jwe_machinery: list[str]
) -> None:
    """jwcrypto < 1.5.1: PBES2 p2c unbounded. tokensmith implements no JWE: refused unread."""
    assert_pbes2_rejected(verify_keys)


def test_cve_2022_36083_pbes2_p2c_unbounded(
    verify_keys: dict[str, JWK], no_jwe_machinery: list[str]
) -> None:
    """panva/jose: PBES2 p2c unbounded. tokensmith implements no JWE: refused unread."""
    assert_pbes2_rejected(verify_keys)


@pytest.fixture(scope="module")
def deflate_bomb() -> bytes:
    """Raw DEFLATE (RFC 1951, as JWE zip DEF) of 100 MiB of zeros: about 100 KB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(100)]
    parts.append(compressor.flush())
    return b"".join(parts)


def assert_zip_bomb_rejected(bomb: bytes, verify_keys: dict[str, JWK]) -> None:
    jwe = jwe_compact({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, body=bomb)
    assert 100_000 < len(jwe) < 300_000  # the 250 KB class of token from the report
    # At the default limit the size check refuses it first ...
    for keys in (verify_keys["HS256"], JWKSet([])):
        with pytest.raises(TokenTooLarge):
            verify_compact(jwe, keys, algorithms=["HS256"])
    # ... and with the limit raised past it, the shape does; nothing is inflated either way.
    assert_rejected_as_malformed(jwe, verify_keys["HS256"], max_size=len(jwe))
    # A JWS-shaped token announcing a compressed payload is refused too.
    secret = verify_keys["HS256"].crypto_key()
    data = signing_input({"alg": "HS256", "zip": "DEF"}, bomb)
    three = (data + b"." + b64url_encode(hmac.digest(secret, data, "sha256"))).decode()
    assert_rejected_as_malformed(three, verify_keys["HS256"], max_size=len(three), unverified=False)


def test_cve_2024_28102_jwe_zip_decompression_bomb(
    verify_keys: dict[str, JWK], deflate_bomb: bytes, no_jwe_machinery: list[str]
) -> None:
    """jwcrypto < 1.5.6: zip DEF decompression bomb.

    tokensmith implements no JWE and never inflates anything.
    """
    assert_zip_bomb_rejected(deflate_bomb, verify_keys)


def test_cve_2026_39373_decompressed_size_not_capped(
    verify_keys: dict[str, JWK], deflate_bomb: bytes, no_jwe_machinery: list[str]
) -> None:
    """jwcrypto < 1.5.7: input capped but not decompressed output.

    tokensmith implements no JWE and has no decompression at all, so there is no
    output to cap: the input size cap and the zip refusal are the whole story.
    """
    assert_zip_bomb_rejected(deflate_bomb, verify_keys)


def test_cve_2024_33664_python_jose_jwt_bomb(
    verify_keys: dict[str, JWK], deflate_bomb: bytes, no_jwe_machinery: list[str]
) -> None:
    """python-jose < 3.4: JWE decompression bomb. tokensmith implements no JWE."""
    assert_zip_bomb_rejected(deflate_bomb, verify_keys)


def test_cve_2024_28176_panva_jose_decompression_bomb(
    verify_keys: dict[str, JWK], deflate_bomb: bytes, no_jwe_machinery: list[str]
) -> None:
    """panva/jose: JWE decompression bomb. tokensmith implements no JWE."""
    assert_zip_bomb_rejected(deflate_bomb, verify_keys)


def test_cve_2024_28180_go_jose_decompression_bomb(
    verify_keys: dict[str, JWK], deflate_bomb: bytes, no_jwe_machinery: list[str]
) -> None:
    """go-jose (Dex, Hydra): JWE decompression bomb. tokensmith implements no JWE."""
    assert_zip_bomb_rejected(deflate_bomb, verify_keys)


def assert_zip_bomb_rejected_in_bounded_memory(bomb: bytes, verify_keys: dict[str, JWK]) -> None:
    """The rows ask for "bounded memory": measured, not inferred from which functions ran.

    The tokens carry 100 MiB of zeros deflated to about 100 KB; every entry point refuses
    them, with the size limit raised past the token, while the traced peak stays below
    1 MiB (inflating would need 100 MiB, and so would any decompressor, not only zlib's).
    """
    key = verify_keys["HS256"]
    jwe = jwe_compact({"alg": "dir", "enc": "A256GCM", "zip": "DEF"}, body=bomb)
    data = signing_input({"alg": "HS256", "zip": "DEF"}, bomb)
    jws = (data + b"." + b64url_encode(hmac.digest(key.crypto_key(), data, "sha256"))).decode()
    calls: list[Callable[[], object]] = []
    for token in (jwe, jws):
        size = len(token)
        calls += [
            lambda token=token, size=size: verify_compact(
                token, key, algorithms=EVERY_ALGORITHM, max_size=size
            ),
            lambda token=token, size=size: verify_jwt(
                token, key, policy(EVERY_ALGORITHM, max_token_size=size)
            ),
            lambda token=token: verify_compact(token, key, algorithms=["HS256"]),
        ]
    calls.append(lambda: decode_unverified(jwe, max_size=len(jwe)))
    tracemalloc.start()
    try:
        for call in calls:
            with pytest.raises(TokenError):
                call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"peak {peak} bytes while refusing a decompression bomb"


def test_cve_2024_28102_zip_bomb_bounded_memory(
    verify_keys: dict[str, JWK], deflate_bomb: bytes
) -> None:
    """jwcrypto < 1.5.6: zip DEF bomb; "rejected with bounded memory", measured."""
    assert_zip_bomb_rejected_in_bounded_memory(deflate_bomb, verify_keys)


def test_cve_2026_39373_zip_bomb_bounded_memory(
    verify_keys: dict[str, JWK], deflate_bomb: bytes
) -> None:
    """jwcrypto < 1.5.7: decompressed output uncapped; the peak is measured, not the input."""
    assert_zip_bomb_rejected_in_bounded_memory(deflate_bomb, verify_keys)


def test_cve_2024_33664_zip_bomb_bounded_memory(
    verify_keys: dict[str, JWK], deflate_bomb: bytes
) -> None:
    """python-jose < 3.4: JWE decompression bomb; bounded memory, measured."""
    assert_zip_bomb_rejected_in_bounded_memory(deflate_bomb, verify_keys)


def test_cve_2024_28176_zip_bomb_bounded_memory(
    verify_keys: dict[str, JWK], deflate_bomb: bytes
) -> None:
    """panva/jose: JWE decompression bomb; bounded memory, measured."""
    assert_zip_bomb_rejected_in_bounded_memory(deflate_bomb, verify_keys)


def test_cve_2024_28180_zip_bomb_bounded_memory(
    verify_keys: dict[str, JWK], deflate_bomb: bytes
) -> None:
    """go-jose (Dex, Hydra): JWE decompression bomb; bounded memory, measured."""
    assert_zip_bomb_rejected_in_bounded_memory(deflate_bomb, verify_keys)


def test_cve_2016_6298_rsa1_5_key_unwrap(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], no_jwe_machinery: list[str]
) -> None:
    """jwcrypto: RSA1_5 key unwrap open to Bleichenbacher's attack.

    tokensmith implements no JWE: an RSA1_5 JWE is refused as MalformedToken
    even when the caller holds the RSA private key, and RSA1_5 cannot be allowed.
    """
    rsa_public = verify_keys["RS256"].crypto_key()
    cek = os.urandom(32)
    header = {"alg": "RSA1_5", "enc": "A128CBC-HS256"}
    encrypted_key = rsa_public.encrypt(cek, padding.PKCS1v15())
    body = AESGCM(os.urandom(16)).encrypt(os.urandom(12), b"{}", None)
    token = jwe_compact(header, encrypted_key=encrypted_key, body=body)
    # Hand over the private key: a decrypting verifier would try the unwrap with it.
    assert_rejected_as_malformed(token, private_keys["RS256"])
    # A padding oracle needs a signal: malformed wrapped keys give the very same answer.
    for wrapped in (os.urandom(256), b"", bytes(256)):
        with pytest.raises(MalformedToken) as info:
            verify_compact(
                jwe_compact(header, encrypted_key=wrapped),
                private_keys["RS256"],
                algorithms=["RS256"],
            )
        assert info.value.code == "malformed_token"
    with pytest.raises(ValueError):
        policy(["RSA1_5"])


# -- supply chain --------------------------------------------------------------------------------


def test_issue_341_no_pure_python_ecdsa_backend() -> None:
    """python-jose #341 (CVE-2024-23342): pure-Python ECDSA (python-ecdsa) has a timing leak.

    In a fresh interpreter, importing the core and verifying ES256/384/512 loads
    nothing beyond the standard library, cryptography and tokensmith.
    """
    script = textwrap.dedent(
        """
        import json, sys
        before = set(sys.modules)
        from tokensmith.jose import JWK, sign_compact, verify_compact
        for alg in ("ES256", "ES384", "ES512"):
            key = JWK.generate(alg)
            verify_compact(sign_compact(b"x", key), key.public(), algorithms=[alg])
            print(type(key.public().crypto_key()).__module__, file=sys.stderr)
        loaded = sorted({name.split(".")[0] for name in set(sys.modules) - before})
        print(json.dumps({"loaded": loaded, "origin": sys.modules["tokensmith"].__file__}))
        """
    )
    # Import the very tokensmith under test, wherever this checkout lives.
    source_root = str(Path(tokensmith.jose.__file__).parents[2])
    env = dict(os.environ, PYTHONPATH=source_root)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["origin"]).resolve() == Path(tokensmith.__file__).resolve()
    loaded = set(report["loaded"])
    third_party = loaded - set(sys.stdlib_module_names)
    # _cffi_backend and _openssl are cryptography's own compiled bindings.
    assert third_party <= {"tokensmith", "cryptography", "_cffi_backend", "_openssl"}, third_party
    for pure_python in ("ecdsa", "jose", "Crypto", "Cryptodome", "nacl", "pure25519"):
        assert pure_python not in loaded
    key_modules = set(result.stderr.split())
    assert key_modules and all(name.startswith("cryptography.") for name in key_modules)


def test_issue_341_core_imports_only_stdlib_and_cryptography() -> None:
    """The same property read from the source: every import in tokensmith.jose."""
    package = Path(tokensmith.jose.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"cryptography", "tokensmith"}
    seen = set()
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                seen.add(top)
                assert top in allowed, f"{path.name} imports {name}"
    assert "cryptography" in seen
