"""``require``: the FastAPI dependency that demands a verified token, roles and scopes.

    app.add_middleware(BearerAuthMiddleware, verifier=verifier)

    @app.post("/create")
    async def create(claims: Annotated[AccessClaims, Depends(require(roles=["EDITOR"]))]): ...

``roles``: any one of them; ``scopes``: all of them. The dependency reads the claims the
middleware verified (no second verification) and is itself the HTTP bearer security
scheme, so the OpenAPI document shows which routes need a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase

from tokensmith.verify.claims import AccessClaims

from .asgi import claims_of
from .bearer import access_rule, checked_access

__all__ = ["bearer_scheme", "require"]

#: The scheme as FastAPI's ``HTTPBearer`` (``auto_error=False``), for an application's
#: own dependencies; ``require`` documents the same scheme under the same name.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT")


class _Require(SecurityBase):
    """The dependency ``require`` returns: the role and scope check, and the bearer scheme.

    FastAPI documents a dependency whose callable is a ``SecurityBase`` as a security
    requirement of every route using it. Being the scheme itself, rather than depending on
    ``Security(bearer_scheme)``, costs one dependency resolution per request instead of two
    (and no second parse of the header, whose result the check never used).
    """

    def __init__(self, roles: tuple[str, ...], scopes: tuple[str, ...]) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT")
        self.scheme_name = bearer_scheme.scheme_name
        self.roles = roles
        self.scopes = scopes

    # async: a plain def dependency would run in FastAPI's thread pool on every request.
    # HTTPConnection: FastAPI passes the Request of an HTTP route, the WebSocket of a
    # WebSocket route (the middleware verified its handshake).
    async def __call__(self, connection: HTTPConnection) -> AccessClaims:
        return checked_access(claims_of(connection), self.roles, self.scopes)


def require(
    *, roles: Iterable[str] = (), scopes: Iterable[str] = ()
) -> Callable[..., Awaitable[AccessClaims]]:
    return _Require(*access_rule(roles, scopes))
