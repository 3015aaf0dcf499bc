"""JWK Sets: unique kids, lookup by kid only, no key-by-key trial, no secrets published."""

from __future__ import annotations

import json
import time

import pytest

from tokensmith.jose import (
    JWK,
    AmbiguousKey,
    BadSignature,
    InvalidKeySet,
    KeyNotFound,
    KeyUnusable,
    sign_compact,
    verify_compact,
)
from tokensmith.jose._b64 import b64url_decode, b64url_encode
from tokensmith.jose.jwkset import MAX_KEYS, JWKSet

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@pytest.fixture(scope="module")
def es_a() -> JWK:
    return JWK.generate("ES256", kid="a")


@pytest.fixture(scope="module")
def es_b() -> JWK:
    return JWK.generate("ES256", kid="b")


@pytest.fixture(scope="module")
def ed() -> JWK:
    return JWK.generate("EdDSA", kid="ed")


def test_lookup_by_kid(es_a: JWK, es_b: JWK, ed: JWK) -> None:
    keys = JWKSet([es_a.public(), es_b.public(), ed.public()])
    assert len(keys) == 3
    assert keys.get("b") is not None
    assert keys.get("b").thumbprint() == es_b.thumbprint()  # type: ignore[union-attr]
    assert keys["ed"].kty == "OKP"
    assert "a" in keys
    assert "z" not in keys
    assert keys.get("z") is None
    with pytest.raises(KeyError):
        keys["z"]
    assert [key.kid for key in keys] == ["a", "b", "ed"]


@pytest.mark.parametrize("kid", ["A", "a ", " a", "", "a\x00", "aa"])
def test_kid_lookup_is_exact(es_a: JWK, kid: str) -> None:
    keys = JWKSet([es_a.public()])
    assert keys.get(kid) is None
    with pytest.raises(KeyNotFound):
        keys.resolve(kid, "ES256")


def test_from_dict_and_json_round_trip(es_a: JWK, ed: JWK, private_keys: dict[str, JWK]) -> None:
    rsa = private_keys["RS256"].public()
    keys = JWKSet([es_a.public(), ed.public(), rsa])
    document = keys.to_dict()
    assert [member["kid"] for member in document["keys"]] == ["a", "ed", rsa.kid]
    again = JWKSet.from_dict(document)
    assert again.to_dict() == document
    assert JWKSet.from_json(keys.to_json()).to_dict() == document
    assert json.loads(keys.to_json()) == document


def test_public_export_carries_no_private_members(es_a: JWK, ed: JWK) -> None:
    private_set = JWKSet([es_a, ed])
    for member in private_set.to_dict()["keys"]:
        assert not PRIVATE_MEMBERS & set(member)
    assert all("d" in member for member in private_set.to_dict(private=True)["keys"])


def test_hmac_secrets_are_never_published_unless_asked() -> None:
    secrets = JWKSet([JWK.from_secret(bytes(range(32)), kid="s1"), JWK.generate("HS512")])
    assert secrets.to_dict() == {"keys": []}
    assert b64url_encode(bytes(range(32))).decode() not in secrets.to_json()
    private = secrets.to_dict(private=True)
    assert [member["kty"] for member in private["keys"]] == ["oct", "oct"]
    assert JWKSet.from_dict(private).get("s1") is not None


def test_two_keys_under_one_kid_are_refused(es_a: JWK, es_b: JWK) -> None:
    twin = JWK(es_b.crypto_key(), kid="a")
    with pytest.raises(InvalidKeySet):
        JWKSet([es_a.public(), twin.public()])
    document = {"keys": [es_a.public().to_dict(), dict(es_b.public().to_dict(), kid="a")]}
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(document)


def test_the_same_key_twice_is_refused(es_a: JWK) -> None:
    with pytest.raises(InvalidKeySet):
        JWKSet([es_a.public(), es_a.public()])


def test_mixing_hmac_secrets_with_asymmetric_keys_is_refused(es_a: JWK) -> None:
    secret = JWK.from_secret(bytes(range(32)), kid="s")
    with pytest.raises(InvalidKeySet):
        JWKSet([es_a.public(), secret])
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(
            {"keys": [es_a.public().to_dict(), secret.to_dict(private=True)]},
        )


