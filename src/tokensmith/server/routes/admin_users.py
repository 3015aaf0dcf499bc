"""``/admin/users``: create, list, read, change roles, disable or enable, reset the
password, and log a user out everywhere. Passwords come in the JSON body, never in the URL."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.server.json_body import read_json, string_list
from tokensmith.server.services import InvalidRequest, user_summary

from ._context import context
from .admin_common import admin, path_param, query_number, read_query, reply

__all__ = ["user_routes"]

_PROFILE_FIELDS = ("name", "email")


def _text(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string.")
    return value


def _profile(body: dict[str, Any]) -> dict[str, str]:
    profile = body.get("profile", {})
    if not isinstance(profile, dict) or not set(profile) <= set(_PROFILE_FIELDS):
        raise InvalidRequest(f"profile must be an object with only {list(_PROFILE_FIELDS)}.")
    if not all(isinstance(value, str) for value in profile.values()):
        raise InvalidRequest("profile values must be strings.")
    return profile


async def list_users(request: Request) -> Response:
    await admin(request)
    params = read_query(request, ("after", "limit"))
    limit = query_number(params, "limit", 100, maximum=500)
    assert limit is not None
    page = await context(request).users.page(after=params.get("after"), limit=limit)
    return reply({"users": [user_summary(u) for u in page.users], "next_after": page.next_after})


async def create_user(request: Request) -> Response:
    caller = await admin(request)
    body = await read_json(
        request, required=("username", "password"), optional=("roles", "profile")
    )
    user = await context(request).users.create(
        _text(body, "username"),
        _text(body, "password"),
        roles=string_list(body.get("roles", []), "roles"),
        profile=_profile(body),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return reply(user_summary(user), 201)


async def get_user(request: Request) -> Response:
    await admin(request)
    user = await context(request).users.get(path_param(request, "username"))
    return reply(user_summary(user))


async def set_roles(request: Request) -> Response:
    caller = await admin(request)
    body = await read_json(request, required=("roles",))
    user = await context(request).users.set_roles(
        path_param(request, "username"),
        string_list(body["roles"], "roles"),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return reply(user_summary(user))


async def _set_disabled(request: Request, disabled: bool) -> Response:
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    user, revoked = await context(request).users.set_disabled(
        path_param(request, "username"),
        disabled,
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return reply({**user_summary(user), "access_tokens_revoked": revoked})


async def disable(request: Request) -> Response:
    """Disable: no login, no refresh; every token issued to the user is revoked."""
    return await _set_disabled(request, True)


async def enable(request: Request) -> Response:
    return await _set_disabled(request, False)


async def set_password(request: Request) -> Response:
    caller = await admin(request)
    body = await read_json(request, required=("password",))
    await context(request).users.set_password(
        path_param(request, "username"),
        _text(body, "password"),
        actor=caller.actor,
        client_address=caller.client_address,
    )
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def revoke_tokens(request: Request) -> Response:
    caller = await admin(request)
    await read_json(request)  # it takes no members: anything else is a mistake
    revoked = await context(request).users.revoke_tokens(
        path_param(request, "username"), actor=caller.actor, client_address=caller.client_address
    )
    return reply({"access_tokens_revoked": revoked})


def user_routes() -> list[BaseRoute]:
    return [
        Route("/users", list_users, methods=["GET"]),
        Route("/users", create_user, methods=["POST"]),
        Route("/users/{username}", get_user, methods=["GET"]),
        Route("/users/{username}/roles", set_roles, methods=["PUT"]),
        Route("/users/{username}/disable", disable, methods=["POST"]),
        Route("/users/{username}/enable", enable, methods=["POST"]),
        Route("/users/{username}/password", set_password, methods=["PUT"]),
        Route("/users/{username}/revoke-tokens", revoke_tokens, methods=["POST"]),
    ]
