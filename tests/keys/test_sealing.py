"""At-rest sealing: AES-256-GCM bound to its row, and secrets never in a message or repr."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokensmith.errors import TokensmithError
from tokensmith.jose import JWK
from tokensmith.keys import MasterKey, SealError, seal, seal_jwk, unseal, unseal_jwk

RAW = bytes(range(32))
PLAINTEXT = b'{"d":"a-private-key-that-must-never-leak"}'
KID = b"kid-1"


@pytest.fixture(scope="module")
def master() -> MasterKey:
    return MasterKey(RAW)


def counting_random() -> Callable[[int], bytes]:
    """A deterministic random source that never repeats itself."""
    state = {"n": 0}

    def random(n: int) -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(n, "big")

    return random


def assert_secret_free(text: str, *secrets: bytes) -> None:
    for secret in secrets:
        for form in (
            secret,
            base64.b64encode(secret),
            base64.urlsafe_b64encode(secret).rstrip(b"="),
            secret.hex().encode(),
        ):
            assert form.decode("latin-1") not in text
        assert repr(secret) not in text


# -- round trips -------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [b"", b"x", PLAINTEXT, bytes(range(256)) * 20])
def test_round_trip(master: MasterKey, plaintext: bytes) -> None:
    blob = seal(master, plaintext, context=KID)
    assert unseal(master, blob, context=KID) == plaintext
    assert len(blob) == 1 + 12 + len(plaintext) + 16
    # Short plaintexts can occur by chance in random bytes; long ones cannot.
    if len(plaintext) >= 16:
        assert plaintext not in blob


def test_format_is_version_nonce_and_aes_gcm_with_version_and_context_as_aad(
    master: MasterKey,
) -> None:
    # Known-answer from an independent AES-GCM: pins the stored format, which must not drift.
    nonce = bytes(range(100, 112))
    blob = seal(master, PLAINTEXT, context=KID, random=lambda n: nonce[:n])
    expected = b"\x01" + nonce + AESGCM(RAW).encrypt(nonce, PLAINTEXT, b"\x01" + KID)
    assert blob == expected


def test_injected_random_gives_deterministic_output(master: MasterKey) -> None:
    first = seal(master, PLAINTEXT, context=KID, random=lambda n: b"\x07" * n)
    second = seal(master, PLAINTEXT, context=KID, random=lambda n: b"\x07" * n)
    assert first == second
    assert first[1:13] == b"\x07" * 12


def test_nonces_differ_between_two_seals(master: MasterKey) -> None:
    first = seal(master, PLAINTEXT, context=KID)
    second = seal(master, PLAINTEXT, context=KID)
    assert first[1:13] != second[1:13]
    assert first != second
    assert unseal(master, first, context=KID) == unseal(master, second, context=KID)


# -- what must fail ------------------------------------------------------------


def test_wrong_master_key_fails(master: MasterKey) -> None:
    blob = seal(master, PLAINTEXT, context=KID)
    other = MasterKey(bytes(reversed(RAW)))
    with pytest.raises(SealError, match="does not authenticate"):
        unseal(other, blob, context=KID)


def test_wrong_context_fails(master: MasterKey) -> None:
    blob = seal(master, PLAINTEXT, context=KID)
    for context in (b"kid-2", b"kid-1 ", b"KID-1", b"kid-"):
        with pytest.raises(SealError):
            unseal(master, blob, context=context)


def test_every_flipped_bit_fails(master: MasterKey) -> None:
    blob = seal(master, b"short secret", context=KID)
    for index in range(len(blob)):
        for bit in (0x01, 0x80):
            damaged = bytearray(blob)
            damaged[index] ^= bit
            with pytest.raises(SealError):
                unseal(master, bytes(damaged), context=KID)


@pytest.mark.parametrize("version", [0, 2, 0xFF])
def test_unknown_version_fails(master: MasterKey, version: int) -> None:
    blob = seal(master, PLAINTEXT, context=KID)
    with pytest.raises(SealError, match="unknown format version"):
        unseal(master, bytes([version]) + blob[1:], context=KID)


def test_every_truncation_fails(master: MasterKey) -> None:
    blob = seal(master, b"short secret", context=KID)
    for length in range(len(blob)):
        with pytest.raises(SealError):
            unseal(master, blob[:length], context=KID)
    with pytest.raises(SealError):
        unseal(master, blob + b"\x00", context=KID)


def test_seal_error_is_in_the_tree_with_a_stable_code(master: MasterKey) -> None:
    with pytest.raises(SealError) as caught:
        unseal(master, b"\x01" * 40, context=KID)
    assert isinstance(caught.value, TokensmithError)
    assert caught.value.code == "seal_error"
    assert caught.value.to_dict()["code"] == "seal_error"


def test_misuse_is_not_a_seal_error(master: MasterKey) -> None:
    with pytest.raises(ValueError, match="context"):
        seal(master, PLAINTEXT, context=b"")
    with pytest.raises(TypeError):
        seal(master, PLAINTEXT, context="kid-1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        seal(master, "text", context=KID)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        seal(RAW, PLAINTEXT, context=KID)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="12 bytes"):
        seal(master, PLAINTEXT, context=KID, random=lambda n: b"\x00" * (n - 1))
    with pytest.raises(TypeError):
        unseal(master, bytearray(40), context=KID)  # type: ignore[arg-type]


# -- the master key --------------------------------------------------------------


def test_generate_uses_the_random_source() -> None:
    key = MasterKey.generate(random=lambda n: bytes(range(n)))
    assert key.to_text() == base64.urlsafe_b64encode(RAW).rstrip(b"=").decode()
    assert MasterKey.generate().to_text() != MasterKey.generate().to_text()


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(RAW).decode().rstrip("="),
        base64.urlsafe_b64encode(RAW).decode(),
        base64.b64encode(RAW).decode(),
        base64.b64encode(RAW).decode().rstrip("="),
        "  " + base64.b64encode(RAW).decode() + "\n",
    ],
    ids=["base64url", "base64url-padded", "base64", "base64-unpadded", "whitespace"],
)
def test_from_text_accepts(master: MasterKey, text: str) -> None:
    key = MasterKey.from_text(text)
    assert key.to_text() == master.to_text()
    # Same key, not just the same text: it opens what the other sealed.
    assert unseal(key, seal(master, PLAINTEXT, context=KID), context=KID) == PLAINTEXT


def test_to_text_round_trips() -> None:
    key = MasterKey.generate()
    assert MasterKey.from_text(key.to_text()).to_text() == key.to_text()
    assert len(key.to_text()) == 43


# Raw bytes chosen so both alphabets' special characters appear in the encodings.
SPECIAL = bytes([0xFB, 0xFF, 0xBF]) * 10 + b"\xfb\xf0"
MIXED = base64.b64encode(SPECIAL).decode()[:-8] + base64.urlsafe_b64encode(SPECIAL).decode()[-8:]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (base64.urlsafe_b64encode(RAW[:31]).decode(), "32 bytes, not 31"),
        (base64.urlsafe_b64encode(RAW + b"\x00").decode(), "32 bytes, not 33"),
        (RAW.hex(), "32 bytes, not 48"),
        ("", "32 bytes, not 0"),
        ("not base64 at all!", "not base64"),
        (base64.b64encode(RAW).decode()[:20] + " " + base64.b64encode(RAW).decode()[20:], "not"),
        (base64.b64encode(RAW).decode() + "=", "not"),
        (base64.b64encode(RAW).decode()[:-2] + "B=", "canonical"),
        (base64.b64encode(RAW).decode()[:-1] + "é", "not base64"),
        (MIXED, "mixes"),
    ],
    ids=[
        "short",
        "long",
        "hex",
        "empty",
        "garbage",
        "inner-space",
        "extra-padding",
        "trailing-bits",
        "non-ascii",
        "mixed-alphabets",
    ],
)
def test_from_text_refuses_without_echoing(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        MasterKey.from_text(text)
    message = str(caught.value)
    stripped = text.strip()
    assert len(stripped) < 4 or stripped not in message
    assert caught.value.__cause__ is None


def test_from_text_refuses_mixed_alphabets_sanity() -> None:
    # The mixed-alphabet case above must really contain both alphabets' characters.
    assert set(MIXED) & set("+/") and set(MIXED) & set("-_")


def test_from_text_refuses_bytes() -> None:
    with pytest.raises(TypeError):
        MasterKey.from_text(base64.b64encode(RAW))  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [b"", RAW[:16], RAW + b"\x00", "x" * 32])
def test_constructor_refuses_anything_but_32_bytes(raw: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        MasterKey(raw)  # type: ignore[arg-type]


def test_repr_never_shows_the_key(master: MasterKey) -> None:
    for text in (repr(master), str(master), f"{master!r}", repr([master])):
        assert_secret_free(text, RAW)
        assert master.to_text() not in text
    assert not hasattr(master, "__dict__")


def test_errors_never_contain_the_key_or_the_plaintext(master: MasterKey) -> None:
    blob = seal(master, PLAINTEXT, context=KID)
    other = MasterKey.generate()
    failures: list[Callable[[], object]] = [
        lambda: unseal(other, blob, context=KID),
        lambda: unseal(master, blob, context=b"kid-2"),
        lambda: unseal(master, blob[:-1], context=KID),
        lambda: unseal(master, blob[:5], context=KID),
        lambda: unseal(master, b"\x09" + blob[1:], context=KID),
    ]
    for failure in failures:
        with pytest.raises(SealError) as caught:
            failure()
        exc = caught.value
        for text in (str(exc), repr(exc), str(exc.to_dict())):
            assert_secret_free(text, RAW, PLAINTEXT, other.to_text().encode())
        # No chained cryptography exception to drag secrets into a traceback.
        assert exc.__cause__ is None
        assert exc.__suppress_context__ or exc.__context__ is None


# -- sealed JWKs ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA", "HS256"])
def test_jwk_round_trip(master: MasterKey, private_keys: dict[str, JWK], alg: str) -> None:
    key = private_keys[alg]
    blob = seal_jwk(master, key)
    restored = unseal_jwk(master, blob, key.kid)
    assert restored.is_private
    assert restored.kid == key.kid
    assert restored.to_dict(private=True) == key.to_dict(private=True)
    private_d = key.to_dict(private=True).get("d") or key.to_dict(private=True)["k"]
    assert private_d.encode() not in blob


def test_jwk_blob_moved_to_another_row_fails(
    master: MasterKey, private_keys: dict[str, JWK]
) -> None:
    first, second = private_keys["ES256"], private_keys["EdDSA"]
    blob = seal_jwk(master, first)
    with pytest.raises(SealError):
        unseal_jwk(master, blob, second.kid)


def test_jwk_context_is_separated_from_plain_seals(
    master: MasterKey, private_keys: dict[str, JWK]
) -> None:
    # A generic seal whose context happens to equal the kid is not a sealed signing key.
    key = private_keys["ES256"]
    blob = seal(master, key.to_json(private=True).encode(), context=key.kid.encode())
    with pytest.raises(SealError):
        unseal_jwk(master, blob, key.kid)


def test_jwk_public_key_is_not_sealed(master: MasterKey, private_keys: dict[str, JWK]) -> None:
    with pytest.raises(ValueError, match="private"):
        seal_jwk(master, private_keys["ES256"].public())


def test_unsealed_garbage_with_valid_tag_is_a_seal_error(master: MasterKey) -> None:
    # Only a broken writer produces this; it must still not escape as InvalidKey or leak.
    blob = seal(master, b"not json", context=b"tokensmith.keys.jwk\x00kid-x")
    with pytest.raises(SealError, match="not a valid JWK"):
        unseal_jwk(master, blob, "kid-x")
