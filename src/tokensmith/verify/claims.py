"""``AccessClaims``: a verified access token's claims, typed and read-only.

One ``AccessClaims`` is shared by every request that presents the same token (the
verified-token cache), so it is deeply immutable: JSON arrays become tuples and
objects read-only mappings. A handler cannot add a role for the next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tokensmith.errors import InvalidClaim, MissingClaim

__all__ = ["AccessClaims", "access_claims"]

_new = object.__new__
_CONTAINERS = frozenset({list, dict})


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        for item in value:
            if type(item) in _CONTAINERS:
                return tuple([_frozen(item) for item in value])
        return tuple(value)
    if kind is dict:
        return MappingProxyType({name: _frozen(item) for name, item in value.items()})
    return value


def _freeze_in_place(payload: dict[str, Any]) -> None:
    # One pass over the top level, recursing only into arrays and objects: this runs
    # for every new token, inside the budget of a few microseconds per verification.
    for name, value in payload.items():
        if type(value) in _CONTAINERS:
            payload[name] = _frozen(value)  # same key: the dict does not change size


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
    #: Every claim, read-only (arrays as tuples, objects as read-only mappings).
    claims: Mapping[str, Any]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def has_role(self, role: str) -> bool:
        return role in self.roles


def access_claims(payload: dict[str, Any]) -> AccessClaims:
    """Type a payload ``verify_jwt`` accepted; raise ``InvalidClaim`` for a claim of the wrong type.

    The payload dict is taken over (frozen in place and wrapped read-only): pass one
    nobody else holds. The core has checked ``exp``, ``nbf`` and ``iat`` as numbers and
    ``iss``, ``sub`` and ``jti`` as strings (when present); this adds ``scope``,
    ``roles`` and ``client_id``, and requires ``sub``, ``iss`` and ``exp``.
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
    _freeze_in_place(payload)
    scope = get("scope")
    if scope is None:
        scopes: tuple[str, ...] = ()
    elif type(scope) is str:
        scopes = tuple(scope.split())
    else:
        raise _claim_error("scope", "a space-separated string")
    roles = get("roles", ())
    if type(roles) is not tuple:
        raise _claim_error("roles", "a list of strings")
    for role in roles:
        if type(role) is not str:
            raise _claim_error("roles", "a list of strings")
    client_id = get("client_id")
    if client_id is not None and type(client_id) is not str:
        raise _claim_error("client_id", "a string")
    aud = get("aud")
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
        claims=MappingProxyType(payload),
    )
    return claims
