"""``BearerAuth``: the same protection for Flask (WSGI), on the sync ``Verifier``.

    auth = BearerAuth(app, verifier)

    @app.post("/create")
    @auth.require(roles=["EDITOR", "ADMIN"])
    def create():
        claims = current_claims()

Every request with an ``Authorization`` header is verified before its view runs (a bad
token is 401 whatever the route); ``require`` demands a token, any one of ``roles`` and
every one of ``scopes``. Answers are RFC 6750's, as in the ASGI middleware.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from flask import Flask, Response, g, jsonify, request

from tokensmith.errors import TokensmithError
from tokensmith.verify.claims import AccessClaims

from .bearer import (
    AuthError,
    access_rule,
    auth_error_for,
    checked_access,
    parse_authorization,
    single_authorization,
)

__all__ = ["BearerAuth", "SyncTokenVerifier", "current_claims"]

F = TypeVar("F", bound=Callable[..., Any])
_G_KEY = "tokensmith_claims"


class SyncTokenVerifier(Protocol):
    def verify(self, token: str) -> AccessClaims: ...


def current_claims() -> AccessClaims | None:
    """The verified claims of the current request (None: no token was sent)."""
    if not hasattr(g, _G_KEY):
        raise RuntimeError("BearerAuth is not installed on this application")
    claims: AccessClaims | None = getattr(g, _G_KEY)
    return claims


class BearerAuth:
    def __init__(
        self,
        app: Flask | None = None,
        verifier: SyncTokenVerifier | None = None,
        *,
        realm: str = "api",
    ) -> None:
        if '"' in realm or "\\" in realm:
            raise ValueError("realm must not contain quotes or backslashes")
        self.verifier = verifier
        self.realm = realm
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.before_request(self._authenticate)
        app.register_error_handler(AuthError, self._answer)

    def _authenticate(self) -> Response | None:
        if self.verifier is None:
            raise RuntimeError("BearerAuth needs a verifier")
        try:
            token = parse_authorization(
                single_authorization(request.headers.getlist("Authorization"))
            )
            setattr(g, _G_KEY, None if token is None else self.verifier.verify(token))
        except AuthError as exc:
            return self._answer(exc)
        except TokensmithError as exc:
            return self._answer(auth_error_for(exc))
        return None

    def _answer(self, exc: AuthError) -> Response:
        response = jsonify(exc.body())
        response.status_code = exc.status
        response.headers.update(exc.headers(self.realm))
        return response

    def require(self, *, roles: Iterable[str] = (), scopes: Iterable[str] = ()) -> Callable[[F], F]:
        wanted_roles, wanted_scopes = access_rule(roles, scopes)

        def decorate(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    checked_access(current_claims(), wanted_roles, wanted_scopes)
                except AuthError as exc:
                    # Answered here, not raised: Flask asks a blueprint's handlers before
                    # the application's, so a blueprint's errorhandler(Exception) would
                    # turn the 401/403 into its own 500.
                    return self._answer(exc)
                return view(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate
