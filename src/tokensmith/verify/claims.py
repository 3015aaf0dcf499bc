"""``AccessClaims``: a verified access token's claims, typed and read-only.

One ``AccessClaims`` is shared by every request that presents the same token (the
verified-token cache), so nothing in it can be changed: the typed fields are strings,
numbers and tuples, and ``claims`` is a read-only view whose JSON arrays read as
tuples and objects as read-only views. A handler cannot add a role for the next request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

from tokensmith.errors import InvalidClaim, MissingClaim

__all__ = ["AccessClaims", "ClaimsView", "SharedValues", "access_claims"]

_new = object.__new__
_tuple_new = tuple.__new__
_T = TypeVar("_T")


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


class _AccessClaimsFields(NamedTuple):
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


class AccessClaims(_AccessClaimsFields):
    """The claims of a verified access token (RFC 9068), plus all of them in ``claims``.

    A named tuple: immutable by construction, and built by the verifier in one C call
    (a frozen dataclass costs a dictionary and eleven guarded assignments per new token).
    """

    __slots__ = ()

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


class SharedValues:
    """Claim values that many tokens repeat (issuer, audience, client, scope, roles), kept once.

    A cached ``AccessClaims`` lives for thousands of verifications, and every object it
    holds is one more cache miss when its entry is evicted and the memory reused: on
    this path that costs more than the Python code. Tokens of one issuer repeat a few
    values, so the payload is made to point at the one copy kept here, and the copies
    just parsed are freed while still in cache. Each table is bounded: emptied when
    full, so a flood of distinct values costs at most ``max_entries`` entries each.
    Safe across threads (one dictionary operation at a time; a lost entry is a miss).
    """

    __slots__ = ("_audiences", "_roles", "_scopes", "_strings", "max_entries")

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._strings: dict[str, str] = {}
        self._scopes: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._audiences: dict[str, tuple[str, tuple[str]]] = {}
        self._roles: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _keep(self, table: dict[Any, Any], key: Any, value: _T) -> _T:
        if len(table) >= self.max_entries:
            table.clear()
        table[key] = value
        return value

    def string(self, text: str) -> str:
        found = self._strings.get(text)
        return found if found is not None else self._keep(self._strings, text, text)

    def scope(self, scope: str) -> tuple[str, tuple[str, ...]]:
        """The scope string and its words, all shared."""
        found = self._scopes.get(scope)
        if found is None:
            words = tuple([self.string(word) for word in scope.split()])
            found = self._keep(self._scopes, scope, (self.string(scope), words))
        return found

    def audience(self, aud: str) -> tuple[str, tuple[str]]:
        """A one-audience ``aud`` string and the one-item tuple of it, both shared."""
        found = self._audiences.get(aud)
        if found is None:
            text = self.string(aud)
            found = self._keep(self._audiences, aud, (text, (text,)))
        return found

    def roles(self, roles: Any) -> tuple[str, ...]:
        """A ``roles`` claim as a shared tuple of strings; ``InvalidClaim`` if it is not."""
        if type(roles) is not list:
            raise _claim_error("roles", "a list of strings")
        key = tuple(roles)
        try:
            found = self._roles.get(key)
        except TypeError:  # an unhashable item (an array, an object): refused below
            found = None
        if found is None:
            # Checked only here: a tuple equal to a checked one holds the same strings.
            checked = _strings(roles, "roles")
            found = self._keep(self._roles, key, tuple([self.string(r) for r in checked]))
        return found


def access_claims(payload: dict[str, Any], shared: SharedValues | None = None) -> AccessClaims:
    """Type a payload ``verify_jwt`` accepted; raise ``InvalidClaim`` for a claim of the wrong type.

    The payload dict is taken over (wrapped read-only): pass one nobody else holds.
    The core has checked ``exp``, ``nbf`` and ``iat`` as numbers and ``iss``, ``sub``
    and ``jti`` as strings (when present); this adds ``scope``, ``roles`` and
    ``client_id``, and requires ``sub``, ``iss`` and ``exp``. With ``shared`` (the
    verifier's), repeated values are replaced by one shared copy, in the payload too.
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
    client_id = get("client_id")
    if client_id is not None and type(client_id) is not str:
        raise _claim_error("client_id", "a string")
    scope = get("scope")
    if scope is None:
        scopes: tuple[str, ...] = ()
    elif type(scope) is not str:
        raise _claim_error("scope", "a space-separated string")
    elif shared is None:
        scopes = tuple(scope.split())
    else:
        payload["scope"], scopes = shared.scope(scope)
    roles = get("roles")
    if roles is None:
        roles = ()
    else:
        # The tuple replaces the list in the payload too: a cached payload without
        # lists is left alone by the garbage collector after one pass.
        roles = payload["roles"] = (
            _strings(roles, "roles") if shared is None else shared.roles(roles)
        )
    # The core has checked aud: a string, or a list of strings.
    aud = get("aud")
    if type(aud) is list:
        audiences: tuple[str, ...] = tuple(aud)
        payload["aud"] = audiences
    elif aud is None:
        audiences = ()
    elif shared is None:
        audiences = (aud,)
    else:
        payload["aud"], audiences = shared.audience(aud)
    if shared is not None:
        iss = payload["iss"] = shared.string(iss)
        if client_id is not None:
            client_id = payload["client_id"] = shared.string(client_id)
    view = _new(ClaimsView)
    view._data = payload
    return _tuple_new(
        AccessClaims,
        (
            sub,
            iss,
            audiences,
            exp,
            get("iat"),
            get("nbf"),
            get("jti"),
            client_id,
            scopes,
            roles,
            view,
        ),
    )
