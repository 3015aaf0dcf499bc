"""``BearerAuthMiddleware``: verify the bearer token of every HTTP request, once.

A pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per
request). A request without a token passes with no claims: routes decide whether they
need one (``require`` in ``tokensmith.middleware.fastapi``, or ``claims_of``). A request
with a bad token is answered 401 here, whatever the route: a client that sent a
credential must learn it was refused. ``AuthError`` raised by the application (``require``
does) is rendered here too, as RFC 6750 asks, if no response has started.

WebSocket handshakes are HTTP requests too, and get the same treatment: their token is
verified and their claims set before the application sees them. A refused handshake is
answered with the same 401 or 403 where the server supports ASGI's denial response
(uvicorn does), and otherwise closed before it is accepted (1008, policy violation; the
server answers 403). Letting a handshake through unverified would let a bad token reach
a WebSocket route that only reads ``claims_of``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from tokensmith.errors import TokensmithError
from tokensmith.verify.claims import AccessClaims

from .bearer import AuthError, auth_error_for, parse_authorization, single_authorization

__all__ = ["STATE_KEY", "AsyncTokenVerifier", "BearerAuthMiddleware", "claims_of"]

#: Where the claims go: ``scope["state"][STATE_KEY]``, i.e. ``request.state.token_claims``.
STATE_KEY = "token_claims"
#: RFC 6455 section 7.4.1: the close code for a handshake refused by policy.
POLICY_VIOLATION = 1008

Scope = dict[str, Any]
Message = dict[str, Any]


class AsyncTokenVerifier(Protocol):
    async def verify(self, token: str) -> AccessClaims: ...


def claims_of(scope_or_request: Any) -> AccessClaims | None:
    """The verified claims of a request (a Starlette ``Request`` or an ASGI scope)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    state = scope.get("state")
    if state is None or STATE_KEY not in state:
        raise RuntimeError("BearerAuthMiddleware is not installed on this application")
    claims: AccessClaims | None = state[STATE_KEY]
    return claims


def _authorization(scope: Scope) -> str | None:
    values = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"
    ]
    return single_authorization(values)


class BearerAuthMiddleware:
    def __init__(self, app: Any, verifier: AsyncTokenVerifier, *, realm: str = "api") -> None:
        if '"' in realm or "\\" in realm:
            raise ValueError("realm must not contain quotes or backslashes")
        self.app = app
        self.verifier = verifier
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        try:
            claims = await self._verified(scope)
        except AuthError as exc:
            await self._answer(exc, send)
            return
        scope.setdefault("state", {})[STATE_KEY] = claims
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except AuthError as exc:
            if started:
                raise
            await self._answer(exc, send)

    async def _verified(self, scope: Scope) -> AccessClaims | None:
        """The claims of the request's token, None without one; ``AuthError`` if refused."""
        header = _authorization(scope)  # InvalidBearer for two (single_authorization)
        try:
            token = parse_authorization(header)
            return None if token is None else await self.verifier.verify(token)
        except TokensmithError as exc:
            raise auth_error_for(exc) from None

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        """The handshake's token checked as a request's; a refusal before it is accepted."""
        try:
            claims = await self._verified(scope)
        except AuthError as exc:
            await self._deny(scope, exc, receive, send, connected=False)
            return
        scope.setdefault("state", {})[STATE_KEY] = claims
        connected = answered = False

        async def tracking_receive() -> Message:
            nonlocal connected
            message: Message = await receive()
            if message["type"] == "websocket.connect":
                connected = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal answered
            answered = True  # an accept, a close or a denial: too late for ours
            await send(message)

        try:
            await self.app(scope, tracking_receive, tracking_send)
        except AuthError as exc:
            if answered:
                raise
            await self._deny(scope, exc, receive, send, connected=connected)

    async def _deny(
        self, scope: Scope, exc: AuthError, receive: Any, send: Any, *, connected: bool
    ) -> None:
        if not connected and (await receive())["type"] != "websocket.connect":
            return  # the client left before its handshake was read
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await self._answer(exc, send, prefix="websocket.http.response")
        else:
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})

    async def _answer(self, exc: AuthError, send: Any, *, prefix: str = "http.response") -> None:
        body = json.dumps(exc.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers(self.realm).items()]
        await send({"type": f"{prefix}.start", "status": exc.status, "headers": headers})
        await send({"type": f"{prefix}.body", "body": body})
