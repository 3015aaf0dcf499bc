"""The OAuth flows over HTTP: password, refresh rotation and reuse, client_credentials,
revocation then introspection, and the revocation feed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokensmith.jose import JWKSet, JWTPolicy, verify_jwt

from .conftest import AUDIENCE, ISSUER, PASSWORD, Server, basic, running

pytestmark = pytest.mark.anyio


async def _verify(server: Server, token: str) -> dict[str, Any]:
    jwks = await server.http.get("/.well-known/jwks.json")
    policy = JWTPolicy(
        algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt", clock=server.clock
    )
    return verify_jwt(token, JWKSet.from_json(jwks.text), policy)


async def test_password_grant_token_verifies_with_the_published_jwks(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        user = await server.add_user()
        client = await server.add_client()
        response = await server.login(client, scope="read")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "read"
        assert body["expires_in"] == server.ctx.settings.access_token_lifetime
        assert body["refresh_token"]
        claims = await _verify(server, body["access_token"])
        assert claims["sub"] == str(user.id)
        assert claims["client_id"] == "web"
        assert claims["roles"] == ["EDITOR"]


async def test_client_secret_post_and_public_client(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await server.add_user()
        client = await server.add_client()
        assert client.secret is not None
        form = {
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "client_id": "web",
            "client_secret": client.secret,
        }
        assert (await server.http.post("/oauth/token", data=form)).status_code == 200
        await server.add_client("spa", confidential=False)
        public = {**form, "client_id": "spa"}
        del public["client_secret"]
        response = await server.http.post("/oauth/token", data=public)
        assert response.status_code == 200, response.text


async def test_refresh_rotation_then_reuse_revokes_the_family(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await server.add_user()
        client = await server.add_client()
        assert client.secret is not None
        auth = basic("web", client.secret)
        first = (await server.login(client)).json()
        form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        second = await server.http.post("/oauth/token", data=form, headers=auth)
        assert second.status_code == 200, second.text
        rotated = second.json()
        assert rotated["refresh_token"] != first["refresh_token"]
        await _verify(server, rotated["access_token"])

        server.clock.advance(server.ctx.settings.refresh_reuse_grace + 1)
        reuse = await server.http.post("/oauth/token", data=form, headers=auth)
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        # The whole family went: the successor no longer works either.
        successor = {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}
        gone = await server.http.post("/oauth/token", data=successor, headers=auth)
        assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"
        introspected = await server.http.post(
            "/oauth/introspect", data={"token": rotated["access_token"]}, headers=auth
        )
        assert introspected.json() == {"active": False}


async def test_client_credentials(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        client = await server.add_client("svc", grant_types=("client_credentials",))
        assert client.secret is not None
        response = await server.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("svc", client.secret),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "refresh_token" not in body
        claims = await _verify(server, body["access_token"])
        assert claims["sub"] == "svc"


async def test_revoke_then_introspect_and_the_feed(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await server.add_user()
        client = await server.add_client()
        assert client.secret is not None
        auth = basic("web", client.secret)
        tokens = (await server.login(client)).json()
        access = tokens["access_token"]

        active = await server.http.post("/oauth/introspect", data={"token": access}, headers=auth)
        assert active.status_code == 200
        assert active.headers["cache-control"] == "no-store"
        assert active.json()["active"] is True
        assert active.json()["client_id"] == "web"

        revoked = await server.http.post("/oauth/revoke", data={"token": access}, headers=auth)
        assert revoked.status_code == 200 and revoked.content == b""
        after = await server.http.post("/oauth/introspect", data={"token": access}, headers=auth)
        assert after.json() == {"active": False}

        unknown = await server.http.post(
            "/oauth/revoke",
            data={"token": "not-a-token", "token_type_hint": "refresh_token"},
            headers=auth,
        )
        assert unknown.status_code == 200

        feed = await server.http.get("/oauth/revocations?after=0&limit=10", headers=auth)
        assert feed.status_code == 200, feed.text
        page = feed.json()
        jti = (await _verify(server, access))["jti"]
        assert [entry["jti"] for entry in page["revoked"]] == [jti]
        assert isinstance(page["next_cursor"], int)
        later = await server.http.get(
            f"/oauth/revocations?after={page['next_cursor']}", headers=auth
        )
        assert later.json()["revoked"] == []


async def test_revoking_the_refresh_token_ends_the_session(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await server.add_user()
        client = await server.add_client()
        assert client.secret is not None
        auth = basic("web", client.secret)
        tokens = (await server.login(client)).json()
        refresh = tokens["refresh_token"]
        await server.http.post("/oauth/revoke", data={"token": refresh}, headers=auth)
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        response = await server.http.post("/oauth/token", data=form, headers=auth)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_public_clients_may_not_introspect_or_read_the_revocation_feed(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as server:
        await server.add_user()
        confidential = await server.add_client("web")
        token = (await server.login(confidential)).json()["access_token"]
        await server.add_client("spa", confidential=False)
        # A public client authenticates with its client_id alone: that proves nothing.
        looked = await server.http.post(
            "/oauth/introspect", data={"client_id": "spa", "token": token}
        )
        assert looked.status_code == 400
        assert looked.json()["error"] == "unauthorized_client"
        assert "active" not in looked.json()
        feed = await server.http.get("/oauth/revocations", headers=basic("spa", ""))
        assert feed.status_code == 400
        assert feed.json()["error"] == "unauthorized_client"
        # The confidential client still may.
        assert confidential.secret is not None
        allowed = await server.http.post(
            "/oauth/introspect",
            data={"token": token},
            headers=basic("web", confidential.secret),
        )
        assert allowed.json()["active"] is True
