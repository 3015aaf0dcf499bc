"""The request's ``ServerContext``."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.requests import Request

if TYPE_CHECKING:  # app.py imports the routes: a runtime import would be circular
    from tokensmith.server.app import ServerContext


def context(request: Request) -> ServerContext:
    return cast("ServerContext", request.app.state.ctx)
