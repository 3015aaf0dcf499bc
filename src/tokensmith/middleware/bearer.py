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
from collections.abc import Iterable

from tokensmith.errors import KeySetUnavailable, TokenError, TokensmithError
from tokensmith.verify.claims import AccessClaims

__all__ = [
    "AuthError",
    "Forbidden",
    "InvalidBearer",
    "MissingBearer",
    "Unavailable",
    "auth_error_for",
    "check_access",
    "parse_authorization",
]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class AuthError(Exception):
    """An answer the protection gives instead of the application's: status, headers, body."""

    status = 401
    error: str | None = None

    def __init__(self, description: str | None = None) -> None:
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


class Unavailable(AuthError):
    """No key set to verify with (the issuer was never reachable): not the client's fault."""

    status = 503
    error = "temporarily_unavailable"

    def headers(self, realm: str) -> dict[str, str]:
        return {"Retry-After": "5", "Cache-Control": "no-store"}


def parse_authorization(header: str | None) -> str | None:
    """The bearer token of an ``Authorization`` header; None if there is no header.

    A header of another scheme, or a malformed one, is ``InvalidBearer``: the client
    tried to authenticate and failed, which is not the same as not trying.
    """
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidBearer("The Authorization header is not a Bearer token.")
    token = token.strip(" ")
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


def check_access(
    claims: AccessClaims | None, roles: Iterable[str] = (), scopes: Iterable[str] = ()
) -> AccessClaims:
    """The claims if they may pass: any one of ``roles`` (if given) and every ``scope``."""
    if claims is None:
        raise MissingBearer()
    wanted_roles = tuple(roles)
    if wanted_roles:
        if not any(claims.has_role(role) for role in wanted_roles):
            raise Forbidden("The token lacks a role this operation needs.")
    wanted_scopes = tuple(scopes)
    if wanted_scopes:
        held_scopes = claims.scopes  # split from the scope claim on each read: once here
        if any(scope not in held_scopes for scope in wanted_scopes):
            raise Forbidden("The token lacks a scope this operation needs.")
    return claims
