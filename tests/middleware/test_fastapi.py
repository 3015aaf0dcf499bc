"""A FastAPI app on ``BearerAuthMiddleware`` and ``require()``, over ``httpx.ASGITransport``.

The routes are those of the example application server (``/public``, ``/me``,
``/create`` for EDITOR or ADMIN, ``/delete`` for ADMIN) plus ``/write`` needing a
scope. The verifier is the offline ``AsyncVerifier.from_jwks``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, WebSocket

from tokensmith.middleware import BearerAuthMiddleware
from tokensmith.middleware.asgi import STATE_KEY
from tokensmith.middleware.fastapi import require
from tokensmith.verify import AccessClaims, AsyncVerifier

from .helpers import (
    DENIAL,
    REALM,
    Keys,
    assert_bare_challenge,
    assert_forbidden,
    assert_invalid_token,
    async_verifier,
    bad_tokens,
    secrets_of,
    token,
    websocket_handshake,
)

pytestmark = pytest.mark.anyio

BASE = "http://app.test"
WS_PATH = "/ws/edit"
PROTECTED = [("GET", "/me"), ("POST", "/create"), ("POST", "/delete"), ("POST", "/write")]


def build_app(verifier: AsyncVerifier | None, *, middleware: bool = True) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(BearerAuthMiddleware, verifier=verifier, realm=REALM)

    @app.get("/public")
    async def public(request: Request) -> dict[str, Any]:
        claims = request.state.token_claims
        return {"message": "anyone", "sub": None if claims is None else claims.sub}

    @app.get("/me")
    async def me(
        request: Request, claims: Annotated[AccessClaims, Depends(require())]
    ) -> dict[str, Any]:
        # The dependency hands over the very claims the middleware verified.
        assert claims is getattr(request.state, STATE_KEY)
        return {
            "sub": claims.sub,
            "client_id": claims.client_id,
            "roles": list(claims.roles),
            "scopes": list(claims.scopes),
            "name": claims.claims.get("name"),
            "aud": list(claims.aud),
            "exp": claims.exp,
            "jti": claims.jti,
        }

    @app.post("/create")
    async def create(
        claims: Annotated[AccessClaims, Depends(require(roles=["EDITOR", "ADMIN"]))],
    ) -> dict[str, str]:
        return {"created": "ok", "by": claims.sub}

    @app.post("/delete")
    async def delete(
        claims: Annotated[AccessClaims, Depends(require(roles=["ADMIN"]))],
    ) -> dict[str, str]:
        return {"deleted": "ok", "by": claims.sub}

    @app.post("/write")
    async def write(
        claims: Annotated[AccessClaims, Depends(require(scopes=["write", "api"]))],
    ) -> dict[str, str]:
        return {"written": "ok", "by": claims.sub}

    return app


@asynccontextmanager
async def client(keys: Keys, *, middleware: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(async_verifier(keys), middleware=middleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


def bearer(value: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {value}"}


async def test_public_route_without_a_token(keys: Keys) -> None:
    async with client(keys) as http:
        response = await http.get("/public")
    assert response.status_code == 200
    assert response.json() == {"message": "anyone", "sub": None}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_no_token_on_a_protected_route_is_a_bare_401(
    keys: Keys, method: str, path: str
) -> None:
    async with client(keys) as http:
        response = await http.request(method, path)
    assert_bare_challenge(response.status_code, response.headers, response.json())


async def test_claims_reach_the_handler(keys: Keys) -> None:
    good = token(keys, roles=["EDITOR", "REVIEWER"], client_id="demo")
    async with client(keys) as http:
        response = await http.get("/me", headers=bearer(good))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sub"] == "user-42"
    assert body["client_id"] == "demo"
    assert body["roles"] == ["EDITOR", "REVIEWER"]
    assert body["scopes"] == ["read", "write"]
    assert body["name"] == "John"
    assert body["aud"] == ["https://api.example.test"]
    assert isinstance(body["exp"], int) and body["jti"]


async def test_a_good_token_on_a_public_route_reaches_it(keys: Keys) -> None:
    async with client(keys) as http:
        response = await http.get("/public", headers=bearer(token(keys)))
    assert response.json() == {"message": "anyone", "sub": "user-42"}


BAD = [
    "tampered",
    "signature_cut",
    "foreign_key_same_kid",
    "unknown_kid",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "wrong_typ",
    "no_typ",
    "alg_none",
    "alg_none_signed",
    "hs256_random_secret",
    "hs256_public_pem",
    "jwk_in_header",
    "garbage",
]


@pytest.mark.parametrize("name", BAD)
async def test_a_bad_token_is_401_on_protected_and_public_routes(keys: Keys, name: str) -> None:
    bad = bad_tokens(keys)[name]
    async with client(keys) as http:
        for method, path in [("GET", "/public"), *PROTECTED]:
            response = await http.request(method, path, headers=bearer(bad))
            assert_invalid_token(
                response.status_code,
                response.headers,
                response.json(),
                response.text,
                secrets_of(keys, bad),
            )


async def test_the_tampered_admin_role_does_not_delete(keys: Keys) -> None:
    bad = bad_tokens(keys)["tampered"]  # an EDITOR token whose payload now says ADMIN
    async with client(keys) as http:
        response = await http.post("/delete", headers=bearer(bad))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_expired_says_so_without_details(keys: Keys) -> None:
    bad = bad_tokens(keys)["expired"]
    async with client(keys) as http:
        response = await http.get("/me", headers=bearer(bad))
    description = assert_invalid_token(
        response.status_code, response.headers, response.json(), response.text, []
    )
    assert description == "The token has expired."


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer a,b", "Bearer\tabc"])
async def test_a_malformed_bearer_header_is_401(keys: Keys, header: str) -> None:
    async with client(keys) as http:
        for method, path in [("GET", "/public"), ("GET", "/me")]:
            response = await http.request(method, path, headers={"Authorization": header})
            assert_invalid_token(
                response.status_code, response.headers, response.json(), response.text, []
            )


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNzd29yZA==", "Token abc", "Digest x"])
async def test_another_scheme_is_no_credential(keys: Keys, header: str) -> None:
    # RFC 6750 section 3.1: the bare challenge where a token is needed, none elsewhere.
    async with client(keys) as http:
        public = await http.get("/public", headers={"Authorization": header})
        assert public.status_code == 200
        me = await http.get("/me", headers={"Authorization": header})
        assert_bare_challenge(me.status_code, me.headers, me.json())


async def test_basic_credentials_are_not_echoed(keys: Keys) -> None:
    async with client(keys) as http:
        response = await http.get("/me", auth=("alice", "hunter2-secret-password"))
    assert response.status_code == 401
    assert "hunter2" not in response.text
    assert "hunter2" not in response.headers["www-authenticate"]
    assert "YWxpY2U6" not in response.text  # base64 of "alice:"


async def test_two_authorization_headers_are_401(keys: Keys) -> None:
    good = token(keys)
    headers = [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")]
    async with client(keys) as http:
        response = await http.get("/me", headers=headers)
    assert_invalid_token(response.status_code, response.headers, response.json(), response.text, [])


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_the_scheme_is_case_insensitive(keys: Keys, scheme: str) -> None:
    async with client(keys) as http:
        response = await http.get("/me", headers=bearer(token(keys), scheme))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "user-42"


async def test_a_token_in_the_query_string_is_not_accepted(keys: Keys) -> None:
    good = token(keys, roles=["ADMIN"])
    async with client(keys) as http:
        response = await http.get("/me", params={"access_token": good})
        assert_bare_challenge(response.status_code, response.headers, response.json())
        response = await http.post("/delete", params={"access_token": good})
        assert_bare_challenge(response.status_code, response.headers, response.json())
        response = await http.post("/delete", data={"access_token": good})
        assert_bare_challenge(response.status_code, response.headers, response.json())


async def test_roles(keys: Keys) -> None:
    editor = token(keys, roles=["EDITOR"])
    admin = token(keys, roles=["ADMIN"], sub="admin-1")
    nobody = token(keys, roles=None)
    async with client(keys) as http:
        response = await http.post("/create", headers=bearer(editor))
        assert response.status_code == 200
        assert response.json() == {"created": "ok", "by": "user-42"}
        response = await http.post("/create", headers=bearer(admin))
        assert response.json() == {"created": "ok", "by": "admin-1"}
        response = await http.post("/delete", headers=bearer(admin))
        assert response.json() == {"deleted": "ok", "by": "admin-1"}
        for value in (editor, nobody):
            response = await http.post("/delete", headers=bearer(value))
            description = assert_forbidden(
                response.status_code,
                response.headers,
                response.json(),
                response.text,
                secrets_of(keys, value),
            )
            assert description == "The token lacks a role this operation needs."
        response = await http.post("/create", headers=bearer(nobody))
        assert response.status_code == 403


async def test_scopes(keys: Keys) -> None:
    both = token(keys, scope="api write")
    one = token(keys, scope="write")
    none = token(keys, scope=None)
    async with client(keys) as http:
        response = await http.post("/write", headers=bearer(both))
        assert response.status_code == 200
        for value in (one, none):
            response = await http.post("/write", headers=bearer(value))
            description = assert_forbidden(
                response.status_code,
                response.headers,
                response.json(),
                response.text,
                secrets_of(keys, value),
            )
            assert description == "The token lacks a scope this operation needs."


async def test_require_without_the_middleware_is_a_clear_error(keys: Keys) -> None:
    async with client(keys, middleware=False) as http:
        with pytest.raises(RuntimeError, match="BearerAuthMiddleware is not installed"):
            await http.get("/me", headers=bearer(token(keys)))


def openapi(keys: Keys) -> dict[str, Any]:
    document: dict[str, Any] = build_app(async_verifier(keys)).openapi()
    return document


def test_openapi_declares_the_bearer_scheme(keys: Keys) -> None:
    schemes = openapi(keys)["components"]["securitySchemes"]
    assert schemes == {"HTTPBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_openapi_shows_the_scheme_on_protected_routes(keys: Keys, method: str, path: str) -> None:
    operation = openapi(keys)["paths"][path][method.lower()]
    assert operation["security"] == [{"HTTPBearer": []}]
    # The header is read by the middleware: not a parameter the client fills in.
    names = {parameter["name"].lower() for parameter in operation.get("parameters", [])}
    assert not names & {"authorization", "_", "request"}


def test_openapi_shows_no_scheme_on_the_public_route(keys: Keys) -> None:
    operation = openapi(keys)["paths"]["/public"]["get"]
    assert "security" not in operation


def _ws_app(verifier: AsyncVerifier) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, verifier=verifier, realm=REALM)

    @app.websocket(WS_PATH)
    async def edit(
        websocket: WebSocket,
        claims: Annotated[AccessClaims, Depends(require(roles=["EDITOR", "ADMIN"]))],
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": claims.sub, "roles": list(claims.roles)})
        await websocket.close()

    return app


def _denial(sent: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any, str]:
    start, body = sent
    assert start["type"] == "websocket.http.response.start"
    assert body["type"] == "websocket.http.response.body"
    text = body["body"].decode()
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(text), text


async def test_a_websocket_route_takes_require_like_an_http_route(keys: Keys) -> None:
    app = _ws_app(async_verifier(keys))
    sent = await websocket_handshake(app, bearer(token(keys)), path=WS_PATH, extensions=DENIAL)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"sub": "user-42", "roles": ["EDITOR"]}
    status, headers, body, _ = _denial(
        await websocket_handshake(app, {}, path=WS_PATH, extensions=DENIAL)
    )
    assert_bare_challenge(status, headers, body)
    viewer = token(keys, roles=["VIEWER"])
    status, headers, body, text = _denial(
        await websocket_handshake(app, bearer(viewer), path=WS_PATH, extensions=DENIAL)
    )
    assert_forbidden(status, headers, body, text, [viewer])
    for name, bad in bad_tokens(keys).items():
        status, headers, body, text = _denial(
            await websocket_handshake(app, bearer(bad), path=WS_PATH, extensions=DENIAL)
        )
        assert status == 401, name
        assert_invalid_token(status, headers, body, text, [bad])
