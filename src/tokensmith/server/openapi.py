"""The OpenAPI 3.1 document of the token server, written by hand and built once."""

from __future__ import annotations

from typing import Any

from tokensmith.server.settings import Settings

from .openapi_admin import admin_paths

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/responses/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


_STR = {"type": "string", "maxLength": 4096}
_TOKEN = {"type": "string", "maxLength": 8192}
_CLIENT = {"client_id": _STR, "client_secret": _STR}
# client_secret_post (client_id and client_secret in the form) has no OpenAPI security
# scheme: the form schemas list the two fields, and an empty requirement allows it.
_AUTH: list[dict[str, list[str]]] = [{"basic": []}, {}]


def openapi_document(settings: Settings) -> dict[str, Any]:
    token_response = {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string"},
            "scope": {"type": "string"},
        },
    }
    object_schema = {"type": "object"}
    errors = {"400": _ERROR, "401": _ERROR, "429": _ERROR, "503": _ERROR}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tokensmith token server",
            "version": "1",
            "description": "OAuth 2.0 token, revocation and introspection endpoints, "
            "the JWKS and RFC 8414 discovery. Forms are parsed strictly: repeated or "
            "unknown parameters, values over 4096 characters, bodies over 64 KiB and "
            "non-UTF-8 input are refused with 400 invalid_request. The admin API takes "
            "a bearer access token for the audience {issuer}/admin whose user has the "
            "role ADMIN, and strict JSON bodies.",
        },
        "servers": [{"url": settings.issuer}],
        "paths": {
            "/.well-known/openid-configuration": {
                "get": {
                    "summary": "Server metadata (RFC 8414)",
                    "responses": {"200": _json(object_schema, "The metadata")},
                }
            },
            "/.well-known/oauth-authorization-server": {
                "get": {
                    "summary": "Server metadata (RFC 8414)",
                    "responses": {"200": _json(object_schema, "The metadata")},
                }
            },
            "/.well-known/jwks.json": {
                "get": {
                    "summary": "Public signing keys (RFC 7517); ETag and If-None-Match",
                    "responses": {
                        "200": {
                            "description": "The JWK Set",
                            "content": {"application/jwk-set+json": {"schema": object_schema}},
                        },
                        "304": {"description": "Unchanged since the ETag given"},
                    },
                }
            },
            "/oauth/token": {
                "post": {
                    "summary": "Token endpoint (RFC 6749): password, refresh_token, "
                    "client_credentials",
                    "security": _AUTH,
                    "requestBody": _form(
                        {
                            "grant_type": {
                                "enum": ["password", "refresh_token", "client_credentials"]
                            },
                            "username": _STR,
                            "password": _STR,
                            "refresh_token": _STR,
                            "scope": _STR,
                            **_CLIENT,
                        },
                        ["grant_type"],
                    ),
                    "responses": {"200": _json(token_response, "Tokens"), **errors},
                }
            },
            "/oauth/revoke": {
                "post": {
                    "summary": "Revoke a token (RFC 7009); 200 for unknown tokens",
                    "security": _AUTH,
                    "requestBody": _form(
                        {"token": _TOKEN, "token_type_hint": _STR, **_CLIENT}, ["token"]
                    ),
                    "responses": {"200": {"description": "Revoked or unknown"}, **errors},
                }
            },
            "/oauth/introspect": {
                "post": {
                    "summary": "Introspect a token (RFC 7662)",
                    "security": _AUTH,
                    "requestBody": _form(
                        {"token": _TOKEN, "token_type_hint": _STR, **_CLIENT}, ["token"]
                    ),
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["active"],
                                "properties": {"active": {"type": "boolean"}},
                            },
                            "Whether the token is active, and its claims if so",
                        ),
                        **errors,
                    },
                }
            },
            "/oauth/revocations": {
                "get": {
                    "summary": "Revoked access-token ids and not-before times after a cursor",
                    "security": [{"basic": []}],
                    "parameters": [
                        {
                            "name": "after",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["revoked", "not_before", "next_cursor"],
                            },
                            "One page of the feed",
                        ),
                        **errors,
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up",
                    "responses": {"200": _json(object_schema, "ok")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "The database answers",
                    "responses": {
                        "200": _json(object_schema, "ready"),
                        "503": _json(object_schema, "not ready"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json(object_schema, "The OpenAPI document")},
                }
            },
            **admin_paths(),
        },
        "components": {
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "client_secret_basic (RFC 6749 section 2.3.1)",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token for the audience {issuer}/admin, role ADMIN",
                },
            },
            "responses": {
                "Error": _json(
                    {
                        "type": "object",
                        "required": ["error"],
                        "properties": {
                            "error": {"type": "string"},
                            "error_description": {"type": "string"},
                            "code": {"type": "string"},
                        },
                    },
                    "An OAuth error (RFC 6749 section 5.2)",
                )
            },
        },
    }
