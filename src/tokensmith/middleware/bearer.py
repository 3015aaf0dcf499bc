"""RFC 6750 for every framework: reading ``Authorization: Bearer``, the 401/403 answers.

- No token: 401 with a bare ``WWW-Authenticate: Bearer realm="..."`` (section 3.1: no
  error code when the request carried no credentials).
- A bad token: 401 with ``error="invalid_token"`` and a short fixed description per
  failure (the error class's text: never key material, an expected signature, or the
  token itself).
- A valid token without the role or scope: 403 with ``error="insufficient_scope"``.

The scheme is matched case-insensitively (RFC 9110 section 11.1). A token in the query
string or the form body (RFC 6750 sections 2.2 and 2.3) is never looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tokensmith.errors import KeySetUnavailable, TokenError, TokensmithError
from tokensmith.verify.claims import AccessClaims

__all__ = [
    "AuthError",
    "Forbidden",
    "InvalidBearer",
    "MissingBearer",
    "Unavailable",
    "access_rule",
    "auth_error_for",
    "check_access",
    "checked_access",
    "parse_authorization",
    "single_authorization",
]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 9110 section 11.1: an auth-scheme is a token, so the scheme of "Bearer\tabc" or
# "Bearer:abc" is Bearer (a malformed attempt), and that of "Bearerabc" is another.
_BEARER_SCHEME = re.compile(r"(?i:bearer)(?![!#$%&'*+\-.^_`|~0-9A-Za-z])")
# RFC 6750 section 3: error_description and scope values are %x20-21 / %x23-5B / %x5D-7E,
# so a quoted-string holding them needs no escaping; anything else is replaced.
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _quotable(text: str) -> str:
    """``text`` safe inside a quoted-string: an application may pass a claim value to an
    ``AuthError``, and a quote or CR/LF in it must not end the string or the header."""
    return _NOT_QUOTABLE.sub("?", text)


class AuthError(Exception):
    """An answer the protection gives instead of the application's: status, headers, body."""

    status = 401
    error: str | None = None

    def __init__(self, description: str | None = None) -> None:
        if description is not None:
            description = _quotable(description)
        super().__init__(description or "")
        self.description = description

    def challenge(self, realm: str) -> str:
        parts = [f'Bearer realm="{realm}"']
        if self.error is not None:
            parts.append(f'error="{self.error}"')
            if self.description:
                parts.append(f'error_description="{self.description}"')
        return ", ".join(parts)

    def headers(self, realm: str) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge(realm), "Cache-Control": "no-store"}

    def body(self) -> dict[str, str]:
        body = {"error": self.error or "unauthorized"}
        if self.description:
            body["error_description"] = self.description
        return body


class MissingBearer(AuthError):
    """The request carried no bearer token."""


class InvalidBearer(AuthError):
    error = "invalid_token"


class Forbidden(AuthError):
    status = 403
    error = "insufficient_scope"

    def __init__(self, description: str | None = None, *, scope: str | None = None) -> None:
        super().__init__(description)
        #: The scopes the operation needs (RFC 6750 section 3), when the check is by scope.
        self.scope = None if scope is None else _quotable(scope)

    def challenge(self, realm: str) -> str:
        challenge = super().challenge(realm)
        return challenge if self.scope is None else f'{challenge}, scope="{self.scope}"'


class Unavailable(AuthError):
    """No key set to verify with (the issuer was never reachable): not the client's fault."""

    status = 503
    error = "temporarily_unavailable"

    def headers(self, realm: str) -> dict[str, str]:
        return {"Retry-After": "5", "Cache-Control": "no-store"}


def single_authorization(values: Sequence[str]) -> str | None:
    """The request's one ``Authorization`` value, None without one; ``InvalidBearer`` for
    two (which one a proxy saw is anyone's guess)."""
    if len(values) > 1:
        raise InvalidBearer("The request has more than one Authorization header.")
    return values[0] if values else None


def parse_authorization(header: str | None) -> str | None:
    """The bearer token of an ``Authorization`` header; None when it holds none.

    A header of another scheme (Basic from a proxy or a browser, say) carries no bearer
    token: RFC 6750 section 3.1 answers a client that used an unsupported method with the
    bare challenge, and a public route serves it as it serves a client without a header.
    A ``Bearer`` header that is malformed is ``InvalidBearer``: the client tried to
    authenticate and failed, which is not the same as not trying.
    """
    if header is None:
        return None
    header = header.strip(" \t")  # optional whitespace around a field value (RFC 9110)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        if _BEARER_SCHEME.match(scheme):
            raise InvalidBearer("The bearer token is malformed.")
        return None
    token = token.lstrip(" ")
    if not _B64TOKEN.fullmatch(token):
        raise InvalidBearer("The bearer token is malformed.")
    return token


def auth_error_for(exc: TokensmithError) -> AuthError:
    """The answer for a verification failure: the error class's fixed text, never details."""
    if isinstance(exc, KeySetUnavailable):
        return Unavailable("The keys to verify tokens are not available yet.")
    if isinstance(exc, TokenError):
        return InvalidBearer(type(exc).description.rstrip(".") + ".")
    return InvalidBearer("The token could not be verified.")


def access_rule(
    roles: Iterable[str], scopes: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``require``'s arguments, checked once when a route is declared (misuse, not a 4xx).

    A string is refused: ``roles="ADMIN"`` would read as the roles A, D, M, I, N. A
    scope must be an RFC 6749 scope-token: one with a space could never be held (scopes
    are split at spaces), and it is written into the 403's ``scope`` attribute.
    """
    if isinstance(roles, str) or isinstance(scopes, str):
        name = "roles" if isinstance(roles, str) else "scopes"
        raise TypeError(f"{name} must be a list of names, not a string")
    wanted_roles, wanted_scopes = tuple(roles), tuple(scopes)
    if not all(isinstance(role, str) for role in wanted_roles):
        raise TypeError("roles must be strings")
    for scope in wanted_scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"{scope!r} is not a scope-token (RFC 6749 section 3.3)")
    return wanted_roles, wanted_scopes


def check_access(
    claims: AccessClaims | None, roles: Iterable[str] = (), scopes: Iterable[str] = ()
) -> AccessClaims:
    """The claims if they may pass: any one of ``roles`` (if given) and every ``scope``.

    ``roles`` and ``scopes`` are lists of names; a string is a ``TypeError`` (as in
    ``access_rule``): ``roles="ADMIN"`` would pass a token with the role "A".
    """
    wanted_roles, wanted_scopes = access_rule(roles, scopes)
    return checked_access(claims, wanted_roles, wanted_scopes)


def checked_access(
    claims: AccessClaims | None, wanted_roles: tuple[str, ...], wanted_scopes: tuple[str, ...]
) -> AccessClaims:
    """``check_access`` for arguments ``access_rule`` has checked (``require``'s, once,
    when the route was declared): nothing is checked again per request."""
    if claims is None:
        raise MissingBearer()
    if wanted_roles:
        if not any(claims.has_role(role) for role in wanted_roles):
            raise Forbidden("The token lacks a role this operation needs.")
    if wanted_scopes:
        held_scopes = claims.scopes  # split from the scope claim on each read: once here
        if any(scope not in held_scopes for scope in wanted_scopes):
            raise Forbidden(
                "The token lacks a scope this operation needs.", scope=" ".join(wanted_scopes)
            )
    return claims
