"""Compact JWS: the allow-list, header rules, key binding, exact signature formats, size limit."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tokensmith.jose import (
    DEFAULT_MAX_TOKEN_BYTES,
    JWK,
    SUPPORTED_ALGORITHMS,
    AlgorithmNotAllowed,
    BadSignature,
    JWKSet,
    KeyUnusable,
    MalformedToken,
    TokenError,
    TokenTooLarge,
    UnsupportedHeader,
    VerifiedJWS,
    sign_compact,
    verify_compact,
)
from tokensmith.jose._algorithms import CURVES
from tokensmith.jose._b64 import b64url_decode, b64url_encode

ALGORITHMS = sorted(SUPPORTED_ALGORITHMS)
SECRET = bytes(range(1, 65))  # 64 bytes: serves HS256, HS384 and HS512
NONE_SPELLINGS = ["none", "None", "NONE", "nOnE", "NoNe", "none "]


def b64(data: bytes) -> str:
    return b64url_encode(data).decode("ascii")


def header_text(header: dict[str, Any] | bytes) -> bytes:
    return header if isinstance(header, bytes) else json.dumps(header).encode()


def forge(
    header: dict[str, Any] | bytes, payload: bytes, sign: Callable[[bytes], bytes] | None
) -> str:
    """A token with exactly this header; ``sign`` maps the signing input to a signature."""
    signing_input = b64url_encode(header_text(header)) + b"." + b64url_encode(payload)
    signature = sign(signing_input) if sign is not None else b""
    return (signing_input + b"." + b64url_encode(signature)).decode("ascii")


def hs(secret: bytes = SECRET, digest: str = "sha256") -> Callable[[bytes], bytes]:
    return lambda signing_input: hmac.digest(secret, signing_input, digest)


def segments(token: str) -> tuple[str, str, bytes]:
    header, payload, signature = token.split(".")
    return header, payload, b64url_decode(signature.encode())


def with_signature(token: str, signature: bytes) -> str:
    header, payload, _ = token.split(".")
    return f"{header}.{payload}.{b64(signature)}"


@pytest.fixture(scope="module")
def secret_key() -> JWK:
    return JWK.from_secret(SECRET, kid="hs")


# -- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_sign_and_verify_every_algorithm(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    token = sign_compact(b"hello", private_keys[alg])
    result = verify_compact(token, verify_keys[alg], algorithms=[alg])
    assert isinstance(result, VerifiedJWS)
    assert result.payload == b"hello"
    assert result.header == {"alg": alg, "kid": private_keys[alg].kid}
    assert result.key is verify_keys[alg]
    assert verify_compact(token.encode(), verify_keys[alg], algorithms=[alg]).payload == b"hello"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_tampered_payload_fails(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    header, _, signature = sign_compact(b"hello", private_keys[alg]).split(".")
    token = f"{header}.{b64(b'hellp')}.{signature}"
    with pytest.raises(BadSignature):
        verify_compact(token, verify_keys[alg], algorithms=[alg])


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("position", [0, -1])
def test_flipped_signature_bit_fails(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str, position: int
) -> None:
    token = sign_compact(b"hello", private_keys[alg])
    signature = bytearray(segments(token)[2])
    signature[position] ^= 0x01
    with pytest.raises(BadSignature):
        verify_compact(with_signature(token, bytes(signature)), verify_keys[alg], algorithms=[alg])


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_empty_signature_fails(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    token = sign_compact(b"hello", private_keys[alg])
    with pytest.raises(BadSignature):
        verify_compact(with_signature(token, b""), verify_keys[alg], algorithms=[alg])


@pytest.mark.parametrize("alg", ["HS256", "ES256", "EdDSA"])
def test_signature_by_another_key_of_the_same_type_fails(
    verify_keys: dict[str, JWK], alg: str
) -> None:
    token = sign_compact(b"hello", JWK.generate(alg))
    with pytest.raises(BadSignature):
        verify_compact(token, verify_keys[alg], algorithms=[alg])


# -- the allow-list is mandatory ---------------------------------------------------------


def test_algorithms_is_required(secret_key: JWK) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(TypeError):
        verify_compact(token, secret_key)  # type: ignore[call-arg]


@pytest.mark.parametrize("algorithms", [None, "HS256", b"HS256", 256, "HS256,HS384"])
def test_algorithms_must_be_a_collection(secret_key: JWK, algorithms: Any) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(TypeError):
        verify_compact(token, secret_key, algorithms=algorithms)


@pytest.mark.parametrize("algorithms", [[], (), set(), frozenset(), {}])
def test_algorithms_must_not_be_empty(secret_key: JWK, algorithms: Any) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(ValueError):
        verify_compact(token, secret_key, algorithms=algorithms)


@pytest.mark.parametrize(
    "algorithms",
    [*([spelling] for spelling in NONE_SPELLINGS), ["HS256", "none"], ["hs256"], ["HS1"], [None]],
)
def test_algorithms_refuses_none_and_unknown_names(secret_key: JWK, algorithms: Any) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(ValueError):
        verify_compact(token, secret_key, algorithms=algorithms)


def test_header_alg_must_be_in_the_list(secret_key: JWK) -> None:
    token = sign_compact(b"x", secret_key, alg="HS512")
    assert verify_compact(token, secret_key, algorithms=["HS512"]).payload == b"x"
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, secret_key, algorithms=["HS256", "HS384"])


@pytest.mark.parametrize("alg", ["hs256", "Hs256", "HS256 ", " HS256", "HS256\x00", "HS-256"])
def test_header_alg_is_compared_exactly(secret_key: JWK, alg: str) -> None:
    token = forge({"alg": alg}, b"x", hs())
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize("alg", [None, 1, ["HS256"], {"name": "HS256"}, True])
def test_header_alg_must_be_a_string(secret_key: JWK, alg: object) -> None:
    token = forge({"alg": alg}, b"x", hs())
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])


def test_header_alg_is_required(secret_key: JWK) -> None:
    token = forge({"typ": "JWT"}, b"x", hs())
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])


# -- the algorithm must fit the key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("token_alg", "key_alg"),
    [
        ("HS256", "RS256"),
        ("HS256", "ES256"),
        ("HS256", "EdDSA"),
        ("RS256", "ES256"),
        ("ES256", "RS256"),
        ("ES384", "ES256"),
        ("ES256", "ES512"),
        ("EdDSA", "ES256"),
        ("Ed25519", "EdDSA"),  # the key is marked EdDSA
        ("PS256", "RS256"),  # same modulus, the key is marked RS256
        ("RS256", "HS256"),
    ],
)
def test_algorithm_must_fit_the_key(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], token_alg: str, key_alg: str
) -> None:
    # The kid names the verification key, so the set selects it and must refuse it.
    token = sign_compact(b"x", private_keys[token_alg], kid=verify_keys[key_alg].kid)
    with pytest.raises(KeyUnusable):
        verify_compact(token, verify_keys[key_alg], algorithms=[token_alg, key_alg])
    with pytest.raises(KeyUnusable):
        verify_compact(token, JWKSet([verify_keys[key_alg]]), algorithms=[token_alg, key_alg])


def test_hmac_secret_too_short_for_the_hash_is_unusable() -> None:
    short = JWK.from_secret(SECRET[:32])
    token = forge({"alg": "HS512"}, b"x", hs(SECRET[:32], "sha512"))
    with pytest.raises(KeyUnusable):
        verify_compact(token, short, algorithms=["HS512"])


# -- alg "none" -----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", NONE_SPELLINGS)
@pytest.mark.parametrize("signature", ["empty", "junk", "hmac", "zeros"])
@pytest.mark.parametrize("allowed", ["HS256", "every"])
@pytest.mark.parametrize("key_alg", ["HS256", "RS256"])
def test_none_never_verifies(
    verify_keys: dict[str, JWK], spelling: str, signature: str, allowed: str, key_alg: str
) -> None:
    sign = {
        "empty": None,
        "junk": lambda _: b"junk",
        "hmac": lambda data: hmac.digest(verify_keys["HS256"].crypto_key(), data, "sha256"),
        "zeros": lambda _: bytes(64),
    }[signature]
    token = forge({"alg": spelling}, b'{"sub":"admin"}', sign)
    algorithms = ALGORITHMS if allowed == "every" else [allowed]
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, verify_keys[key_alg], algorithms=algorithms)


def test_none_with_trailing_dot_only(verify_keys: dict[str, JWK]) -> None:
    header = b64(b'{"alg":"none"}')
    for token in (f"{header}.{b64(b'{}')}.", f"{header}.{b64(b'{}')}"):
        with pytest.raises(TokenError):
            verify_compact(token, verify_keys["HS256"], algorithms=ALGORITHMS)


# -- crit, b64 and key-carrying headers ------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "crit": ["x-unknown"], "x-unknown": 1},
        {"alg": "HS256", "crit": ["exp"], "exp": 1},
        {"alg": "HS256", "crit": ["b64"], "b64": True},
        {"alg": "HS256", "crit": []},
        {"alg": "HS256", "crit": "x-unknown"},
        {"alg": "HS256", "crit": None},
    ],
)
def test_crit_is_rejected(secret_key: JWK, header: dict[str, Any]) -> None:
    token = forge(header, b"x", hs())
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "b64": False},
        {"alg": "HS256", "b64": False, "crit": ["b64"]},
        {"alg": "HS256", "b64": "false"},
        {"alg": "HS256", "b64": 0},
        {"alg": "HS256", "b64": None},
    ],
)
def test_unencoded_payload_is_rejected(secret_key: JWK, header: dict[str, Any]) -> None:
    # RFC 7797: the signing input would be the raw payload; sign it that way.
    signing_input = b64url_encode(header_text(header)) + b".x"
    token = f"{b64(header_text(header))}.x.{b64(hs()(signing_input))}"
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize("name", ["crit", "b64"])
def test_sign_compact_will_not_write_crit_or_b64(secret_key: JWK, name: str) -> None:
    with pytest.raises(ValueError):
        sign_compact(b"x", secret_key, alg="HS256", headers={name: ["x"]})


def key_header_value(name: str, attacker: JWK) -> Any:
    if name == "jwk":
        return attacker.public().to_dict()
    if name == "x5c":
        return ["MIIBfake"]
    return "https://attacker.example/keys"


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c"])
def test_key_carrying_headers_are_rejected_by_default(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], name: str
) -> None:
    attacker = JWK.generate("ES256")
    # Signed by the legitimate key: the header alone is refused.
    token = sign_compact(
        b"x", private_keys["ES256"], headers={name: key_header_value(name, attacker)}
    )
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, verify_keys["ES256"], algorithms=["ES256"])
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, JWKSet([verify_keys["ES256"]]), algorithms=["ES256"])


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "x5c"])
def test_key_carrying_headers_are_ignored_when_allowed(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], name: str
) -> None:
    attacker = JWK.generate("ES256", kid=private_keys["ES256"].kid)
    value = key_header_value(name, attacker)
    genuine = sign_compact(b"x", private_keys["ES256"], headers={name: value})
    result = verify_compact(
        genuine, verify_keys["ES256"], algorithms=["ES256"], allow_key_headers=True
    )
    assert result.key is verify_keys["ES256"]
    forged = sign_compact(b"x", attacker, headers={name: value})
    for keys in (verify_keys["ES256"], JWKSet([verify_keys["ES256"]])):
        with pytest.raises(BadSignature):
            verify_compact(forged, keys, algorithms=["ES256"], allow_key_headers=True)


# -- kid and other string members ---------------------------------------------------------


@pytest.mark.parametrize("member", ["kid", "typ", "cty", "x5t", "x5t#S256"])
@pytest.mark.parametrize("value", [1, None, ["a"], {"a": 1}, True, 1.5])
def test_string_header_members_must_be_strings(secret_key: JWK, member: str, value: object) -> None:
    token = forge({"alg": "HS256", member: value}, b"x", hs())
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])
    with pytest.raises(MalformedToken):
        verify_compact(token, JWKSet([secret_key]), algorithms=["HS256"])


# -- only the compact JWS form ----------------------------------------------------------------


def jwe_compact() -> str:
    header = b64(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')
    return ".".join([header, b64(bytes(256)), b64(bytes(12)), b64(b"ciphertext"), b64(bytes(16))])


@pytest.mark.parametrize(
    "token",
    [
        jwe_compact(),
        "a.b.c.d.e",
        "....",
        json.dumps({"payload": "eyJ9", "protected": "e30", "signature": "AAAA"}),
        json.dumps({"payload": "eyJ9", "signatures": [{"protected": "e30", "signature": "AA"}]}),
        json.dumps({"payload": "a.b", "protected": "e30", "signature": "c"}),  # two dots
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e.f",
        "..",
        "e30..",
    ],
)
def test_only_three_segment_compact_form_is_accepted(secret_key: JWK, token: str) -> None:
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "enc": "A256GCM"},
        {"alg": "HS256", "zip": "DEF"},
        {"alg": "dir", "enc": "A128GCM"},
    ],
)
def test_jwe_header_members_are_malformed(secret_key: JWK, header: dict[str, Any]) -> None:
    token = forge(header, b"x", hs())
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize("token", ["é.e30.AA", "e30.e30.AA\u2024", "\uff45\uff53.e30.AA"])
def test_non_ascii_token_is_malformed(secret_key: JWK, token: str) -> None:
    with pytest.raises(MalformedToken):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize("token", [None, 1, ["a", "b", "c"], bytearray(b"a.b.c")])
def test_token_must_be_str_or_bytes(secret_key: JWK, token: Any) -> None:
    with pytest.raises(TypeError):
        verify_compact(token, secret_key, algorithms=["HS256"])


@pytest.mark.parametrize("keys", [None, SECRET, {"keys": []}, "key"])
def test_keys_must_be_a_jwk_or_set(secret_key: JWK, keys: Any) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(TypeError):
        verify_compact(token, keys, algorithms=["HS256"])


# -- exact signature formats --------------------------------------------------------------------


def _signature_starting_with_zero(key: JWK, alg: str) -> tuple[str, bytes]:
    # About 1 signature in 256 starts with a zero octet; 4096 tries fail with
    # probability e**-16.
    for counter in range(4096):
        token = sign_compact(str(counter).encode(), key, alg=alg)
        signature = segments(token)[2]
        if signature[0] == 0:
            return token, signature
    pytest.fail("no signature with a leading zero octet in 4096 tries")


@pytest.fixture(scope="module")
def leading_zero(private_keys: dict[str, JWK]) -> dict[str, tuple[str, bytes]]:
    return {
        alg: _signature_starting_with_zero(private_keys[alg], alg) for alg in ("PS256", "RS256")
    }


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_rsa_signature_one_octet_short_is_rejected(
    verify_keys: dict[str, JWK], leading_zero: dict[str, tuple[str, bytes]], alg: str
) -> None:
    token, signature = leading_zero[alg]
    assert len(signature) == 256
    assert verify_compact(token, verify_keys[alg], algorithms=[alg]).key is verify_keys[alg]
    with pytest.raises(BadSignature):
        verify_compact(with_signature(token, signature[1:]), verify_keys[alg], algorithms=[alg])


def test_openssl_alone_accepts_the_short_pss_signature(
    verify_keys: dict[str, JWK], leading_zero: dict[str, tuple[str, bytes]]
) -> None:
    """Why the length check exists: OpenSSL verifies a PSS signature with its zero octet stripped.

    RFC 8017 8.1.2 requires the signature to be exactly k octets; tokensmith
    enforces that itself (the test above).
    """
    token, signature = leading_zero["PS256"]
    signing_input = token.rsplit(".", 1)[0].encode()
    public = verify_keys["PS256"].crypto_key()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public.verify(signature[1:], signing_input, pss, hashes.SHA256())


@pytest.mark.parametrize("alg", ["PS256", "RS256", "RS512"])
def test_rsa_signature_one_octet_long_is_rejected(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    token = sign_compact(b"x", private_keys[alg])
    signature = segments(token)[2]
    for longer in (b"\x00" + signature, signature + b"\x00"):
        with pytest.raises(BadSignature):
            verify_compact(with_signature(token, longer), verify_keys[alg], algorithms=[alg])


ES_CASES = [("ES256", "P-256"), ("ES384", "P-384"), ("ES512", "P-521")]


def es_parts(token: str, crv: str) -> tuple[int, int]:
    size = CURVES[crv].size
    signature = segments(token)[2]
    assert len(signature) == 2 * size  # raw R || S, fixed length
    return int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")


def raw(r: int, s: int, size: int) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize(("alg", "crv"), ES_CASES)
def test_ecdsa_der_signature_is_rejected(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str, crv: str
) -> None:
    token = sign_compact(b"x", private_keys[alg])
    r, s = es_parts(token, crv)
    der = encode_dss_signature(r, s)
    with pytest.raises(BadSignature):
        verify_compact(with_signature(token, der), verify_keys[alg], algorithms=[alg])


@pytest.mark.parametrize(
    ("alg", "crv", "case"),
    [
        (alg, crv, case)
        for alg, crv in ES_CASES
        for case in ["zeros", "r=0", "s=0", "r=n", "s=n", "r=n+r", "s=n+s", "max"]
        # n + r only fits the fixed-length field on P-521 (n is just above 2**520).
        if crv == "P-521" or "+" not in case
    ],
)
def test_ecdsa_out_of_range_values_are_rejected(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str, crv: str, case: str
) -> None:
    token = sign_compact(b"x", private_keys[alg])
    r, s = es_parts(token, crv)
    size, n = CURVES[crv].size, CURVES[crv].order
    values = {
        "zeros": (0, 0),
        "r=0": (0, s),
        "s=0": (r, 0),
        "r=n": (n, s),
        "s=n": (r, n),
        "r=n+r": (n + r, s),
        "s=n+s": (r, n + s),
        "max": (2 ** (8 * size) - 1, 2 ** (8 * size) - 1),
    }[case]
    with pytest.raises(BadSignature):
        verify_compact(
            with_signature(token, raw(*values, size)), verify_keys[alg], algorithms=[alg]
        )


@pytest.mark.parametrize(("alg", "crv"), ES_CASES)
@pytest.mark.parametrize("delta", [-1, 1])
def test_ecdsa_signature_of_the_wrong_length_is_rejected(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str, crv: str, delta: int
) -> None:
    token = sign_compact(b"x", private_keys[alg])
    signature = segments(token)[2]
    changed = signature[:-1] if delta < 0 else signature + b"\x00"
    with pytest.raises(BadSignature):
        verify_compact(with_signature(token, changed), verify_keys[alg], algorithms=[alg])
    # Leading zero padding of R and S does not rescue a wrong length either.
    r, s = es_parts(token, crv)
    size = CURVES[crv].size
    with pytest.raises(BadSignature):
        verify_compact(
            with_signature(token, raw(r, s, size + 1)), verify_keys[alg], algorithms=[alg]
        )


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_eddsa_signature_of_the_wrong_length_is_rejected(
    private_keys: dict[str, JWK], verify_keys: dict[str, JWK], alg: str
) -> None:
    token = sign_compact(b"x", private_keys[alg])
    signature = segments(token)[2]
    for changed in (signature[:-1], signature + b"\x00", b"\x00" + signature, bytes(64)):
        with pytest.raises(BadSignature):
            verify_compact(with_signature(token, changed), verify_keys[alg], algorithms=[alg])


def test_unbound_ed25519_key_accepts_both_names() -> None:
    private = JWK(JWK.generate("EdDSA").crypto_key())
    public = private.public()
    for alg in ("EdDSA", "Ed25519"):
        token = sign_compact(b"x", private, alg=alg)
        assert verify_compact(token, public, algorithms=[alg]).header["alg"] == alg


# -- size limit ------------------------------------------------------------------------------


def test_default_maximum_is_8_kib() -> None:
    assert DEFAULT_MAX_TOKEN_BYTES == 8192


def token_of_length(secret_key: JWK, length: int) -> str:
    # base64url lengths skip 4n+1, so vary both the kid and the payload to land exactly.
    base = len(sign_compact(b"", secret_key, alg="HS256", kid=""))
    start = max(0, (length - base) * 3 // 4 - 6)
    for kid_length in range(4):
        for size in range(start, start + 12):
            token = sign_compact(b"a" * size, secret_key, alg="HS256", kid="k" * kid_length)
            if len(token) == length:
                return token
    pytest.fail(f"no token of length {length}")


@pytest.mark.parametrize("as_bytes", [False, True])
def test_default_size_boundary(secret_key: JWK, as_bytes: bool) -> None:
    fits = token_of_length(secret_key, DEFAULT_MAX_TOKEN_BYTES)
    too_big = token_of_length(secret_key, DEFAULT_MAX_TOKEN_BYTES + 1)
    if as_bytes:
        assert verify_compact(fits.encode(), secret_key, algorithms=["HS256"])
        with pytest.raises(TokenTooLarge):
            verify_compact(too_big.encode(), secret_key, algorithms=["HS256"])
    else:
        assert verify_compact(fits, secret_key, algorithms=["HS256"])
        with pytest.raises(TokenTooLarge):
            verify_compact(too_big, secret_key, algorithms=["HS256"])


def test_size_limit_is_configurable(secret_key: JWK) -> None:
    token = sign_compact(b"x" * 20_000, secret_key, alg="HS256")
    with pytest.raises(TokenTooLarge):
        verify_compact(token, secret_key, algorithms=["HS256"])
    assert verify_compact(token, secret_key, algorithms=["HS256"], max_size=len(token))
    with pytest.raises(TokenTooLarge):
        verify_compact(token, secret_key, algorithms=["HS256"], max_size=len(token) - 1)
    small = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises(TokenTooLarge):
        verify_compact(small, secret_key, algorithms=["HS256"], max_size=len(small) - 1)


def test_token_too_large_is_a_malformed_token() -> None:
    assert issubclass(TokenTooLarge, MalformedToken)
    assert TokenTooLarge.code == "token_too_large"


@pytest.mark.parametrize("as_bytes", [False, True])
def test_oversized_token_is_rejected_before_any_decoding(
    secret_key: JWK, monkeypatch: pytest.MonkeyPatch, as_bytes: bool
) -> None:
    import tokensmith.jose._header as header_module
    import tokensmith.jose.jws as jws_module

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoding started before the size check")

    for module, name in [
        (header_module, "b64url_decode"),
        (header_module, "loads_object"),
        (jws_module, "b64url_decode"),
        (jws_module, "parse_header"),
    ]:
        monkeypatch.setattr(module, name, must_not_run)
    # Not even valid base64url: any decoding attempt would say malformed instead.
    token = "!" * (1 << 20) + ".e30.AAAA"
    with pytest.raises(TokenTooLarge) as info:
        verify_compact(token.encode() if as_bytes else token, secret_key, algorithms=["HS256"])
    assert info.value.code == "token_too_large"


@pytest.mark.parametrize("max_size", [0, -1, True, 1.5, "8192", None])
def test_max_size_must_be_a_positive_integer(secret_key: JWK, max_size: Any) -> None:
    # The same rule as JWTPolicy(max_token_size=...): misuse is a TypeError/ValueError
    # at the call, not a TokenTooLarge for every token.
    token = sign_compact(b"x", secret_key, alg="HS256")
    with pytest.raises((TypeError, ValueError)):
        verify_compact(token, secret_key, algorithms=["HS256"], max_size=max_size)


# -- signing options and misuse ------------------------------------------------------------------


def test_sign_compact_header_options(secret_key: JWK) -> None:
    def header_of(token: str) -> dict[str, Any]:
        return json.loads(b64url_decode(token.split(".")[0].encode()))

    assert header_of(sign_compact(b"x", secret_key, alg="HS256")) == {"alg": "HS256", "kid": "hs"}
    assert header_of(sign_compact(b"x", secret_key, alg="HS256", include_kid=False)) == {
        "alg": "HS256"
    }
    assert header_of(sign_compact(b"x", secret_key, alg="HS384", kid="other", typ="at+jwt")) == {
        "alg": "HS384",
        "kid": "other",
        "typ": "at+jwt",
    }
    token = sign_compact(b"x", secret_key, alg="HS256", headers={"cty": "text/plain"})
    assert header_of(token) == {"alg": "HS256", "kid": "hs", "cty": "text/plain"}
    assert verify_compact(token, secret_key, algorithms=["HS256"]).header["cty"] == "text/plain"


def test_sign_compact_will_not_let_headers_override_alg(secret_key: JWK) -> None:
    with pytest.raises(ValueError):
        sign_compact(b"x", secret_key, alg="HS256", headers={"alg": "none"})


def test_sign_compact_defaults_to_the_key_alg(private_keys: dict[str, JWK]) -> None:
    token = sign_compact(b"x", private_keys["ES384"])
    assert json.loads(b64url_decode(token.split(".")[0].encode()))["alg"] == "ES384"


def test_sign_compact_misuse(secret_key: JWK, private_keys: dict[str, JWK]) -> None:
    with pytest.raises(TypeError):
        sign_compact("text", secret_key, alg="HS256")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign_compact(b"x", SECRET, alg="HS256")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sign_compact(b"x", secret_key)  # the key names no alg
    with pytest.raises(ValueError):
        sign_compact(b"x", secret_key, alg="ES256")
    with pytest.raises(ValueError):
        sign_compact(b"x", secret_key, alg="none")
    with pytest.raises(ValueError):
        sign_compact(b"x", private_keys["ES256"], alg="ES384")


def test_header_cache_never_skips_per_call_checks(secret_key: JWK) -> None:
    token = sign_compact(b"x", secret_key, alg="HS256", headers={"jku": "https://a.example"})
    first = verify_compact(token, secret_key, algorithms=["HS256"], allow_key_headers=True)
    first.header["alg"] = "none"
    first.header.pop("jku")
    with pytest.raises(UnsupportedHeader):
        verify_compact(token, secret_key, algorithms=["HS256"])
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, secret_key, algorithms=["HS384"], allow_key_headers=True)
    again = verify_compact(token, secret_key, algorithms=["HS256"], allow_key_headers=True)
    assert again.header["alg"] == "HS256"
    assert again.header["jku"] == "https://a.example"
