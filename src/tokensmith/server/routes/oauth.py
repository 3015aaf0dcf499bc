"""``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect`` and ``/oauth/revocations``.

Each handler parses strictly (``forms``), authenticates the client, calls one service
and renders. The parameters each grant takes are listed here: anything else is refused
(the issue asks for it, stricter than RFC 6749 section 3.1's "ignore unrecognized").
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.server.forms import (
    AUTH_PARAMETERS,
    client_address,
    client_credentials,
    query_number,
    read_form,
    read_query,
)
from tokensmith.server.responses import NO_STORE, NoStoreJSONResponse
from tokensmith.server.services import (
    InvalidClient,
    InvalidRequest,
    TokenResponse,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.store import Client

from ._context import context

__all__ = ["introspect", "revocations", "revoke", "token"]

_GRANT_PARAMETERS = {
    "password": frozenset({"grant_type", "username", "password", "scope"}),
    "refresh_token": frozenset({"grant_type", "refresh_token", "scope"}),
    "client_credentials": frozenset({"grant_type", "scope"}),
}
# What each grant's request may carry, client authentication in the body included.
_GRANT_FORM = {grant: names | AUTH_PARAMETERS for grant, names in _GRANT_PARAMETERS.items()}
_TOKEN_HINT = frozenset({"token", "token_type_hint"}) | AUTH_PARAMETERS
_FEED_LIMIT = 1000


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if value is None or value == "":
        raise InvalidRequest("A required parameter is missing.")
    return value


async def _client(request: Request, form: dict[str, str], address: str) -> Client:
    creds = client_credentials(request, form)
    return await context(request).clients.authenticate(creds.client_id, creds.secret, address)


def _tokens(response: TokenResponse) -> Response:
    return NoStoreJSONResponse(response.to_dict())


async def token(request: Request) -> Response:
    """RFC 6749 section 3.2 (and 4.3, 4.4, 6)."""
    # Names are checked once the grant is known: an unknown grant with its own
    # parameters (code, redirect_uri) is unsupported_grant_type, not invalid_request.
    form = await read_form(request, None)
    grant_type = _required(form, "grant_type")
    allowed = _GRANT_FORM.get(grant_type)
    if allowed is None:
        raise UnsupportedGrantType()
    if not form.keys() <= allowed:
        raise InvalidRequest("The request has a parameter this grant does not take.")
    address = client_address(request)  # the throttles' key, and every audit row's address
    client = await _client(request, form, address)
    tokens = context(request).tokens
    scope = form.get("scope")
    if grant_type == "password":
        username = _required(form, "username")
        password = _required(form, "password")
        result = await tokens.password_grant(client, username, password, scope, address)
    elif grant_type == "refresh_token":
        refresh = _required(form, "refresh_token")
        result = await tokens.refresh_grant(client, refresh, scope, client_address=address)
    else:
        result = await tokens.client_credentials_grant(client, scope, client_address=address)
    return _tokens(result)


async def revoke(request: Request) -> Response:
    """RFC 7009: 200 with an empty body, whether or not the token was known."""
    form = await read_form(request, _TOKEN_HINT, long_values=("token",))
    address = client_address(request)
    client = await _client(request, form, address)
    await context(request).tokens.revoke(
        client, _required(form, "token"), form.get("token_type_hint"), client_address=address
    )
    return Response(status_code=200, headers=NO_STORE)


def _confidential(client: Client) -> Client:
    # A public client proves nothing by authenticating (it has no secret), so it may
    # not learn token state: introspection and the revocation feed are for resource
    # servers, which are confidential clients (RFC 7662 section 2.1).
    if client.is_public:
        raise UnauthorizedClient("Only confidential clients may use this endpoint.")
    return client


async def introspect(request: Request) -> Response:
    """RFC 7662: ``{"active": false}`` for anything not currently valid."""
    form = await read_form(request, _TOKEN_HINT, long_values=("token",))
    client = _confidential(await _client(request, form, client_address(request)))
    answer: dict[str, Any] = await context(request).tokens.introspect(
        client, _required(form, "token")
    )
    return NoStoreJSONResponse(answer)


async def revocations(request: Request) -> Response:
    """The denylist feed for verifiers; client authentication by HTTP Basic only."""
    query = read_query(request, ("after", "limit"))
    after = query_number(query, "after", 0)
    limit = query_number(query, "limit", 100, maximum=_FEED_LIMIT)
    assert after is not None and limit is not None
    if request.headers.get("authorization") is None:
        raise InvalidClient()
    _confidential(await _client(request, {}, client_address(request)))
    page = await context(request).tokens.revocation_feed(after, limit)
    return NoStoreJSONResponse(page)
