"""Private keys at rest: AES-256-GCM under a master key, bound to the row they belong to.

A sealed blob is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``.
The associated data is the version byte followed by the caller's ``context``
(for a signing key, its kid), so a blob copied into another row, or re-labelled
with another version, fails to unseal. Nonces are random: at 96 bits that is
safe for far more seals (about 2**32) than a key table will ever see.

Nothing here reads the environment or a file; the server finds the master key
text and hands it to ``MasterKey.from_text``.
"""

from __future__ import annotations

import binascii
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokensmith.clock import RandomSource, system_random
from tokensmith.errors import TokensmithError
from tokensmith.jose import JWK, InvalidKey

__all__ = ["MasterKey", "SealError", "seal", "seal_jwk", "unseal", "unseal_jwk"]

KEY_SIZE = 32
_VERSION = 1
_NONCE_SIZE = 12
_TAG_SIZE = 16
# Domain separation: a blob sealed for another purpose under the same master key,
# with a context that happens to equal a kid, is still refused as a signing key.
_JWK_CONTEXT = b"tokensmith.keys.jwk\x00"
_TO_STANDARD = str.maketrans("-_", "+/")
_TO_URLSAFE = str.maketrans("+/", "-_")


class SealError(TokensmithError):
    """A sealed blob could not be opened: wrong master key, wrong row, or damaged."""

    code = "seal_error"
    description = "The sealed data could not be opened."


class MasterKey:
    """The 32-byte AES-256 key that seals private keys at rest. Its repr hides it."""

    __slots__ = ("_cipher", "_key")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError("a master key is bytes")
        if len(key) != KEY_SIZE:
            raise ValueError(f"a master key is exactly {KEY_SIZE} bytes, not {len(key)}")
        self._key = key
        self._cipher = AESGCM(key)

    @classmethod
    def generate(cls, random: RandomSource = system_random) -> MasterKey:
        return cls(random(KEY_SIZE))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse base64url or standard base64 (padded or not) of exactly 32 bytes.

        Surrounding whitespace is ignored (key files end with a newline). Errors
        name the problem and never echo the text: it may be a real key with a typo.
        """
        if not isinstance(text, str):
            raise TypeError("master key text must be a str")
        stripped = text.strip()
        if not stripped.isascii():
            raise ValueError("master key text is not base64 or base64url")
        if ("-" in stripped or "_" in stripped) and ("+" in stripped or "/" in stripped):
            raise ValueError("master key text mixes the base64 and base64url alphabets")
        standard = stripped.translate(_TO_STANDARD)
        unpadded = standard.rstrip("=")
        try:
            raw = binascii.a2b_base64(unpadded + "=" * (-len(unpadded) % 4), strict_mode=True)
        except binascii.Error:
            raise ValueError("master key text is not base64 or base64url") from None
        # One text per key: re-encoding refuses stray padding and non-zero trailing bits.
        canonical = binascii.b2a_base64(raw, newline=False).decode("ascii")
        if standard not in (canonical, canonical.rstrip("=")):
            raise ValueError("master key text is not canonical base64")
        if len(raw) != KEY_SIZE:
            raise ValueError(f"master key text must encode {KEY_SIZE} bytes, not {len(raw)}")
        return cls(raw)

    def to_text(self) -> str:
        """Unpadded base64url: what ``from_text`` reads and a key file holds."""
        text = binascii.b2a_base64(self._key, newline=False).decode("ascii")
        return text.rstrip("=").translate(_TO_URLSAFE)

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"


def _associated_data(context: bytes) -> bytes:
    if not isinstance(context, bytes):
        raise TypeError("context must be bytes")
    if not context:
        # Without a context a blob fits every row; the binding is the point.
        raise ValueError("context must not be empty")
    return bytes((_VERSION,)) + context


def seal(
    master: MasterKey,
    plaintext: bytes,
    *,
    context: bytes,
    random: RandomSource = system_random,
) -> bytes:
    """Encrypt and authenticate ``plaintext``, bound to ``context`` (e.g. the kid)."""
    if not isinstance(master, MasterKey):
        raise TypeError("master must be a MasterKey")
    if not isinstance(plaintext, bytes):
        raise TypeError("plaintext must be bytes")
    aad = _associated_data(context)
    nonce = random(_NONCE_SIZE)
    if not isinstance(nonce, bytes) or len(nonce) != _NONCE_SIZE:
        raise ValueError(f"random must return {_NONCE_SIZE} bytes")
    return aad[:1] + nonce + master._cipher.encrypt(nonce, plaintext, aad)


def unseal(master: MasterKey, blob: bytes, *, context: bytes) -> bytes:
    """The plaintext of a ``seal`` blob, or ``SealError`` if anything does not match."""
    if not isinstance(master, MasterKey):
        raise TypeError("master must be a MasterKey")
    if not isinstance(blob, bytes):
        raise TypeError("blob must be bytes")
    aad = _associated_data(context)
    if len(blob) < 1 + _NONCE_SIZE + _TAG_SIZE:
        raise SealError("the sealed blob is too short")
    if blob[0] != _VERSION:
        raise SealError(f"the sealed blob has unknown format version {blob[0]}")
    nonce = blob[1 : 1 + _NONCE_SIZE]
    try:
        return master._cipher.decrypt(nonce, blob[1 + _NONCE_SIZE :], aad)
    except InvalidTag:
        # GCM cannot tell these apart, and saying which would help no one but an attacker.
        raise SealError(
            "the sealed blob does not authenticate: wrong master key, wrong row, or damaged"
        ) from None


def seal_jwk(master: MasterKey, jwk: JWK, *, random: RandomSource = system_random) -> bytes:
    """Seal a private JWK (or HMAC secret) as JSON, bound to its kid."""
    if not isinstance(jwk, JWK):
        raise TypeError("jwk must be a JWK")
    if not jwk.is_private:
        raise ValueError("only private keys are sealed; public keys need no secrecy")
    text = json.dumps(jwk.to_dict(private=True), separators=(",", ":"), sort_keys=True)
    return seal(master, text.encode("utf-8"), context=_jwk_context(jwk.kid), random=random)


def unseal_jwk(master: MasterKey, blob: bytes, kid: str) -> JWK:
    """The private JWK sealed for ``kid``; ``SealError`` for any other row's blob."""
    plaintext = unseal(master, blob, context=_jwk_context(kid))
    try:
        jwk = JWK.from_json(plaintext)
    except InvalidKey:
        # Authenticated yet unparsable means the writer was broken, not the row moved.
        raise SealError("the sealed key is not a valid JWK") from None
    if jwk.kid != kid or not jwk.is_private:
        raise SealError("the sealed key does not match its row")
    return jwk


def _jwk_context(kid: str) -> bytes:
    if not isinstance(kid, str) or not kid:
        raise TypeError("kid must be a non-empty string")
    return _JWK_CONTEXT + kid.encode("utf-8")