def test_unsupported_key_types_and_curves_are_skipped(es_a: JWK) -> None:
    document = {
        "keys": [
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
            {"kty": "OKP", "crv": "X25519", "x": b64url_encode(bytes(32)).decode(), "kid": "x"},
            {"kty": "OKP", "crv": "Ed448", "x": "AA", "kid": "ed448"},
            {"kty": "PQC", "kid": "future"},
            {"kid": "no-kty"},
            es_a.public().to_dict(),
        ]
    }
    keys = JWKSet.from_dict(document)
    assert [key.kid for key in keys] == ["a"]


def test_an_invalid_supported_key_fails_the_whole_set(es_a: JWK) -> None:
    broken = dict(es_a.public().to_dict(), kid="broken", x="AA")
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": [es_a.public().to_dict(), broken]})


def test_a_short_hmac_secret_fails_the_set() -> None:
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": [{"kty": "oct", "k": b64url_encode(bytes(16)).decode()}]})


@pytest.mark.parametrize(
    "document",
    [
        [],
        "keys",
        {},
        {"keys": None},
        {"keys": {}},
        {"keys": "a"},
        {"keys": [1]},
        {"keys": [["kty", "EC"]]},
    ],
)
def test_malformed_sets_are_refused(document: object) -> None:
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(document)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "[]", '{"keys":[]', '{"keys":[],"keys":[]}', "null"])
def test_from_json_refuses_malformed_text(text: str) -> None:
    with pytest.raises(InvalidKeySet):
        JWKSet.from_json(text)


def test_the_number_of_keys_is_bounded(es_a: JWK) -> None:
    member = es_a.public().to_dict()
    too_many = [dict(member, kid=str(i)) for i in range(MAX_KEYS + 1)]
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": too_many})
    # Even entries that would be skipped count towards the bound.
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": [{"kty": "unknown"}] * (MAX_KEYS + 1)})
    assert len(JWKSet.from_dict({"keys": too_many[:MAX_KEYS]})) == MAX_KEYS


def test_constructor_takes_only_jwk_objects(es_a: JWK) -> None:
    with pytest.raises(TypeError):
        JWKSet([es_a.public().to_dict()])  # type: ignore[list-item]


# -- resolving the key for a token ----------------------------------------------------


def test_resolve_by_kid(es_a: JWK, es_b: JWK) -> None:
    keys = JWKSet([es_a.public(), es_b.public()])
    assert keys.resolve("b", "ES256").kid == "b"
    with pytest.raises(KeyNotFound):
        keys.resolve("c", "ES256")


def test_resolve_without_kid_takes_the_only_candidate(es_a: JWK, ed: JWK) -> None:
    keys = JWKSet([es_a.public(), ed.public()])
    assert keys.resolve(None, "ES256").kid == "a"
    assert keys.resolve(None, "EdDSA").kid == "ed"
    with pytest.raises(KeyNotFound):
        keys.resolve(None, "RS256")


def test_resolve_without_kid_among_several_candidates_is_ambiguous(es_a: JWK, es_b: JWK) -> None:
    keys = JWKSet([es_a.public(), es_b.public()])
    with pytest.raises(AmbiguousKey):
        keys.resolve(None, "ES256")


def test_token_without_kid_is_not_tried_against_each_key(es_a: JWK, es_b: JWK) -> None:
    # es_a would verify this token; a verifier that tried keys one by one would accept it.
    token = sign_compact(b"payload", es_a, include_kid=False)
    assert "kid" not in json.loads(b64url_decode_header(token))
    keys = JWKSet([es_b.public(), es_a.public()])
    with pytest.raises(AmbiguousKey):
        verify_compact(token, keys, algorithms=["ES256"])
    assert verify_compact(token, JWKSet([es_a.public()]), algorithms=["ES256"]).key.kid == "a"


def test_wrong_kid_does_not_fall_back_to_the_right_key(es_a: JWK, es_b: JWK) -> None:
    token = sign_compact(b"payload", es_a, kid="b")
    keys = JWKSet([es_a.public(), es_b.public()])
    with pytest.raises(BadSignature):
        verify_compact(token, keys, algorithms=["ES256"])


def test_unknown_kid_is_key_not_found(es_a: JWK, es_b: JWK) -> None:
    token = sign_compact(b"payload", es_a, kid="c")
    with pytest.raises(KeyNotFound):
        verify_compact(token, JWKSet([es_a.public(), es_b.public()]), algorithms=["ES256"])


def test_kid_naming_a_key_of_another_type_is_unusable(es_a: JWK, ed: JWK) -> None:
    token = sign_compact(b"payload", es_a, kid="ed")
    keys = JWKSet([es_a.public(), ed.public()])
    with pytest.raises(KeyUnusable):
        verify_compact(token, keys, algorithms=["ES256", "EdDSA"])


