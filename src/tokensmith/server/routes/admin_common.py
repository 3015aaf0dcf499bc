"""What every admin API handler shares: the bearer check, query numbers, JSON answers.

Every handler starts with ``await admin(request)``: the request carries an access token
this server issued for the admin API (``aud`` = ``{issuer}/admin``) whose user still
holds role ADMIN (RFC 6750: 401 ``invalid_token`` or 403 ``insufficient_scope``).
Answers are never cached; changes are audited with actor ``admin:<username>``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from tokensmith.server.forms import query_number, read_query
from tokensmith.server.responses import NoStoreJSONResponse
from tokensmith.server.services import InvalidToken, MissingToken

from ._context import context

__all__ = ["admin", "path_param", "query_number", "read_query", "reply"]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


async def admin(request: Request) -> str:
    """Authenticate the request's bearer token; returns the audit actor."""
    headers = request.headers.getlist("authorization")
    if not headers:
        raise MissingToken()
    if len(headers) > 1:
        # Which one a proxy saw is anyone's guess (the middleware refuses them too).
        raise InvalidToken()
    scheme, _, token = headers[0].partition(" ")
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise InvalidToken()
    ctx = context(request)
    user = await ctx.users.authenticate_admin(token, ctx.settings.issuer)
    return f"admin:{user.username}"


def path_param(request: Request, name: str) -> str:
    value = request.path_params[name]
    assert isinstance(value, str)
    return value


def reply(body: Any, status: int = 200) -> NoStoreJSONResponse:
    return NoStoreJSONResponse(body, status)
