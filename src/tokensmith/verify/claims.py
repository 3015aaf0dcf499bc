"""``AccessClaims``: a verified access token's claims, typed and read-only.

One ``AccessClaims`` is shared by every request that presents the same token (the
verified-token cache), so nothing in it can be changed: the typed fields are strings,
numbers and tuples, and ``claims`` is a read-only view whose JSON arrays read as
tuples and objects as read-only views. A handler cannot add a role for the next request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tokensmith.errors import InvalidClaim, MissingClaim

__all__ = ["AccessClaims", "ClaimsView", "access_claims"]

_new = object.__new__


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return tuple([_frozen(item) for item in value])
    if kind is dict:
        return ClaimsView(value)
    return value


class ClaimsView(Mapping[str, Any]):
    """A read-only view of a JSON object: arrays read as tuples, objects as views.

    Freezing happens when a value is read, not when a token is verified: most claims
    are never read through this view, and a new token's budget is a few microseconds.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data  # owned: nobody else holds this dict

    def __getitem__(self, name: str) -> Any:
        return _frozen(self._data[name])

    def get(self, name: str, default: Any = None) -> Any:
        value = self._data.get(name, default)
        return value if value is default else _frozen(value)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ClaimsView({dict(self.items())!r})"


def _claim_error(name: str, kind: str) -> InvalidClaim:
    return InvalidClaim(name, f"The {name} claim must be {kind}.")


@dataclass(frozen=True)
class AccessClaims:
    """The claims of a verified access token (RFC 9068), plus all of them in ``claims``."""

    sub: str
    iss: str
    #: The token's audiences (a single ``aud`` string becomes a one-item tuple).
    aud: tuple[str, ...]
    exp: int | float
    iat: int | float | None
    nbf: int | float | None
    jti: str | None
    client_id: str | None
    #: ``scope`` split at spaces.
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    #: Every claim, read-only (arrays read as tuples, objects as read-only views).
    claims: Mapping[str, Any]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if type(value) is not list:
        raise _claim_error(name, "a list of strings")
    for item in value:
        if type(item) is not str:
            raise _claim_error(name, "a list of strings")
    return tuple(value)


def access_claims(payload: dict[str, Any]) -> AccessClaims:
    """Type a payload ``verify_jwt`` accepted; raise ``InvalidClaim`` for a claim of the wrong type.

    The payload dict is taken over (wrapped read-only): pass one nobody else holds.
    The core has checked ``exp``, ``nbf`` and ``iat`` as numbers and ``iss``, ``sub``
    and ``jti`` as strings (when present); this adds ``scope``, ``roles`` and
    ``client_id``, and requires ``sub``, ``iss`` and ``exp``.
    """
    get = payload.get
    sub = get("sub")
    if sub is None:
        raise MissingClaim("sub")
    iss = get("iss")
    if iss is None:
        raise MissingClaim("iss")
    exp = get("exp")
    if exp is None:
        raise MissingClaim("exp")
    scope = get("scope")
    if scope is None:
        scopes: tuple[str, ...] = ()
    elif type(scope) is str:
        scopes = tuple(scope.split())
    else:
        raise _claim_error("scope", "a space-separated string")
    roles = get("roles")
    client_id = get("client_id")
    if client_id is not None and type(client_id) is not str:
        raise _claim_error("client_id", "a string")
    if roles is None:
        roles = ()
    else:
        # The tuple replaces the list in the payload too: a cached payload without
        # lists is left alone by the garbage collector after one pass.
        roles = payload["roles"] = _strings(roles, "roles")
    aud = get("aud")
    if type(aud) is list:  # the core has checked aud: a string, or a list of strings
        aud = payload["aud"] = tuple(aud)
    # Built without the dataclass __init__: its 11 object.__setattr__ calls cost more
    # than the rest of this function, on the path of every new token. Same fields,
    # still frozen (assignment raises), same equality and repr.
    claims = _new(AccessClaims)
    claims.__dict__.update(
        sub=sub,
        iss=iss,
        aud=(aud,) if type(aud) is str else aud if type(aud) is tuple else (),
        exp=exp,
        iat=get("iat"),
        nbf=get("nbf"),
        jti=get("jti"),
        client_id=client_id,
        scopes=scopes,
        roles=roles,
        claims=ClaimsView(payload),
    )
    return claims
