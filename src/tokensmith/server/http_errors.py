"""The one place that turns exceptions into HTTP answers, all JSON.

- ``OAuthError``: its status, ``{"error", "error_description", "code"}`` and its headers.
- ``DatabaseUnavailable`` and ``NoSigningKey``: 503 ``temporarily_unavailable`` with
  ``Retry-After`` (the server recovers on its own; the client may retry).
- The admin API's domain errors (unknown user, name taken, weak password, rotation too
  early...): their status from ``_DOMAIN_STATUS`` and ``{"error", "error_description",
  "code"}`` with our stable code as ``error``. Their messages are our own texts.
- ``HTTPException`` (404, 405 from routing): the same JSON shape.
- Anything else: 500 ``{"error": "server_error"}``, never a traceback or the exception's
  text in the body; logged with its type and traceback (messages in this project never
  hold secrets, and tracebacks carry no local values).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.errors import TokensmithError
from tokensmith.keys import RotationTooEarly, UnknownKey
from tokensmith.server.responses import NO_STORE, JSONResponse
from tokensmith.server.services import (
    AlgorithmNotConfigured,
    ClientConfigError,
    InvalidUserData,
    NoSigningKey,
    NotCurrentKey,
    OAuthError,
    SlowDown,
    TemporarilyUnavailable,
    WeakPassword,
)
from tokensmith.store import (
    ClientIdTaken,
    DatabaseUnavailable,
    InvalidUsername,
    UnknownClient,
    UnknownUser,
    UsernameTaken,
)

__all__ = [
    "NO_STORE",
    "RETRY_AFTER_UNAVAILABLE",
    "CatchAllMiddleware",
    "exception_handlers",
    "oauth_response",
]

logger = logging.getLogger("tokensmith.server")

RETRY_AFTER_UNAVAILABLE = 5

_HTTP_ERRORS = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
}
_DOMAIN_STATUS: dict[type[TokensmithError], int] = {
    InvalidUsername: 400,
    InvalidUserData: 400,
    WeakPassword: 400,
    ClientConfigError: 400,
    AlgorithmNotConfigured: 400,
    UnknownUser: 404,
    UnknownClient: 404,
    UnknownKey: 404,
    UsernameTaken: 409,
    ClientIdTaken: 409,
    NotCurrentKey: 409,
    RotationTooEarly: 409,
}
_MAX_DESCRIPTION = 200
_SERVER_ERROR = b'{"error":"server_error","error_description":"Internal server error."}'


def oauth_response(exc: OAuthError) -> JSONResponse:
    body = {**exc.body(), "code": exc.code}
    return JSONResponse(body, exc.status, headers={**NO_STORE, **exc.headers()})


async def _oauth(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_response(exc)


def _oauth_telling(on_throttled: Callable[[Request], None]) -> Any:
    async def _oauth_and_tell(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SlowDown):
            on_throttled(request)
        return await _oauth(request, exc)

    return _oauth_and_tell


async def _tokensmith(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DatabaseUnavailable | NoSigningKey):
        logger.warning("%s on %s %s", type(exc).__name__, request.method, request.url.path)
        return oauth_response(TemporarilyUnavailable(retry_after=RETRY_AFTER_UNAVAILABLE))
    status = next((s for t, s in _DOMAIN_STATUS.items() if isinstance(exc, t)), None)
    if status is not None:
        assert isinstance(exc, TokensmithError)
        body = {"error": exc.code, "error_description": _bounded(exc.message), "code": exc.code}
        return JSONResponse(body, status, headers=NO_STORE)
    return _server_error(request, exc)


def _bounded(message: str) -> str:
    # Some messages quote what the client sent (a kid, a username, an algorithm): an
    # answer must not grow with the request.
    if len(message) <= _MAX_DESCRIPTION:
        return message
    return message[: _MAX_DESCRIPTION - 1] + "…"


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = _HTTP_ERRORS.get(exc.status_code, "error")
    headers: Mapping[str, str] = exc.headers or {}
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=dict(headers))
    # An error answer like any other: never cached (404 and 405 are heuristically
    # cacheable, RFC 9110 sections 15.5.5 and 15.5.6, unless told otherwise).
    return JSONResponse({"error": error}, exc.status_code, headers={**NO_STORE, **headers})


def _server_error(request: Request | None, exc: BaseException) -> Response:
    where = "" if request is None else f" on {request.method} {request.url.path}"
    logger.error("unhandled %s%s", type(exc).__name__, where, exc_info=exc)
    return Response(_SERVER_ERROR, 500, media_type="application/json", headers=NO_STORE)


def exception_handlers(*, on_throttled: Callable[[Request], None] | None = None) -> dict[Any, Any]:
    """For ``Starlette(exception_handlers=...)``; the catch-all is ``CatchAllMiddleware``.

    ``on_throttled`` is told of each request answered 429 (``proxy_hint.py``).
    """
    oauth = _oauth if on_throttled is None else _oauth_telling(on_throttled)
    return {OAuthError: oauth, TokensmithError: _tokensmith, HTTPException: _http}


class CatchAllMiddleware:
    """The 500 answer for anything the handlers above did not take.

    Starlette's own ``ServerErrorMiddleware`` answers too but then re-raises (and in
    debug mode would print the traceback into the body); this one answers and stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise  # too late for an answer of our own: the server closes the connection
            response = _server_error(Request(scope), exc)
            await response(scope, receive, send)
