"""``AccessClaims``: a verified access token's claims, typed and read-only.

One ``AccessClaims`` is shared by every request that presents the same token (the
verified-token cache), so nothing in it can be changed: it is a read-only mapping of
every claim whose JSON arrays read as tuples and objects as read-only views, and its
typed fields (``sub``, ``roles``, ``scopes``...) are strings, numbers and tuples. A
handler cannot add a role for the next request.

The typed fields are read from the payload when asked for, not built when a token is
verified: a new token's budget over the core is a few microseconds, most handlers read
one or two fields, and every object built per token is one more to free when the cache
evicts it. What could make a field fail (a claim of the wrong type) is checked when the
token is verified, so reading a field never raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tokensmith.errors import InvalidClaim, MissingClaim
from tokensmith.jose.policy import check_claim_types

__all__ = ["AccessClaims", "ClaimsView", "access_claims"]

_new = object.__new__
_EMPTY: tuple[str, ...] = ()


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return tuple([_frozen(item) for item in value])
    if kind is dict:
        view = _new(ClaimsView)
        view._data = value
        return view
    return value


def _thawed(value: Any) -> Any:
    """A JSON-shaped deep copy: arrays (tuples too) as lists, mappings (views too) as dicts."""
    if isinstance(value, list | tuple):
        return [_thawed(item) for item in value]
    if isinstance(value, Mapping):
        return {name: _thawed(item) for name, item in value.items()}
    return value


class ClaimsView(Mapping[str, Any]):
    """A read-only view of a JSON object: arrays read as tuples, objects as views.

    Freezing happens when a value is read, not when a token is verified: most claims
    are never read through this view.
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
        return f"{type(self).__name__}({dict(self.items())!r})"

    # Copies and pickles get a copy of the data, never the shared dict itself.
    def __reduce__(self) -> tuple[type[ClaimsView], tuple[dict[str, Any]]]:
        return (type(self), (_thawed(self._data),))

    def __getstate__(self) -> dict[str, Any]:
        return {"_data": _thawed(self._data)}


class AccessClaims(ClaimsView):
    """The claims of a verified access token (RFC 9068): a read-only mapping, typed fields.

    ``claims["name"]`` reads any claim (frozen); the fields type the RFC 9068 ones.
    ``AccessClaims(payload)`` checks a payload the way the verifier does (for tests of
    handlers): ``InvalidClaim`` or ``MissingClaim`` for what no access token may hold.
    """

    __slots__ = ()

    def __new__(cls, payload: Mapping[str, Any]) -> AccessClaims:
        data = _thawed(payload)
        if type(data) is not dict:
            raise TypeError("payload must be a mapping")
        check_claim_types(data)  # what verify_jwt checks before access_claims
        return access_claims(data, cls)

    def __init__(self, payload: Mapping[str, Any]) -> None:
        pass  # built by __new__ (the verifier skips both)

    @property
    def sub(self) -> str:
        return self._data["sub"]  # type: ignore[no-any-return]

    @property
    def iss(self) -> str:
        return self._data["iss"]  # type: ignore[no-any-return]

    @property
    def aud(self) -> tuple[str, ...]:
        """The token's audiences (a single ``aud`` string reads as a one-item tuple)."""
        aud = self._data.get("aud", _EMPTY)
        return (aud,) if type(aud) is str else aud

    @property
    def exp(self) -> int | float:
        return self._data["exp"]  # type: ignore[no-any-return]

    @property
    def iat(self) -> int | float | None:
        return self._data.get("iat")

    @property
    def nbf(self) -> int | float | None:
        return self._data.get("nbf")

    @property
    def jti(self) -> str | None:
        return self._data.get("jti")

    @property
    def client_id(self) -> str | None:
        return self._data.get("client_id")

    @property
    def scopes(self) -> tuple[str, ...]:
        """``scope`` split at whitespace."""
        scope = self._data.get("scope")
        return _EMPTY if scope is None else tuple(scope.split())

    @property
    def roles(self) -> tuple[str, ...]:
        return self._data.get("roles", _EMPTY)  # type: ignore[no-any-return]

    @property
    def claims(self) -> Mapping[str, Any]:
        """Every claim, read-only: the mapping itself (``claims.claims is claims``)."""
        return self

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def has_role(self, role: str) -> bool:
        return role in self._data.get("roles", _EMPTY)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("sub", "iss", "aud", "exp", "client_id", "scopes", "roles")
        )
        return f"AccessClaims({fields})"


def _claim_error(name: str, kind: str) -> InvalidClaim:
    return InvalidClaim(name, f"The {name} claim must be {kind}.")


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if type(value) is not list:
        raise _claim_error(name, "a list of strings")
    for item in value:
        if type(item) is not str:
            raise _claim_error(name, "a list of strings")
    return tuple(value)


def access_claims(payload: dict[str, Any], kind: type[AccessClaims] = AccessClaims) -> AccessClaims:
    """Check a payload ``verify_jwt`` accepted: ``InvalidClaim`` for a claim of a wrong type.

    The payload dict is taken over (wrapped read-only): pass one nobody else holds.
    The core has checked ``exp``, ``nbf`` and ``iat`` as numbers, ``iss``, ``sub`` and
    ``jti`` as strings and ``aud`` as a string or a list of strings (when present); this
    adds ``scope``, ``roles`` and ``client_id``, and requires ``sub``, ``iss`` and ``exp``.
    ``roles`` and a list ``aud`` become tuples in the payload: the fields then hand out
    what is stored, and nothing in a cached payload is mutable.
    """
    get = payload.get
    if get("sub") is None:
        raise MissingClaim("sub")
    if get("iss") is None:
        raise MissingClaim("iss")
    if get("exp") is None:
        raise MissingClaim("exp")
    client_id = get("client_id")
    if client_id is not None and type(client_id) is not str:
        raise _claim_error("client_id", "a string")
    scope = get("scope")
    if scope is not None and type(scope) is not str:
        raise _claim_error("scope", "a space-separated string")
    roles = get("roles")
    if roles is not None:
        payload["roles"] = _strings(roles, "roles")
    aud = get("aud")
    if type(aud) is list:
        payload["aud"] = tuple(aud)
    claims = _new(kind)
    claims._data = payload
    return claims
