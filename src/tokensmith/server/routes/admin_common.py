"""What every admin API handler shares: the bearer check, query numbers, JSON answers.

Every handler starts with ``await admin(request)``: the request carries an access token
this server issued for the admin API (``aud`` = ``{issuer}/admin``) whose user still
holds role ADMIN (RFC 6750: 401 ``invalid_token`` or 403 ``insufficient_scope``).
Answers are never cached; changes are audited with actor ``admin:<username>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tokensmith.server.forms import check_pairs, parse_pairs
from tokensmith.server.http_errors import NO_STORE
from tokensmith.server.services import InvalidRequest, InvalidToken, MissingToken

from ._context import context

__all__ = ["admin", "path_param", "query", "query_number", "reply"]

# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_NUMBER = re.compile(r"[0-9]{1,18}")  # below 2**63: a SQL integer on every backend


async def admin(request: Request) -> str:
    """Authenticate the request's bearer token; returns the audit actor."""
    header = request.headers.get("authorization")
    if header is None:
        raise MissingToken()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise InvalidToken()
    ctx = context(request)
    user = await ctx.users.authenticate_admin(token, ctx.settings.issuer)
    return f"admin:{user.username}"


def query(request: Request, allowed: Iterable[str]) -> dict[str, str]:
    """The query string's parameters: each at most once, only those ``allowed``."""
    raw = request.scope.get("query_string", b"")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("The query string is malformed.") from None
    return check_pairs(parse_pairs(text), tuple(allowed))


def query_number(
    params: dict[str, str], name: str, default: int | None, *, maximum: int | None = None
) -> int | None:
    text = params.get(name)
    if text is None:
        return default
    if not _NUMBER.fullmatch(text) or (maximum is not None and not 1 <= int(text) <= maximum):
        limit = "" if maximum is None else f" (1 to {maximum})"
        raise InvalidRequest(f"{name} must be a non-negative integer{limit}.")
    return int(text)


def path_param(request: Request, name: str) -> str:
    value = request.path_params[name]
    assert isinstance(value, str)
    return value


def reply(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers=NO_STORE)
