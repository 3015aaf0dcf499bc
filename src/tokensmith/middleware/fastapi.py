"""``require``: the FastAPI dependency that demands a verified token, roles and scopes.

    app.add_middleware(BearerAuthMiddleware, verifier=verifier)

    @app.post("/create")
    async def create(claims: Annotated[AccessClaims, Depends(require(roles=["EDITOR"]))]): ...

``roles``: any one of them; ``scopes``: all of them. The dependency reads the claims the
middleware verified (no second verification) and declares the HTTP bearer scheme, so the
OpenAPI document shows which routes need a token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tokensmith.verify.claims import AccessClaims

from .asgi import claims_of
from .bearer import check_access

__all__ = ["bearer_scheme", "require"]

#: Documents the scheme only: the middleware has already read and verified the header.
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT")


def require(
    *, roles: Iterable[str] = (), scopes: Iterable[str] = ()
) -> Callable[..., Awaitable[AccessClaims]]:
    wanted_roles, wanted_scopes = tuple(roles), tuple(scopes)

    # async: a plain def dependency would run in FastAPI's thread pool on every request.
    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ) -> AccessClaims:
        return check_access(claims_of(request), wanted_roles, wanted_scopes)

    return dependency
