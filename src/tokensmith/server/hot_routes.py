"""The token endpoint served before Starlette's router: the same handler, fewer layers.

Every other path goes through the router. ``POST /oauth/token`` is the request the
server exists for, and on it Starlette's exception middleware, the router, the route
and its request/response wrapper cost more than our form parsing and client
authentication together (measured on a serving process: see BENCHMARKS.md). Here it
runs the very handler the router would, and an exception it raises is answered by the
very handlers the app registers (``exception_handlers``), looked up the same way
(the exception's class, then its bases). What no handler takes propagates to
``CatchAllMiddleware``, which sits outside this one, as it would from the router.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HotRoutes"]

Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    """ASGI middleware: ``(method, path)`` pairs answered here, the rest passed on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[tuple[str, str], Handler],
        error_handlers: Mapping[type[Exception], ErrorHandler],
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.error_handlers = dict(error_handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a root_path the router strips it before matching: leave those requests
        # to the router rather than match paths a second way here.
        handler = (
            self.routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except Exception as exc:
            on_error = self._error_handler(exc)
            if on_error is None:
                raise
            response = await on_error(request, exc)
        await response(scope, receive, send)

    def _error_handler(self, exc: Exception) -> ErrorHandler | None:
        for kind in type(exc).__mro__:
            found = self.error_handlers.get(kind)
            if found is not None:
                return found
        return None

    def __repr__(self) -> str:
        paths: list[Any] = sorted(self.routes)
        return f"HotRoutes({paths!r})"
