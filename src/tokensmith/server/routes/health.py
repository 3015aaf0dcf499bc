"""``/healthz`` (the process answers) and ``/readyz`` (the database answers too)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.responses import JSONResponse

from ._context import context

_NO_CACHE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_NO_CACHE)


async def readyz(request: Request) -> Response:
    if await context(request).db.ping():
        return JSONResponse({"status": "ok"}, headers=_NO_CACHE)
    # Load balancers act on the status; the body says why for a human.
    body = {"status": "unavailable", "error": "temporarily_unavailable"}
    return JSONResponse(body, 503, headers={**_NO_CACHE, "Retry-After": "5"})
