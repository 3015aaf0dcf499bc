"""What every admin API handler shares: the bearer check, query numbers, JSON answers.

Every handler starts with ``await admin(request)``: the request carries an access token
this server issued for the admin API (``aud`` = ``{issuer}/admin``) whose user still
holds role ADMIN (RFC 6750: 401 ``invalid_token`` or 403 ``insufficient_scope``).
Answers are never cached; changes are audited with actor ``admin:<username>`` and the
request's ``client_address`` (``Caller``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from tokensmith.server.forms import client_address, query_number, read_query
from tokensmith.server.responses import NoStoreJSONResponse
from tokensmith.server.services import InvalidToken, MissingToken

from ._context import context

__all__ = ["Caller", "admin", "path_param", "query_number", "read_query", "reply"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an admin API request's audit rows name: the actor (``admin:<username>``) and
    the address the request came from (``forms.client_address``)."""

    actor: str
    client_address: str


async def admin(request: Request) -> Caller:
    """Authenticate the request's bearer token; returns who its audit rows name.

    The header is read as the application servers' middleware reads it: another scheme
    is no bearer token (RFC 6750 section 3.1: the bare challenge), a malformed Bearer
    header or two headers are ``invalid_token``.
    """
    # Imported here, as create_app imports the access log: the middleware package loads
    # the verifier SDK and httpx (and through it rich), which the CLI's commands that
    # build services without an app must not pay for.
    from tokensmith.middleware.bearer import (
        InvalidBearer,
        parse_authorization,
        single_authorization,
    )

    try:
        header = single_authorization(request.headers.getlist("authorization"))
        token = parse_authorization(header)
    except InvalidBearer:
        raise InvalidToken() from None
    if token is None:
        raise MissingToken()
    ctx = context(request)
    user = await ctx.users.authenticate_admin(token, ctx.settings.issuer)
    return Caller(f"admin:{user.username}", client_address(request))


def path_param(request: Request, name: str) -> str:
    value = request.path_params[name]
    assert isinstance(value, str)
    return value


def reply(body: Any, status: int = 200) -> NoStoreJSONResponse:
    return NoStoreJSONResponse(body, status)