def test_verified_result_names_the_key_used(es_a: JWK, es_b: JWK) -> None:
    token = sign_compact(b"payload", es_b)
    result = verify_compact(token, JWKSet([es_a.public(), es_b.public()]), algorithms=["ES256"])
    assert result.key.kid == "b"
    assert result.payload == b"payload"
    assert result.header == {"alg": "ES256", "kid": "b"}


def test_encryption_keys_in_a_set_never_verify(es_a: JWK) -> None:
    enc = JWK.from_dict(dict(es_a.public().to_dict(), use="enc", kid="enc"))
    keys = JWKSet([enc])
    token = sign_compact(b"payload", es_a, kid="enc")
    with pytest.raises(KeyUnusable):
        verify_compact(token, keys, algorithms=["ES256"])
    token = sign_compact(b"payload", es_a, include_kid=False)
    with pytest.raises(KeyNotFound):
        verify_compact(token, keys, algorithms=["ES256"])


def b64url_decode_header(token: str) -> bytes:
    return b64url_decode(token.split(".")[0].encode())


# -- hostile documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        {"kty": "EC", "crv": [1], "x": "a", "y": "b"},
        {"kty": "EC", "crv": {"P-256": 1}},
        {"kty": "OKP", "crv": None, "x": "a"},
        {"kty": ["RSA"]},
        {"kty": {"RSA": 1}},
        {"kty": 1},
        {"kty": "RSA", "n": ["a"], "e": "AQAB"},
    ],
)
def test_members_of_the_wrong_type_fail_the_set_not_the_caller(
    es_a: JWK, member: dict[str, object]
) -> None:
    for public_only in (False, True):
        with pytest.raises(InvalidKeySet):
            JWKSet.from_dict({"keys": [es_a.public().to_dict(), member]}, public_only=public_only)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("kid", ["a"]),
        ("kid", {"a": 1}),
        ("alg", ["ES256"]),
        ("use", {"sig": 1}),
        ("use", 1),
        ("key_ops", "verify"),
        ("key_ops", [["verify"]]),
        ("key_ops", {"verify": 1}),
    ],
)
def test_optional_members_of_the_wrong_type_fail_the_set(
    es_a: JWK, name: str, value: object
) -> None:
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": [dict(es_a.public().to_dict(), **{name: value})]})


def test_public_only_drops_private_members_and_secrets(
    es_a: JWK, private_keys: dict[str, JWK]
) -> None:
    rsa_key = JWK(private_keys["RS256"].crypto_key(), kid="r")
    secret = JWK.from_secret(bytes(range(32)), kid="s")
    document = {
        "keys": [
            es_a.to_dict(private=True),
            rsa_key.to_dict(private=True),
            secret.to_dict(private=True),
            JWK.generate("EdDSA", kid="pub").public().to_dict(),
        ]
    }
    keys = JWKSet.from_dict(document, public_only=True)
    assert [key.kid for key in keys] == ["a", "r", "pub"]
    assert not any(key.is_private for key in keys)
    assert keys.dropped_private == ("a", "r", "s")
    assert keys["a"].thumbprint() == es_a.thumbprint()
    # Without public_only the same document is refused (a secret beside public keys).
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(document)
    assert JWKSet.from_dict({"keys": [es_a.public().to_dict()]}).dropped_private == ()
    # A secret is left out unread, whatever its members hold.
    assert len(JWKSet.from_dict({"keys": [{"kty": "oct", "k": 5}]}, public_only=True)) == 0
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict({"keys": [{"kty": "oct", "k": 5}]})


def test_public_only_never_recovers_rsa_primes() -> None:
    """An RSA JWK with a prime n and a matching d but no CRT members: prime recovery
    from it spins for many CPU-seconds. Parsed public-only, it costs nothing."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    prime = rsa.generate_private_key(public_exponent=65537, key_size=4096).private_numbers().p
    member = {
        "kty": "RSA",
        "kid": "x",
        "n": b64url_encode(prime.to_bytes(256, "big")).decode(),
        "e": "AQAB",
        "d": b64url_encode(pow(65537, -1, prime - 1).to_bytes(256, "big")).decode(),
    }
    started = time.process_time()
    keys = JWKSet.from_json(json.dumps({"keys": [member]}), public_only=True)
    assert time.process_time() - started < 0.5
    assert keys.dropped_private == ("x",) and not keys["x"].is_private
