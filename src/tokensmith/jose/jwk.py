"""JSON Web Keys (RFC 7517, RFC 7518 section 6, RFC 7638 thumbprints, RFC 8037).

A ``JWK`` is parsed once into a ``cryptography`` key object; its signers and
verifiers are built once, for exactly the algorithms the key may be used
with: those of its type and curve, narrowed to its ``alg`` member when present,
and none at all when ``use`` or ``key_ops`` forbid signatures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tokensmith.errors import InvalidKey

from ._algorithms import ALGORITHMS, CURVES, Signer, Verifier, make_signer, make_verifier
from ._jwk_members import (
    is_private_key,
    key_type,
    private_members,
    public_members,
    rfc7638_thumbprint,
)
from ._jwk_parse import check_secret, check_supported_key, parse_jwk_members, parse_pem

__all__ = ["JWK"]

_OPTIONAL_STRINGS = ("kid", "alg", "use")


class JWK:
    """One key, public or private, bound to the signature algorithms it may serve."""

    __slots__ = (
        "_key",
        "_public_members",
        "_signers",
        "_thumbprint",
        "_verifiers",
        "alg",
        "crv",
        "key_ops",
        "kid",
        "kty",
        "use",
    )

    def __init__(
        self,
        key: Any,
        *,
        kid: str | None = None,
        alg: str | None = None,
        use: str | None = None,
        key_ops: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        """Wrap a ``cryptography`` key object or an HMAC secret (bytes).

        Prefer the ``generate``/``from_*`` constructors. ``kid`` defaults to the
        RFC 7638 thumbprint.
        """
        if isinstance(key, bytes | bytearray):
            key = bytes(key)
            check_secret(key)
        else:
            check_supported_key(key)
        for name, value in (("kid", kid), ("alg", alg), ("use", use)):
            if value is not None and type(value) is not str:
                raise InvalidKey(f"JWK member '{name}' is not a string")
        if key_ops is not None:
            if not isinstance(key_ops, list | tuple) or any(type(op) is not str for op in key_ops):
                raise InvalidKey("JWK member 'key_ops' is not a list of strings")
            if len(set(key_ops)) != len(key_ops):
                raise InvalidKey("JWK member 'key_ops' has duplicates")
        self._key = key
        self.kty, self.crv = key_type(key)
        self._public_members = public_members(key, self.kty, self.crv)
        self._thumbprint = rfc7638_thumbprint(self._public_members)
        self.kid: str = kid if kid is not None else self._thumbprint
        self.alg = alg
        self.use = use
        self.key_ops: tuple[str, ...] | None = tuple(key_ops) if key_ops is not None else None
        self._verifiers: dict[str, Verifier] = {}
        self._signers: dict[str, Signer] = {}
        self._bind_algorithms()

    def _bind_algorithms(self) -> None:
        if self.alg is not None:
            algorithm = ALGORITHMS.get(self.alg)
            if algorithm is None:
                # An encryption key (RSA-OAEP, A256KW ...) or an unknown name:
                # importable, so a published set still loads, but never usable here.
                return
            if algorithm.kty != self.kty or algorithm.crv != self.crv:
                raise InvalidKey(f"JWK alg {self.alg} does not fit a {self.kty} key")
            candidates = [algorithm]
        else:
            candidates = [a for a in ALGORITHMS.values() if a.kty == self.kty and a.crv == self.crv]
        if self.use is not None and self.use != "sig":
            return
        ops = self.key_ops
        secret_len = len(self._key) if self.kty == "oct" else 0
        usable = [a for a in candidates if secret_len >= a.min_secret]
        if self.alg is not None and not usable:
            raise InvalidKey(f"the key is too short for {self.alg}")
        public = self._key if self.kty == "oct" or not self.is_private else self._key.public_key()
        if ops is None or "verify" in ops:
            self._verifiers = {a.name: make_verifier(a, public) for a in usable}
        if self.is_private and (ops is None or "sign" in ops):
            self._signers = {a.name: make_signer(a, self._key) for a in usable}

    # -- constructors -------------------------------------------------------

    @classmethod
    def generate(cls, alg: str, *, kid: str | None = None, rsa_bits: int = 2048) -> JWK:
        """A new private key (or HMAC secret) for ``alg``, marked with ``alg`` and ``use=sig``."""
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None:
            raise ValueError(f"unsupported algorithm {alg!r}")
        key: Any
        if algorithm.kty == "oct":
            key = os.urandom(algorithm.min_secret)
        elif algorithm.kty == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        elif algorithm.kty == "EC":
            assert algorithm.crv is not None
            key = ec.generate_private_key(CURVES[algorithm.crv].curve)
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        return cls(key, kid=kid, alg=alg, use="sig")

    @classmethod
    def from_dict(cls, members: Mapping[str, Any]) -> JWK:
        """Import a JWK (public or private) given as a mapping; hostile input is fine."""
        if not isinstance(members, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        # The cheap type checks first: a malformed member costs no key parsing.
        for name in _OPTIONAL_STRINGS:
            if name in members and type(members[name]) is not str:
                raise InvalidKey(f"JWK member '{name}' is not a string")
        key_ops = members.get("key_ops")
        if key_ops is not None and type(key_ops) is not list:
            raise InvalidKey("JWK member 'key_ops' is not a list of strings")
        key = parse_jwk_members(members)
        return cls(
            key,
            kid=members.get("kid"),
            alg=members.get("alg"),
            use=members.get("use"),
            key_ops=key_ops,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> JWK:
        from ._json import JSONError, loads_object

        data = text.encode("utf-8") if isinstance(text, str) else text
        try:
            return cls.from_dict(loads_object(data))
        except JSONError as exc:
            raise InvalidKey(f"JWK is not a JSON object: {exc}") from None

    @classmethod
    def from_pem(
        cls,
        data: str | bytes,
        *,
        password: bytes | None = None,
        kid: str | None = None,
        alg: str | None = None,
    ) -> JWK:
        """Import a PEM private key, public key (SPKI or PKCS#1) or certificate."""
        raw = data.encode("ascii", "replace") if isinstance(data, str) else data
        return cls(parse_pem(raw, password), kid=kid, alg=alg, use="sig" if alg else None)

    @classmethod
    def from_secret(cls, secret: bytes, *, kid: str | None = None, alg: str | None = None) -> JWK:
        """An HMAC key from raw bytes (at least 32, and never a public key's text)."""
        if not isinstance(secret, bytes | bytearray):
            raise TypeError("secret must be bytes")
        return cls(bytes(secret), kid=kid, alg=alg)

    # -- properties ---------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """True for a private key or an HMAC secret."""
        return is_private_key(self._key)

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms this key may verify."""
        return frozenset(self._verifiers)

    def can_verify(self, alg: str) -> bool:
        return alg in self._verifiers

    def can_sign(self, alg: str) -> bool:
        return alg in self._signers

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint, base64url."""
        return self._thumbprint

    def public(self) -> JWK:
        """The public half, with the same kid and metadata."""
        if self.kty == "oct":
            raise ValueError("an HMAC secret has no public form")
        if not self.is_private:
            return self
        ops = None if self.key_ops is None else [op for op in self.key_ops if op == "verify"]
        return JWK(self._key.public_key(), kid=self.kid, alg=self.alg, use=self.use, key_ops=ops)

    # -- export -------------------------------------------------------------

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """The JWK as a dict: public members only unless ``private=True``."""
        if self.kty == "oct" and not private:
            raise ValueError("an HMAC secret has no public form; pass private=True")
        members: dict[str, Any] = {"kty": self.kty, "kid": self.kid}
        members.update(self._public_members)
        if private and self.is_private:
            members.update(private_members(self._key, self.kty, self.crv))
        if self.alg is not None:
            members["alg"] = self.alg
        if self.use is not None:
            members["use"] = self.use
        if self.key_ops is not None:
            ops = self.key_ops if private else tuple(op for op in self.key_ops if op == "verify")
            members["key_ops"] = list(ops)
        return members

    def to_json(self, *, private: bool = False) -> str:
        return json.dumps(self.to_dict(private=private), indent=2)

    def to_pem(
        self, *, private: bool = False, pkcs1: bool = False, password: bytes | None = None
    ) -> bytes:
        """PEM: SPKI (or PKCS#1) for public, PKCS#8 (or PKCS#1) for private keys."""
        if self.kty == "oct":
            raise ValueError("an HMAC secret has no PEM form")
        if pkcs1 and self.kty != "RSA":
            raise ValueError("PKCS#1 is an RSA format")
        if private:
            if not self.is_private:
                raise ValueError("this is a public key")
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            fmt = (
                serialization.PrivateFormat.TraditionalOpenSSL
                if pkcs1
                else serialization.PrivateFormat.PKCS8
            )
            return self._key.private_bytes(  # type: ignore[no-any-return]
                serialization.Encoding.PEM, fmt, encryption
            )
        public = self._key.public_key() if self.is_private else self._key
        pub_fmt = (
            serialization.PublicFormat.PKCS1
            if pkcs1
            else serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public.public_bytes(serialization.Encoding.PEM, pub_fmt)  # type: ignore[no-any-return]

    def crypto_key(self) -> Any:
        """The underlying ``cryptography`` key object (or secret bytes), for interop."""
        return self._key

    def __repr__(self) -> str:
        return (
            f"JWK(kty={self.kty!r}, kid={self.kid!r}, alg={self.alg!r}, private={self.is_private})"
        )
