"""``/admin/clients``, ``/admin/keys`` and ``/admin/audit``.

Key changes go through the key ring as the CLI's and the scheduled ones do (plan from
the rows under the write lock, apply, audit, in one transaction); this process sees
them at once, other instances at their next key ring pass.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.keys import Action, CreateKey
from tokensmith.server.json_body import read_json, string_list
from tokensmith.server.services import (
    MAX_AUDIT_PAGE,
    InvalidRequest,
    audit_summary,
    client_summary,
    key_summary,
)

from ._context import context
from .admin_common import admin, path_param, query_number, read_query, reply

__all__ = ["ops_routes"]


async def list_clients(request: Request) -> Response:
    await admin(request)
    clients = await context(request).clients.list()
    return reply({"clients": [client_summary(c) for c in clients]})


def _lifetime(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value <= 0:
        raise InvalidRequest("access_token_lifetime must be a positive integer (seconds).")
    return value


async def create_client(request: Request) -> Response:
    """A new client; a confidential one's secret is in this answer and nowhere else."""
    caller = await admin(request)
    body = await read_json(
        request,
        required=("client_id", "grant_types"),
        optional=("public", "scopes", "audiences", "access_token_lifetime"),
    )
    client_id, public = body["client_id"], body.get("public", False)
    if not isinstance(client_id, str) or not isinstance(public, bool):
        raise InvalidRequest("client_id must be a string and public a boolean.")
    created = await context(request).clients.create(
        client_id,
        confidential=not public,
        grant_types=string_list(body["grant_types"], "grant_types"),
        scopes=string_list(body.get("scopes", []), "scopes"),
        audiences=string_list(body.get("audiences", []), "audiences"),
        access_token_lifetime=_lifetime(body.get("access_token_lifetime")),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    answer: dict[str, Any] = client_summary(created.client)
    if created.secret is not None:
        answer["client_secret"] = created.secret
    return reply(answer, 201)


async def get_client(request: Request) -> Response:
    await admin(request)
    client = await context(request).clients.get(path_param(request, "client_id"))
    return reply(client_summary(client))


async def reset_secret(request: Request) -> Response:
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    created = await context(request).clients.reset_secret(
        path_param(request, "client_id"), actor=caller.actor, client_address=caller.client_address
    )
    return reply({**client_summary(created.client), "client_secret": created.secret})


async def _client_disabled(request: Request, disabled: bool) -> Response:
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    client = await context(request).clients.set_disabled(
        path_param(request, "client_id"),
        disabled,
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return reply(client_summary(client))


async def disable_client(request: Request) -> Response:
    return await _client_disabled(request, True)


async def enable_client(request: Request) -> Response:
    return await _client_disabled(request, False)


async def set_audiences(request: Request) -> Response:
    """Replace the client's audiences (the ``aud`` of the tokens issued to it from now on)."""
    caller = await admin(request)
    body = await read_json(request, required=("audiences",))
    client = await context(request).clients.set_audiences(
        path_param(request, "client_id"),
        string_list(body["audiences"], "audiences"),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return reply(client_summary(client))


def _action(action: Action) -> dict[str, Any]:
    if isinstance(action, CreateKey):
        return {"action": "create", "alg": action.alg, "state": action.state.value}
    return {"action": type(action).__name__.lower(), "kid": action.kid}


async def _keys_answer(request: Request, actions: list[Action]) -> Response:
    ring = context(request).keyring
    return reply(
        {
            "actions": [_action(a) for a in actions],
            # The ring's policy: its keep_until comes from the database (a lowered token
            # lifetime keeps retired keys longer), which the settings' own policy lacks.
            "keys": [key_summary(r, ring.policy) for r in ring.records],
        }
    )


async def list_keys(request: Request) -> Response:
    await admin(request)
    ctx = context(request)
    await ctx.keyring.reload(ctx.db)
    return await _keys_answer(request, [])


async def rotate_keys(request: Request) -> Response:
    """The next key takes over, or a next key is published first (``force``: now)."""
    caller = await admin(request)
    body = await read_json(request, optional=("alg", "force"))
    ctx = context(request)
    alg, force = body.get("alg", ctx.keyring.default_alg), body.get("force", False)
    if not isinstance(alg, str) or not isinstance(force, bool):
        raise InvalidRequest("alg must be a string and force a boolean.")
    actions = await ctx.keyring.rotate(
        ctx.db, alg, force=force, actor=caller.actor, client_address=caller.client_address
    )
    return await _keys_answer(request, actions)


async def retire_key(request: Request) -> Response:
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    ctx = context(request)
    actions = await ctx.keyring.retire(
        ctx.db,
        path_param(request, "kid"),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return await _keys_answer(request, actions)


async def revoke_key(request: Request) -> Response:
    """Compromise: unpublished at once, tokens it signed stop verifying."""
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    ctx = context(request)
    actions = await ctx.keyring.revoke(
        ctx.db,
        path_param(request, "kid"),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return await _keys_answer(request, actions)


async def audit_page(request: Request) -> Response:
    """Newest first; the next page is ``?before=<next_before>``."""
    await admin(request)
    params = read_query(request, ("before", "since", "limit"))
    limit = query_number(params, "limit", 100, maximum=MAX_AUDIT_PAGE)
    assert limit is not None
    page = await context(request).audit.page(
        before=query_number(params, "before", None),
        since=query_number(params, "since", None),
        limit=limit,
    )
    return reply(
        {"entries": [audit_summary(e) for e in page.entries], "next_before": page.next_before}
    )


def ops_routes() -> list[BaseRoute]:
    return [
        Route("/clients", list_clients, methods=["GET"]),
        Route("/clients", create_client, methods=["POST"]),
        Route("/clients/{client_id}", get_client, methods=["GET"]),
        Route("/clients/{client_id}/secret", reset_secret, methods=["POST"]),
        Route("/clients/{client_id}/disable", disable_client, methods=["POST"]),
        Route("/clients/{client_id}/enable", enable_client, methods=["POST"]),
        Route("/clients/{client_id}/audiences", set_audiences, methods=["PUT"]),
        Route("/keys", list_keys, methods=["GET"]),
        Route("/keys/rotate", rotate_keys, methods=["POST"]),
        Route("/keys/{kid}/retire", retire_key, methods=["POST"]),
        Route("/keys/{kid}/revoke", revoke_key, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]
