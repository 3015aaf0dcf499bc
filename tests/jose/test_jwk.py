"""JWK: key types and sizes, import/export, thumbprints, and which algorithms a key may serve."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID

from tokensmith.jose import (
    JWK,
    SUPPORTED_ALGORITHMS,
    InvalidKey,
    KeyUnusable,
    sign_compact,
    verify_compact,
)
from tokensmith.jose._b64 import b64url_encode

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
RSA_ALGS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
# One representative algorithm per key type and curve.
ASYMMETRIC_KINDS = ["RS256", "ES256", "ES384", "ES512", "EdDSA"]


def kty_crv(alg: str) -> tuple[str, str | None]:
    if alg.startswith("HS"):
        return "oct", None
    if alg[:2] in ("RS", "PS"):
        return "RSA", None
    if alg.startswith("ES"):
        return "EC", {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    return "OKP", "Ed25519"


def self_signed_certificate(private_key: object) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tokensmith test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
    )
    digest = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private_key, digest)  # type: ignore[arg-type]


def public_encodings(private_key: object) -> dict[str, bytes]:
    """Every public form of a key an HMAC secret must never be (CVE-2017-11424 and kin)."""
    public = private_key.public_key()  # type: ignore[attr-defined]
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    spki_pem = public.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo)
    spki_der = public.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo)
    cert = self_signed_certificate(private_key)
    forms = {
        "spki-pem": spki_pem,
        "spki-pem-leading-whitespace": b"\n  " + spki_pem,
        "spki-pem-crlf": spki_pem.replace(b"\n", b"\r\n"),
        "spki-der": spki_der,
        "spki-base64-without-armour": base64.b64encode(spki_der),
        "openssh": public.public_bytes(enc.OpenSSH, fmt.OpenSSH),
        "openssh-with-comment": public.public_bytes(enc.OpenSSH, fmt.OpenSSH) + b" user@host\n",
        "x509-pem": cert.public_bytes(enc.PEM),
        "x509-der": cert.public_bytes(enc.DER),
        "jwk-json": JWK(public).to_json().encode(),
        "jwk-json-compact": json.dumps(JWK(public).to_dict(), separators=(",", ":")).encode(),
    }
    if isinstance(public, rsa.RSAPublicKey):
        forms["pkcs1-pem"] = public.public_bytes(enc.PEM, fmt.PKCS1)
        forms["pkcs1-der"] = public.public_bytes(enc.DER, fmt.PKCS1)
    return forms


@pytest.fixture(scope="module")
def crypto_private(private_keys: dict[str, JWK]) -> dict[str, object]:
    return {alg: private_keys[alg].crypto_key() for alg in ASYMMETRIC_KINDS}


# -- generation and key types ----------------------------------------------------


# RSA generation is slow: one RSA algorithm stands for the six that share the key type.
@pytest.mark.parametrize(
    "alg", [*sorted(a for a in SUPPORTED_ALGORITHMS if a[:2] not in ("RS", "PS")), "PS384"]
)
def test_generate_binds_the_key_to_its_algorithm(alg: str) -> None:
    key = JWK.generate(alg)
    assert (key.kty, key.crv) == kty_crv(alg)
    assert key.alg == alg
    assert key.use == "sig"
    assert key.is_private
    assert key.algorithms == {alg}
    assert key.can_sign(alg)
    assert key.can_verify(alg)


def test_generate_rsa_is_2048_bits_by_default(private_keys: dict[str, JWK]) -> None:
    key = private_keys["RS256"]
    assert key.kty == "RSA"
    assert key.crypto_key().key_size == 2048


def test_generate_refuses_rsa_below_2048_bits() -> None:
    with pytest.raises(InvalidKey):
        JWK.generate("RS256", rsa_bits=1024)


@pytest.mark.parametrize("alg", ["none", "None", "HS1", "RSA-OAEP", "ES256K", ""])
def test_generate_refuses_unknown_algorithms(alg: str) -> None:
    with pytest.raises(ValueError):
        JWK.generate(alg)


@pytest.mark.parametrize(("alg", "length"), [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_generated_hmac_secret_is_as_long_as_the_hash(alg: str, length: int) -> None:
    key = JWK.generate(alg)
    assert len(key.crypto_key()) == length
    assert JWK.generate(alg).crypto_key() != key.crypto_key()


@pytest.fixture(scope="module")
def rsa_1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_rsa_below_2048_bits_is_refused_everywhere(rsa_1024: rsa.RSAPrivateKey) -> None:
    pem = rsa_1024.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey):
        JWK(rsa_1024)
    with pytest.raises(InvalidKey):
        JWK(rsa_1024.public_key())
    with pytest.raises(InvalidKey):
        JWK.from_pem(pem)
    numbers = rsa_1024.public_key().public_numbers()
    members = {
        "kty": "RSA",
        "n": b64url_encode(numbers.n.to_bytes(128, "big")).decode(),
        "e": "AQAB",
    }
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP256K1()),
        lambda: ec.generate_private_key(ec.SECP224R1()),
        lambda: ed448.Ed448PrivateKey.generate(),
        lambda: x25519.X25519PrivateKey.generate(),
    ],
    ids=["secp256k1", "secp224r1", "ed448", "x25519"],
)
def test_unsupported_curves_are_refused(make: object) -> None:
    private = make()  # type: ignore[operator]
    with pytest.raises(InvalidKey):
        JWK(private)
    with pytest.raises(InvalidKey):
        JWK(private.public_key())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey):
        JWK.from_pem(pem)


@pytest.mark.parametrize(
    "members",
    [
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": b64url_encode(bytes(32)).decode()},
        {"kty": "OKP", "crv": "Ed448", "x": b64url_encode(bytes(57)).decode()},
        {"kty": "DSA"},
        {"kty": "rsa"},
        {},
        {"kty": None},
    ],
)
def test_unsupported_jwk_types_and_curves_are_refused(members: dict[str, object]) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize("value", [[], "text", 1, None])
def test_a_jwk_must_be_a_mapping(value: object) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(value)  # type: ignore[arg-type]


# -- HMAC secrets ------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_hmac_secret_shorter_than_32_bytes_is_refused(length: int) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_secret(os.urandom(length))
    with pytest.raises(InvalidKey):
        JWK.from_dict({"kty": "oct", "k": b64url_encode(os.urandom(length)).decode()})


@pytest.mark.parametrize(
    ("length", "algorithms"),
    [
        (32, {"HS256"}),
        (47, {"HS256"}),
        (48, {"HS256", "HS384"}),
        (63, {"HS256", "HS384"}),
        (64, {"HS256", "HS384", "HS512"}),
        (100, {"HS256", "HS384", "HS512"}),
    ],
)
def test_hmac_secret_serves_only_hashes_no_longer_than_itself(
    length: int, algorithms: set[str]
) -> None:
    key = JWK.from_secret(os.urandom(length))
    assert key.kty == "oct"
    assert key.algorithms == algorithms


@pytest.mark.parametrize(("alg", "length"), [("HS384", 32), ("HS384", 47), ("HS512", 48)])
def test_hmac_secret_too_short_for_its_alg_member_is_refused(alg: str, length: int) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_secret(os.urandom(length), alg=alg)
    with pytest.raises(InvalidKey):
        JWK.from_dict({"kty": "oct", "alg": alg, "k": b64url_encode(os.urandom(length)).decode()})


def test_hmac_secret_of_48_bytes_may_be_marked_hs384() -> None:
    key = JWK.from_secret(os.urandom(48), alg="HS384")
    assert key.algorithms == {"HS384"}


def test_from_secret_wants_bytes() -> None:
    with pytest.raises(TypeError):
        JWK.from_secret("a" * 64)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_asymmetric_keys_never_serve_hmac(private_keys: dict[str, JWK], kind: str) -> None:
    for key in (private_keys[kind], private_keys[kind].public()):
        assert not {"HS256", "HS384", "HS512"} & key.algorithms
        unbound = JWK(key.crypto_key())
        assert not {"HS256", "HS384", "HS512"} & unbound.algorithms


FORMS = [
    "spki-pem",
    "spki-pem-leading-whitespace",
    "spki-pem-crlf",
    "spki-der",
    "spki-base64-without-armour",
    "openssh",
    "openssh-with-comment",
    "x509-pem",
    "x509-der",
    "jwk-json",
    "jwk-json-compact",
    "pkcs1-pem",
    "pkcs1-der",
]


@pytest.fixture(scope="module")
def encodings(crypto_private: dict[str, object]) -> dict[str, dict[str, bytes]]:
    return {kind: public_encodings(key) for kind, key in crypto_private.items()}


@pytest.mark.parametrize(
    ("kind", "form"),
    [
        (kind, form)
        for kind in ASYMMETRIC_KINDS
        for form in FORMS
        # PKCS#1 exists for RSA keys only.
        if kind == "RS256" or not form.startswith("pkcs1")
    ],
)
def test_no_public_key_encoding_is_accepted_as_an_hmac_secret(
    encodings: dict[str, dict[str, bytes]], kind: str, form: str
) -> None:
    data = encodings[kind][form]
    assert len(data) >= 32  # long enough to pass the length rule: only the content check applies
    with pytest.raises(InvalidKey):
        JWK.from_secret(data)
    with pytest.raises(InvalidKey):
        JWK(data)
    with pytest.raises(InvalidKey):
        JWK.from_dict({"kty": "oct", "k": b64url_encode(data).decode()})


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_private_key_pem_is_not_an_hmac_secret(private_keys: dict[str, JWK], kind: str) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_secret(private_keys[kind].to_pem(private=True))


def test_random_secret_that_happens_to_start_like_der_is_still_fine() -> None:
    secret = b"\x30" + bytes(range(1, 40))
    assert JWK.from_secret(secret).algorithms == {"HS256"}


# -- thumbprints and kid -----------------------------------------------------------


def independent_thumbprint(required: dict[str, str]) -> str:
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 section 3.1 (the key of RFC 7517 appendix A.1).
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = JWK.from_dict({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    assert key.thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert key.kid == "2011-04-29"
    assert JWK.from_dict({"kty": "RSA", "n": n, "e": "AQAB"}).kid == key.thumbprint()


def test_rfc8037_ed25519_thumbprint_example() -> None:
    key = JWK.from_dict(
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    )
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_default_kid_is_the_rfc7638_thumbprint(private_keys: dict[str, JWK], kind: str) -> None:
    members = private_keys[kind].to_dict()
    required_names = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}.get(
        members["kty"], ("crv", "kty", "x")
    )
    required = {name: members[name] for name in required_names}
    expected = independent_thumbprint(required)
    fresh = JWK(private_keys[kind].crypto_key())
    assert fresh.kid == expected
    assert fresh.thumbprint() == expected
    assert fresh.public().kid == expected
    # The thumbprint ignores optional members; kid does not change it.
    assert JWK.from_dict(dict(members, kid="other", use="sig")).thumbprint() == expected


def test_hmac_default_kid_is_its_thumbprint() -> None:
    secret = bytes(range(32))
    expected = independent_thumbprint({"k": b64url_encode(secret).decode(), "kty": "oct"})
    assert JWK.from_secret(secret).kid == expected


def test_explicit_kid_is_kept() -> None:
    assert JWK.from_secret(bytes(32) + b"x", kid="2026-key").kid == "2026-key"


@pytest.mark.parametrize("member", ["kid", "alg", "use"])
@pytest.mark.parametrize("value", [1, ["x"], {"a": 1}, True])
def test_string_members_must_be_strings(
    private_keys: dict[str, JWK], member: str, value: object
) -> None:
    members = dict(private_keys["ES256"].public().to_dict())
    members.pop("alg", None)
    members[member] = value
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


# -- export never leaks private members --------------------------------------------


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_public_export_never_carries_private_members(
    private_keys: dict[str, JWK], kind: str
) -> None:
    private = private_keys[kind]
    assert {"d"} <= set(private.to_dict(private=True))
    for exported in (
        private.to_dict(),
        private.public().to_dict(),
        private.public().to_dict(private=True),
        json.loads(private.to_json()),
        json.loads(private.public().to_json(private=True)),
    ):
        assert not PRIVATE_MEMBERS & set(exported), exported
    assert not private.public().is_private
    pem = private.to_pem()
    assert b"PRIVATE" not in pem
    assert not JWK.from_pem(pem).is_private


def test_hmac_secret_has_no_public_form() -> None:
    key = JWK.from_secret(bytes(range(32)))
    with pytest.raises(ValueError):
        key.to_dict()
    with pytest.raises(ValueError):
        key.public()
    with pytest.raises(ValueError):
        key.to_pem()
    assert key.to_dict(private=True)["k"] == b64url_encode(bytes(range(32))).decode()


def test_public_export_keeps_only_verify_in_key_ops(private_keys: dict[str, JWK]) -> None:
    members = dict(private_keys["ES256"].to_dict(private=True), key_ops=["sign", "verify"])
    key = JWK.from_dict(members)
    assert key.to_dict()["key_ops"] == ["verify"]
    assert key.public().key_ops == ("verify",)
    assert key.to_dict(private=True)["key_ops"] == ["sign", "verify"]


def test_repr_shows_no_key_material() -> None:
    secret = bytes(range(32))
    text = repr(JWK.from_secret(secret))
    assert b64url_encode(secret).decode() not in text
    assert secret.hex() not in text


# -- PEM import and export -----------------------------------------------------------


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_pem_round_trips(private_keys: dict[str, JWK], kind: str) -> None:
    key = private_keys[kind]
    private_pem = key.to_pem(private=True)
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    public_pem = key.to_pem()
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")  # SPKI
    reloaded = JWK.from_pem(private_pem)
    assert reloaded.is_private
    assert reloaded.thumbprint() == key.thumbprint()
    assert reloaded.to_pem(private=True) == private_pem
    public = JWK.from_pem(public_pem.decode())
    assert not public.is_private
    assert public.thumbprint() == key.thumbprint()
    assert public.to_pem() == public_pem
    # Signatures cross over: the reloaded private key signs, the original public half verifies.
    alg = kind
    token = sign_compact(b"pem", reloaded, alg=alg)
    assert verify_compact(token, key.public(), algorithms=[alg]).payload == b"pem"
    with pytest.raises(ValueError):
        public.to_pem(private=True)


def test_rsa_pkcs1_pem_round_trips(private_keys: dict[str, JWK]) -> None:
    key = private_keys["RS256"]
    private_pem = key.to_pem(private=True, pkcs1=True)
    assert private_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    public_pem = key.to_pem(pkcs1=True)
    assert public_pem.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert JWK.from_pem(private_pem).thumbprint() == key.thumbprint()
    assert JWK.from_pem(private_pem).is_private
    assert JWK.from_pem(public_pem).thumbprint() == key.thumbprint()
    assert not JWK.from_pem(public_pem).is_private


@pytest.mark.parametrize("kind", ["ES256", "EdDSA"])
def test_pkcs1_is_only_for_rsa(private_keys: dict[str, JWK], kind: str) -> None:
    with pytest.raises(ValueError):
        private_keys[kind].to_pem(pkcs1=True)


def test_sec1_ec_private_pem_is_imported(private_keys: dict[str, JWK]) -> None:
    key = private_keys["ES384"]
    sec1 = key.crypto_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert JWK.from_pem(sec1).thumbprint() == key.thumbprint()


def test_encrypted_pem_needs_the_right_password(private_keys: dict[str, JWK]) -> None:
    key = private_keys["ES256"]
    pem = key.to_pem(private=True, password=b"correct horse")
    assert b"ENCRYPTED" in pem
    assert JWK.from_pem(pem, password=b"correct horse").thumbprint() == key.thumbprint()
    for password in (b"wrong", None):
        with pytest.raises(InvalidKey) as info:
            JWK.from_pem(pem, password=password)
        assert "correct horse" not in str(info.value)


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_certificate_pem_yields_its_public_key(
    private_keys: dict[str, JWK], crypto_private: dict[str, object], kind: str
) -> None:
    cert = self_signed_certificate(crypto_private[kind])
    key = JWK.from_pem(cert.public_bytes(serialization.Encoding.PEM))
    assert not key.is_private
    assert key.thumbprint() == private_keys[kind].thumbprint()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a pem",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
)
def test_broken_pem_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_pem(data)


def test_from_pem_can_bind_an_algorithm(private_keys: dict[str, JWK]) -> None:
    pem = private_keys["RS256"].to_pem()
    assert JWK.from_pem(pem).algorithms == RSA_ALGS
    bound = JWK.from_pem(pem, alg="PS384", kid="k1")
    assert bound.algorithms == {"PS384"}
    assert bound.kid == "k1"
    with pytest.raises(InvalidKey):
        JWK.from_pem(pem, alg="ES256")


# -- JWK import and export -----------------------------------------------------------


@pytest.mark.parametrize("kind", [*ASYMMETRIC_KINDS, "HS256", "HS512"])
def test_jwk_private_round_trip(private_keys: dict[str, JWK], kind: str) -> None:
    key = private_keys[kind]
    members = key.to_dict(private=True)
    again = JWK.from_dict(members)
    assert again.is_private
    assert again.kid == key.kid
    assert again.alg == key.alg
    assert again.to_dict(private=True) == members
    assert JWK.from_json(key.to_json(private=True)).to_dict(private=True) == members
    token = sign_compact(b"round trip", again, alg=kind)
    verifier = key if kind.startswith("HS") else key.public()
    assert verify_compact(token, verifier, algorithms=[kind]).payload == b"round trip"


@pytest.mark.parametrize("kind", ASYMMETRIC_KINDS)
def test_jwk_public_round_trip(private_keys: dict[str, JWK], kind: str) -> None:
    public = private_keys[kind].public()
    members = public.to_dict()
    again = JWK.from_dict(members)
    assert not again.is_private
    assert again.to_dict() == members
    assert JWK.from_json(json.dumps(members)).thumbprint() == public.thumbprint()
    with pytest.raises(ValueError):
        sign_compact(b"x", again, alg=kind)


def test_rsa_private_jwk_without_crt_members_is_completed(private_keys: dict[str, JWK]) -> None:
    members = private_keys["RS256"].to_dict(private=True)
    minimal = {name: members[name] for name in ("kty", "n", "e", "d")}
    key = JWK.from_dict(minimal)
    assert key.is_private
    assert key.to_dict(private=True)["p"] in (members["p"], members["q"])


def test_rsa_private_jwk_with_some_crt_members_is_refused(private_keys: dict[str, JWK]) -> None:
    members = private_keys["RS256"].to_dict(private=True)
    del members["qi"]
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


def test_rsa_private_jwk_with_inconsistent_members_is_refused(
    private_keys: dict[str, JWK],
) -> None:
    members = private_keys["RS256"].to_dict(private=True)
    members["dp"], members["dq"] = members["dq"], members["dp"]
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


def test_multi_prime_rsa_is_refused(private_keys: dict[str, JWK]) -> None:
    members = dict(private_keys["RS256"].to_dict(private=True), oth=[])
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


def test_rsa_modulus_with_leading_zero_octet_is_refused(private_keys: dict[str, JWK]) -> None:
    members = private_keys["RS256"].public().to_dict()
    n = base64.urlsafe_b64decode(members["n"] + "==")
    members["n"] = b64url_encode(b"\x00" + n).decode()
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize("kind", ["ES256", "ES384", "ES512"])
def test_ec_point_off_the_curve_is_refused(private_keys: dict[str, JWK], kind: str) -> None:
    members = private_keys[kind].public().to_dict()
    y = bytearray(base64.urlsafe_b64decode(members["y"] + "=="))
    y[-1] ^= 1
    members["y"] = b64url_encode(bytes(y)).decode()
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize("kind", ["ES256", "ES384", "ES512"])
def test_ec_coordinates_must_have_the_curve_length(private_keys: dict[str, JWK], kind: str) -> None:
    members = private_keys[kind].public().to_dict()
    x = base64.urlsafe_b64decode(members["x"] + "==")
    for wrong in (b"\x00" + x, x[1:]):
        with pytest.raises(InvalidKey):
            JWK.from_dict(dict(members, x=b64url_encode(wrong).decode()))


def test_ec_private_scalar_must_match_the_point(private_keys: dict[str, JWK]) -> None:
    members = private_keys["ES256"].to_dict(private=True)
    other = JWK.generate("ES256").to_dict(private=True)
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(members, d=other["d"]))


def test_ed25519_private_key_must_match_its_public_key(private_keys: dict[str, JWK]) -> None:
    members = private_keys["EdDSA"].to_dict(private=True)
    other = JWK.generate("EdDSA").to_dict(private=True)
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(members, d=other["d"]))
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(members, x=b64url_encode(bytes(31)).decode()))


@pytest.mark.parametrize("bad", ["AQAB=", "AQ+B", 65537, None, ""])
def test_jwk_integer_members_are_strict_base64url(
    private_keys: dict[str, JWK], bad: object
) -> None:
    members = dict(private_keys["RS256"].public().to_dict(), e=bad)
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize("text", ["[]", "{", '{"kty":"oct","kty":"oct"}', "null"])
def test_from_json_refuses_non_objects_and_duplicates(text: str) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_json(text)


# -- which algorithms a key may serve ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "algorithms"),
    [
        ("RS256", RSA_ALGS),
        ("ES256", {"ES256"}),
        ("ES384", {"ES384"}),
        ("ES512", {"ES512"}),
        ("EdDSA", {"EdDSA", "Ed25519"}),
    ],
)
def test_unbound_key_serves_exactly_the_algorithms_of_its_type(
    private_keys: dict[str, JWK], kind: str, algorithms: set[str]
) -> None:
    key = JWK(private_keys[kind].crypto_key().public_key())
    assert key.alg is None
    assert key.algorithms == algorithms


def test_alg_member_narrows_the_key(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    ps256 = verify_keys["PS256"]
    assert ps256.algorithms == {"PS256"}
    assert not ps256.can_verify("PS384")
    # Same modulus, but a PS384 token must not verify under the key marked PS256.
    token = sign_compact(b"x", private_keys["PS384"])
    assert verify_compact(token, verify_keys["PS384"], algorithms=["PS384"]).payload == b"x"
    with pytest.raises(KeyUnusable):
        verify_compact(token, ps256, algorithms=["PS256", "PS384"])


@pytest.mark.parametrize(
    ("kind", "alg"),
    [
        ("RS256", "ES256"),
        ("ES256", "ES384"),
        ("ES384", "RS256"),
        ("EdDSA", "ES256"),
        ("ES256", "HS256"),
    ],
)
def test_alg_member_of_another_key_type_is_refused(
    private_keys: dict[str, JWK], kind: str, alg: str
) -> None:
    members = dict(private_keys[kind].public().to_dict(), alg=alg)
    with pytest.raises(InvalidKey):
        JWK.from_dict(members)


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA1_5", "A256KW", "none", "rs256"])
def test_key_with_a_non_signature_alg_loads_but_verifies_nothing(
    private_keys: dict[str, JWK], alg: str
) -> None:
    key = JWK.from_dict(dict(private_keys["RS256"].public().to_dict(), alg=alg))
    assert key.algorithms == frozenset()


@pytest.mark.parametrize(
    ("extra", "can_verify"),
    [
        ({"use": "sig"}, True),
        ({"use": "enc"}, False),
        ({"use": "other"}, False),
        ({"key_ops": ["verify"]}, True),
        ({"key_ops": ["sign", "verify"]}, True),
        ({"key_ops": ["sign"]}, False),
        ({"key_ops": ["encrypt", "wrapKey"]}, False),
        ({"key_ops": []}, False),
    ],
)
def test_use_and_key_ops_are_honoured(
    private_keys: dict[str, JWK], extra: dict[str, object], can_verify: bool
) -> None:
    members = dict(private_keys["ES256"].to_dict(private=True), **extra)
    key = JWK.from_dict(members)
    assert key.can_verify("ES256") is can_verify
    token = sign_compact(b"ops", private_keys["ES256"])
    if can_verify:
        assert verify_compact(token, key, algorithms=["ES256"]).payload == b"ops"
    else:
        with pytest.raises(KeyUnusable):
            verify_compact(token, key, algorithms=["ES256"])


def test_key_ops_sign_only_signs(private_keys: dict[str, JWK]) -> None:
    members = dict(private_keys["ES256"].to_dict(private=True), key_ops=["sign"])
    key = JWK.from_dict(members)
    assert key.can_sign("ES256")
    assert not key.can_verify("ES256")
    members["key_ops"] = ["verify"]
    assert not JWK.from_dict(members).can_sign("ES256")


@pytest.mark.parametrize("ops", ["verify", ["verify", "verify"], ["verify", 1], {"verify": 1}])
def test_malformed_key_ops_are_refused(private_keys: dict[str, JWK], ops: object) -> None:
    with pytest.raises(InvalidKey):
        JWK.from_dict(dict(private_keys["ES256"].public().to_dict(), key_ops=ops))


def test_public_key_cannot_sign(verify_keys: dict[str, JWK]) -> None:
    for alg in ASYMMETRIC_KINDS:
        assert not verify_keys[alg].can_sign(alg)
        with pytest.raises(ValueError):
            sign_compact(b"x", verify_keys[alg])


def test_crypto_key_exposes_the_cryptography_object(private_keys: dict[str, JWK]) -> None:
    assert isinstance(private_keys["RS256"].crypto_key(), rsa.RSAPrivateKey)
    assert isinstance(private_keys["ES256"].public().crypto_key(), ec.EllipticCurvePublicKey)
    assert isinstance(private_keys["EdDSA"].crypto_key(), ed25519.Ed25519PrivateKey)
    assert isinstance(private_keys["HS256"].crypto_key(), bytes)


def test_random_secrets_that_start_like_json_or_base64_der_are_accepted() -> None:
    # Generated secrets are random bytes: a first byte of '{' or 'M' (one in 256
    # each) must not make key generation fail.
    for prefix in (b"{", b"M", b" {", b"\n-"):
        secret = prefix + bytes(range(40, 80))
        assert JWK.from_secret(secret).kty == "oct"


def test_generating_many_hmac_keys_never_fails() -> None:
    for _ in range(2000):
        assert JWK.generate("HS256").kty == "oct"
