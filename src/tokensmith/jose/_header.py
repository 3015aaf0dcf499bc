"""Parsing and checking the protected header of a compact JWS (RFC 7515 section 4).

A header segment repeats for every token a key signs, so its parsed form is
cached by the exact segment bytes (bounded; refilled after a clear). Only
headers that pass every structural rule are cached; the per-policy checks
(allowed algorithm, expected typ, key-carrying members) run on each call.
"""

from __future__ import annotations

from typing import Any

from tokensmith.errors import MalformedToken, UnsupportedHeader

from ._b64 import B64Error, b64url_decode
from ._json import JSONError, loads_object

__all__ = ["KEY_HEADERS", "Header", "normalize_typ", "parse_header"]

# Members that name or carry a key. Using them to find a key lets the token
# choose its own verifier (Authlib CVE-2026-27962); they are refused by default.
KEY_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c"})
_STRING_MEMBERS = ("kid", "typ", "cty", "x5t", "x5t#S256")
_CACHE_LIMIT = 512


def normalize_typ(value: str) -> str:
    """RFC 7515 4.1.9: compare case-insensitively, "application/" may be omitted."""
    lowered = value.lower()
    if lowered.startswith("application/") and "/" not in lowered[12:]:
        return lowered[12:]
    return lowered


class Header:
    """The checked parts of a protected header, plus the whole of it."""

    __slots__ = ("alg", "has_key_members", "kid", "members", "typ")

    def __init__(self, members: dict[str, Any]) -> None:
        alg = members.get("alg")
        if type(alg) is not str:
            raise MalformedToken("The header's alg is missing or not a string.")
        for name in _STRING_MEMBERS:
            if name in members and type(members[name]) is not str:
                raise MalformedToken(f"The header's {name} is not a string.")
        if "crit" in members:
            # No extension is implemented, so any crit names something we do not
            # understand (RFC 7515 4.1.11); an empty or malformed crit is invalid anyway.
            raise UnsupportedHeader("The token marks header extensions as critical.")
        if "b64" in members:
            if members["b64"] is not True:
                raise UnsupportedHeader("Unencoded payloads (b64) are not supported.")
        if "enc" in members or "zip" in members:
            raise MalformedToken("Encrypted (JWE) or compressed tokens are not accepted.")
        self.alg: str = alg
        self.kid: str | None = members.get("kid")
        typ = members.get("typ")
        self.typ: str | None = normalize_typ(typ) if typ is not None else None
        self.has_key_members = not KEY_HEADERS.isdisjoint(members)
        self.members = members


_cache: dict[bytes, Header] = {}


def parse_header(segment: bytes) -> Header:
    header = _cache.get(segment)
    if header is not None:
        return header
    try:
        members = loads_object(b64url_decode(segment))
    except B64Error:
        raise MalformedToken("The header is not base64url.") from None
    except JSONError as exc:
        raise MalformedToken(f"The header is not a JSON object: {exc}.") from None
    header = Header(members)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[segment] = header
    return header
