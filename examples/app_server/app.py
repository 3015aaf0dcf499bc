"""Four routes protected by the verifier SDK: an application server never signs tokens.

- ``GET /public``: no token needed.
- ``GET /me``: any valid token; answers the caller's claims.
- ``POST /create``: role EDITOR or ADMIN.
- ``POST /delete``: role ADMIN only (an EDITOR gets 403 insufficient_scope).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI

from tokensmith.middleware import BearerAuthMiddleware
from tokensmith.middleware.access_log import AccessLog, AccessLogMiddleware
from tokensmith.middleware.fastapi import require
from tokensmith.verify import AccessClaims, AsyncVerifier, VerifierConfig

__all__ = ["create_app"]


def create_app(config: VerifierConfig, verifier: AsyncVerifier | None = None) -> FastAPI:
    verifier = verifier or AsyncVerifier(config)
    # The request log without query strings: a client may put its token there, and
    # uvicorn's own log (off in __main__) would write it down.
    access_log = AccessLog()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Discovery, the first key set and the revocation poller; closed on shutdown.
        stop = anyio.Event()
        async with verifier, anyio.create_task_group() as group:
            group.start_soon(access_log.run, stop)
            try:
                yield
            finally:
                stop.set()

    app = FastAPI(title="tokensmith example application server", lifespan=lifespan)
    app.add_middleware(BearerAuthMiddleware, verifier=verifier, realm="app")
    app.add_middleware(AccessLogMiddleware, log=access_log)  # outermost: sees every answer

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"message": "anyone may read this"}

    @app.get("/me")
    async def me(claims: Annotated[AccessClaims, Depends(require())]) -> dict[str, Any]:
        return {
            "sub": claims.sub,
            "client_id": claims.client_id,
            "roles": list(claims.roles),
            "scopes": list(claims.scopes),
            "name": claims.claims.get("name"),
            "exp": claims.exp,
        }

    @app.post("/create")
    async def create(
        claims: Annotated[AccessClaims, Depends(require(roles=["EDITOR", "ADMIN"]))],
    ) -> dict[str, str]:
        return {"created": "ok", "by": claims.sub}

    @app.post("/delete")
    async def delete(
        claims: Annotated[AccessClaims, Depends(require(roles=["ADMIN"]))],
    ) -> dict[str, str]:
        return {"deleted": "ok", "by": claims.sub}

    return app
