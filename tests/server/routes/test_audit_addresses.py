"""Every audit row written on behalf of an HTTP request names the address it came from.

The audit log answers "who did what, when, from where". Each test sends its requests
from addresses of its own (several httpx clients over one app, each with its own ASGI
``client``), so a row carrying the login's address, or none, where the request came from
elsewhere is caught.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.store import AuditEntry, AuditEvent

from .admin_helpers import make_admin
from .conftest import AUDIENCE, ISSUER, PASSWORD, Server, basic, running

pytestmark = pytest.mark.anyio

LOGIN = "203.0.113.7"
ROTATOR = "2001:db8::17"
THIEF = "198.51.100.66"
REVOKER = "192.0.2.10"
SERVICE = "192.0.2.77"
OPERATOR = "198.51.100.200"


@asynccontextmanager
async def peer(server: Server, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same app, whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=server.app, client=(address, 51000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


async def entries(server: Server, event: AuditEvent | None = None) -> list[AuditEntry]:
    """Newest first; the app's batched rows are flushed by the reader."""
    page = await server.ctx.audit.page(limit=500)
    return [e for e in page.entries if event is None or e.event is event]


async def _login(server: Server) -> tuple[dict[str, str], dict[str, str]]:
    """alice logs in from LOGIN through ``web``: (the token answer, web's Basic header)."""
    await server.add_user()
    web = await server.add_client()
    assert web.secret is not None
    response = await server.login(web)
    assert response.status_code == 200, response.text
    return response.json(), basic("web", web.secret)


async def test_refresh_rotation_and_reuse_name_the_address_of_the_request(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, address=LOGIN) as server:
        tokens, auth = await _login(server)
        form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        async with peer(server, ROTATOR) as http:
            rotated = await http.post("/oauth/token", data=form, headers=auth)
        assert rotated.status_code == 200, rotated.text

        server.clock.advance(server.ctx.settings.refresh_reuse_grace + 1)
        async with peer(server, THIEF) as http:
            reuse = await http.post("/oauth/token", data=form, headers=auth)
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"

        issued = await entries(server, AuditEvent.TOKEN_ISSUED)
        by_grant = {e.detail["grant_type"]: e.client_address for e in issued}
        [detected] = await entries(server, AuditEvent.REFRESH_REUSE_DETECTED)
        # The reuse names THIEF: where the stolen token was played, not where it was got.
        assert (by_grant, detected.actor, detected.client_address) == (
            {"password": LOGIN, "refresh_token": ROTATOR},
            "web",
            THIEF,
        )


async def test_client_credentials_issuance_names_the_address(tmp_path: Path) -> None:
    async with running(tmp_path, address=LOGIN) as server:
        svc = await server.ctx.clients.create(
            "svc", grant_types=["client_credentials"], scopes=["jobs"], audiences=[AUDIENCE]
        )
        assert svc.secret is not None
        async with peer(server, SERVICE) as http:
            response = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers=basic("svc", svc.secret),
            )
        assert response.status_code == 200, response.text
        [issued] = await entries(server, AuditEvent.TOKEN_ISSUED)
        assert issued.detail["grant_type"] == "client_credentials"
        assert (issued.subject, issued.client_address) == ("svc", SERVICE)


async def test_revocation_names_the_address_of_the_request(tmp_path: Path) -> None:
    async with running(tmp_path, address=LOGIN) as server:
        tokens, auth = await _login(server)
        async with peer(server, REVOKER) as http:
            # The access token first: revoking the refresh token denylists it too.
            for name in ("access_token", "refresh_token"):
                response = await http.post(
                    "/oauth/revoke", data={"token": tokens[name]}, headers=auth
                )
                assert response.status_code == 200, response.text
        revoked = await entries(server, AuditEvent.TOKEN_REVOKED)
        assert sorted((e.detail["token_type"], e.client_address) for e in revoked) == [
            ("access_token", REVOKER),
            ("refresh_token", REVOKER),
        ]


async def test_every_admin_api_change_names_the_address_of_the_request(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, address=LOGIN) as server:
        # The admin logs in from LOGIN and works from OPERATOR: a row must name the
        # address of the request that made it, not the one the token was obtained from.
        h = (await make_admin(server)).headers
        async with peer(server, OPERATOR) as http:

            async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                response = await http.request(method, path, headers=h, **kwargs)
                assert response.status_code in (200, 201, 204), (path, response.text)
                return response

            user = {"username": "bob", "password": PASSWORD, "roles": ["EDITOR"]}
            await call("POST", "/admin/users", json=user)
            await call("PUT", "/admin/users/bob/roles", json={"roles": ["EDITOR", "AUDITOR"]})
            await call("PUT", "/admin/users/bob/password", json={"password": "a" + PASSWORD})
            await call("POST", "/admin/users/bob/revoke-tokens")
            await call("POST", "/admin/users/bob/disable")
            await call("POST", "/admin/users/bob/enable")
            client = {"client_id": "svc", "grant_types": ["client_credentials"]}
            await call("POST", "/admin/clients", json=client)
            await call("POST", "/admin/clients/svc/secret")
            await call("POST", "/admin/clients/svc/disable")
            await call("POST", "/admin/clients/svc/enable")
            await call("PUT", "/admin/clients/svc/audiences", json={"audiences": [AUDIENCE]})
            keys = (await call("GET", "/admin/keys")).json()["keys"]
            [signing] = [k["kid"] for k in keys if k["state"] == "current"]
            await call("POST", "/admin/keys/rotate")  # a next key, published first
            await call("POST", "/admin/keys/rotate", json={"force": True})
            keys = (await call("GET", "/admin/keys")).json()["keys"]
            [current] = [k["kid"] for k in keys if k["state"] == "current"]
            await call("POST", f"/admin/keys/{current}/retire")
            # Last: the key that signed the admin's own token, which then stops working.
            await call("POST", f"/admin/keys/{signing}/revoke")

        rows = [e for e in await entries(server) if e.actor == "admin:root"]
        assert {e.event for e in rows} == {
            AuditEvent.USER_CREATED,
            AuditEvent.USER_CHANGED,
            AuditEvent.TOKEN_REVOKED,  # revoke-tokens, and disabling
            AuditEvent.CLIENT_CREATED,
            AuditEvent.CLIENT_CHANGED,
            AuditEvent.KEY_CREATED,
            AuditEvent.KEY_ACTIVATED,
            AuditEvent.KEY_RETIRED,
            AuditEvent.KEY_REVOKED,
        }
        assert len(rows) >= 15
        assert [e for e in rows if e.client_address != OPERATOR] == []
        [login] = await entries(server, AuditEvent.LOGIN_OK)
        assert (login.actor, login.client_address) == ("tokensmith-admin", LOGIN)
