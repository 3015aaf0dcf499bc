"""OAuth 2.0 errors as values the services raise and the routes render (RFC 6749 section 5.2).

Each error carries the RFC ``error`` code, the HTTP ``status`` the token endpoint answers,
a safe ``description`` (never a credential, token or username) and our stable ``code``.
The services hold no HTTP types, so ``headers()`` returns plain strings for the route:
``WWW-Authenticate`` for ``invalid_client`` (RFC 6749 section 5.2 asks for it with 401)
and ``Retry-After`` for throttling.

    try:
        response = await tokens.password_grant(client, username, password, scope, address)
    except OAuthError as exc:
        return JSONResponse(exc.body(), exc.status, headers=exc.headers())
"""

from __future__ import annotations

from typing import ClassVar

from tokensmith.errors import TokensmithError

__all__ = [
    "InsufficientRole",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "MissingToken",
    "OAuthError",
    "SlowDown",
    "TemporarilyUnavailable",
    "UnauthorizedClient",
    "UnsupportedGrantType",
]


class OAuthError(TokensmithError):
    """An OAuth error answer; subclasses fix ``error``, ``status`` and ``code``."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400
    code = "oauth_invalid_request"
    description = "The request is not valid."

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description)
        # The instance's text: the class default unless the raiser said something more
        # precise (and still safe: callers never interpolate what the client sent).
        self.description = self.message

    def body(self) -> dict[str, str]:
        """The JSON body RFC 6749 section 5.2 prescribes."""
        return {"error": self.error, "error_description": self.description}

    def headers(self) -> dict[str, str]:
        """Headers the answer needs besides the body's (none by default)."""
        return {}

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "error": self.error}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class InvalidRequest(OAuthError):
    error = "invalid_request"
    code = "oauth_invalid_request"
    description = "The request is missing a parameter or is malformed."


class InvalidClient(OAuthError):
    """Client authentication failed: unknown client, wrong or missing secret, disabled.

    One text for every cause, so the answer does not tell which client ids exist.
    """

    error = "invalid_client"
    status = 401
    code = "oauth_invalid_client"
    description = "Client authentication failed."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="tokensmith", charset="UTF-8"'}


class InvalidGrant(OAuthError):
    """Wrong password, unknown or disabled user, bad refresh token: all one answer."""

    error = "invalid_grant"
    code = "oauth_invalid_grant"
    description = "The provided authorization grant is invalid, expired or revoked."


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    code = "oauth_unauthorized_client"
    description = "The client is not allowed to use this grant type."


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    code = "oauth_unsupported_grant_type"
    description = "The grant type is not supported."


class InvalidScope(OAuthError):
    error = "invalid_scope"
    code = "oauth_invalid_scope"
    description = "The requested scope is invalid or exceeds what the client may ask for."


class InvalidToken(OAuthError):
    """RFC 6750 section 3.1, for endpoints that take a bearer token (the admin API)."""

    error = "invalid_token"
    status = 401
    code = "oauth_invalid_token"
    description = "The access token is invalid, expired or revoked."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="tokensmith", error="invalid_token"'}


class MissingToken(OAuthError):
    """RFC 6750 section 3.1: no bearer token at all, so the challenge names no error."""

    error = "unauthorized"
    status = 401
    code = "missing_token"
    description = "This endpoint needs a bearer access token."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="tokensmith"'}


class InsufficientRole(OAuthError):
    """RFC 6750 section 3.1 ``insufficient_scope``: a valid token without the role needed."""

    error = "insufficient_scope"
    status = 403
    code = "forbidden"
    description = "The access token does not carry the role this endpoint needs."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="tokensmith", error="insufficient_scope"'}


class TemporarilyUnavailable(OAuthError):
    """The server cannot answer now (database unreachable): 503, the client may retry."""

    error = "temporarily_unavailable"
    status = 503
    code = "oauth_temporarily_unavailable"
    description = "The server is temporarily unavailable; retry later."

    def __init__(self, description: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class SlowDown(OAuthError):
    """Throttled: too many failed credential checks. 429 with Retry-After.

    RFC 6749 defines no throttling error; ``slow_down`` is the registered OAuth error for
    "poll less often" (RFC 8628 section 3.5) and is what clients already know to back off on.
    """

    error = "slow_down"
    status = 429
    code = "oauth_too_many_requests"
    description = "Too many failed attempts; retry later."

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        if type(retry_after) is not int or retry_after < 1:
            raise ValueError("retry_after must be a whole number of seconds >= 1")
        super().__init__(description)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
