"""JWK Sets (RFC 7517 section 5) with lookup by kid.

The kid index is a dictionary built once. A set never tries its keys one by
one: a kid selects exactly one key, and a token without a kid is accepted
only when exactly one key in the set can verify its algorithm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tokensmith.errors import AmbiguousKey, InvalidKey, InvalidKeySet, KeyNotFound

from .jwk import JWK

__all__ = ["MAX_KEYS", "PRIVATE_MEMBERS", "JWKSet"]

# A published set is small; this bounds what a hostile document can cost.
MAX_KEYS = 100
#: The members that carry private key material (RFC 7518 6.2.2, 6.3.2 and 6.4.1,
#: RFC 8037 2): none may be published.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JWKSet:
    """An immutable set of keys with unique kids."""

    __slots__ = ("_by_alg", "_by_kid", "_dropped_private", "_keys")

    def __init__(self, keys: Iterable[JWK]) -> None:
        self._keys: tuple[JWK, ...] = tuple(keys)
        for key in self._keys:
            if not isinstance(key, JWK):
                raise TypeError("a JWKSet holds JWK objects")
        if len(self._keys) > MAX_KEYS:
            raise InvalidKeySet(f"a key set may hold at most {MAX_KEYS} keys")
        by_kid: dict[str, JWK] = {}
        for key in self._keys:
            if key.kid in by_kid:
                raise InvalidKeySet("two keys in the set share one kid")
            by_kid[key.kid] = key
        # Symmetric secrets beside public keys invite algorithm confusion
        # (python-jose #274); a set holds one kind or the other.
        if len({key.kty == "oct" for key in self._keys}) > 1:
            raise InvalidKeySet("a key set must not mix HMAC secrets with asymmetric keys")
        self._by_kid = by_kid
        by_alg: dict[str, list[JWK]] = {}
        for key in self._keys:
            for alg in key.algorithms:
                by_alg.setdefault(alg, []).append(key)
        self._by_alg = {alg: tuple(keys) for alg, keys in by_alg.items()}
        self._dropped_private: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], *, public_only: bool = False) -> JWKSet:
        """Import ``{"keys": [...]}``. Keys of types the core does not support are skipped.

        ``public_only`` is for a set fetched from elsewhere: private members are removed
        before parsing (so a hostile ``d`` without CRT members cannot cost seconds of
        prime recovery, and no private key is ever held) and HMAC secrets are left out.
        ``dropped_private`` then names the keys that carried private material.
        """
        if not isinstance(document, Mapping):
            raise InvalidKeySet("a JWK Set must be a JSON object")
        members = document.get("keys")
        if type(members) is not list:
            raise InvalidKeySet("a JWK Set needs a 'keys' array")
        if len(members) > MAX_KEYS:
            raise InvalidKeySet(f"a key set may hold at most {MAX_KEYS} keys")
        keys = []
        dropped: list[str] = []
        for member in members:
            if not isinstance(member, Mapping):
                raise InvalidKeySet("every key in a JWK Set must be an object")
            if not _supported(member):
                continue
            stripped = False
            if public_only:
                if member["kty"] == "oct":
                    dropped.append(_kid_of(member))
                    continue
                if not PRIVATE_MEMBERS.isdisjoint(member):
                    member = {n: v for n, v in member.items() if n not in PRIVATE_MEMBERS}
                    stripped = True
            try:
                key = JWK.from_dict(member)
            except InvalidKey as exc:
                raise InvalidKeySet(f"key {_describe(member)}: {exc.message}") from None
            keys.append(key)
            if stripped:
                dropped.append(key.kid)
        result = cls(keys)
        result._dropped_private = tuple(dropped)
        return result

    @classmethod
    def from_json(cls, text: str | bytes, *, public_only: bool = False) -> JWKSet:
        """``from_dict`` of JSON text (strict: no duplicates, no NaN, bounded nesting)."""
        from ._json import JSONError, loads_object

        data = text.encode("utf-8") if isinstance(text, str) else text
        try:
            document = loads_object(data)
        except JSONError as exc:
            raise InvalidKeySet(f"JWK Set is not a JSON object: {exc}") from None
        return cls.from_dict(document, public_only=public_only)

    @property
    def dropped_private(self) -> tuple[str, ...]:
        """The kids whose private members (or HMAC secret) a ``public_only`` import left out."""
        return self._dropped_private

    def to_dict(self, *, private: bool = False) -> dict[str, Any]:
        """``{"keys": [...]}``; without ``private`` HMAC secrets are left out, never published."""
        return {
            "keys": [
                key.to_dict(private=private) for key in self._keys if private or key.kty != "oct"
            ]
        }

    def to_json(self, *, private: bool = False) -> str:
        return json.dumps(self.to_dict(private=private), indent=2)

    def get(self, kid: str) -> JWK | None:
        return self._by_kid.get(kid)

    def __getitem__(self, kid: str) -> JWK:
        return self._by_kid[kid]

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __iter__(self) -> Iterator[JWK]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def resolve(self, kid: str | None, alg: str) -> JWK:
        """The one key for a token's kid (or, without kid, the only candidate for ``alg``)."""
        if kid is not None:
            key = self._by_kid.get(kid)
            if key is None:
                raise KeyNotFound()
            return key
        candidates = self._by_alg.get(alg, ())
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise KeyNotFound("No key in the set can verify this algorithm.")
        raise AmbiguousKey()

    def __repr__(self) -> str:
        return f"JWKSet({[key.kid for key in self._keys]!r})"


_SUPPORTED_CURVES = {"EC": {"P-256", "P-384", "P-521"}, "OKP": {"Ed25519"}}


def _supported(member: Mapping[str, Any]) -> bool:
    """Whether the core parses this member; a kty or crv that is not a string is malformed.

    Unknown names are skipped (RFC 7517 5), but a list or an object where a name
    belongs would otherwise reach a set lookup and raise ``TypeError``.
    """
    if "kty" not in member:
        return False
    kty = member["kty"]
    if type(kty) is not str:
        raise InvalidKeySet(f"key {_describe(member)}: 'kty' is not a string")
    if kty in ("RSA", "oct"):
        return True
    curves = _SUPPORTED_CURVES.get(kty)
    if curves is None:
        return False
    crv = member.get("crv")
    if type(crv) is not str:
        raise InvalidKeySet(f"key {_describe(member)}: 'crv' is not a string")
    return crv in curves


def _describe(member: Mapping[str, Any]) -> str:
    kid = member.get("kid")
    return repr(kid[:64]) if type(kid) is str else "without kid"


def _kid_of(member: Mapping[str, Any]) -> str:
    kid = member.get("kid")
    return kid[:64] if type(kid) is str else "(no kid)"
