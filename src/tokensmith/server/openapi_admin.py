"""The admin API's part of the OpenAPI document: one table row per operation."""

from __future__ import annotations

from typing import Any

__all__ = ["admin_paths"]

_ERROR = {"$ref": "#/components/responses/Error"}
_ERRORS = {code: _ERROR for code in ("400", "401", "403", "404", "409", "503")}
_OBJECT = {"type": "object"}
_STRINGS = {"type": "array", "items": {"type": "string"}, "maxItems": 100}
_PROFILE = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
    "additionalProperties": False,
}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def _query(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "query",
            "schema": {"type": "string" if name == "after" else "integer"},
        }
        for name in names
    ]


_NEW_USER = _body(
    {
        "username": {"type": "string"},
        "password": {"type": "string", "minLength": 12},
        "roles": _STRINGS,
        "profile": _PROFILE,
    },
    ["username", "password"],
)
_NEW_CLIENT = _body(
    {
        "client_id": {"type": "string"},
        "public": {"type": "boolean"},
        "grant_types": _STRINGS,
        "scopes": _STRINGS,
        "audiences": _STRINGS,
        "access_token_lifetime": {"type": "integer", "minimum": 1},
    },
    ["client_id", "grant_types"],
)

# (method, path, summary, request body, query parameters, success status)
_OPERATIONS: list[tuple[str, str, str, dict[str, Any] | None, list[dict[str, Any]], str]] = [
    ("get", "/admin/users", "List users by username", None, _query("after", "limit"), "200"),
    ("post", "/admin/users", "Create a user", _NEW_USER, [], "201"),
    ("get", "/admin/users/{username}", "One user", None, [], "200"),
    (
        "put",
        "/admin/users/{username}/roles",
        "Replace the user's roles",
        _body({"roles": _STRINGS}, ["roles"]),
        [],
        "200",
    ),
    (
        "post",
        "/admin/users/{username}/disable",
        "Disable the user and revoke its tokens",
        None,
        [],
        "200",
    ),
    ("post", "/admin/users/{username}/enable", "Enable the user", None, [], "200"),
    (
        "put",
        "/admin/users/{username}/password",
        "Set the user's password",
        _body({"password": {"type": "string", "minLength": 12}}, ["password"]),
        [],
        "204",
    ),
    (
        "post",
        "/admin/users/{username}/revoke-tokens",
        "Log the user out everywhere",
        None,
        [],
        "200",
    ),
    ("get", "/admin/clients", "List clients", None, [], "200"),
    (
        "post",
        "/admin/clients",
        "Register a client (its secret is shown once)",
        _NEW_CLIENT,
        [],
        "201",
    ),
    ("get", "/admin/clients/{client_id}", "One client", None, [], "200"),
    ("post", "/admin/clients/{client_id}/secret", "A new secret (shown once)", None, [], "200"),
    ("post", "/admin/clients/{client_id}/disable", "Switch the client off", None, [], "200"),
    ("post", "/admin/clients/{client_id}/enable", "Switch the client on", None, [], "200"),
    (
        "put",
        "/admin/clients/{client_id}/audiences",
        "Replace the client's audiences (the aud of its tokens from now on)",
        _body({"audiences": _STRINGS}, ["audiences"]),
        [],
        "200",
    ),
    ("get", "/admin/keys", "The signing keys (public metadata)", None, [], "200"),
    (
        "post",
        "/admin/keys/rotate",
        "Rotate a ring (force: switch now)",
        _body({"alg": {"type": "string"}, "force": {"type": "boolean"}}, []),
        [],
        "200",
    ),
    ("post", "/admin/keys/{kid}/retire", "Retire the current key now", None, [], "200"),
    ("post", "/admin/keys/{kid}/revoke", "Revoke a compromised key", None, [], "200"),
    (
        "get",
        "/admin/audit",
        "The audit log, newest first",
        None,
        _query("before", "since", "limit"),
        "200",
    ),
]


def admin_paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, query, status in _OPERATIONS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in ("username", "client_id", "kid")
            if "{" + name + "}" in path
        ] + query
        operation: dict[str, Any] = {
            "summary": summary,
            "tags": ["admin"],
            "security": [{"bearer": []}],
            "responses": {
                status: {"description": "Done"}
                if status == "204"
                else {"description": "Done", "content": {"application/json": {"schema": _OBJECT}}},
                **_ERRORS,
            },
        }
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(path, {})[method] = operation
    return paths
