"""An admin and its token for the admin API tests (a real password grant, no shortcuts)."""

from __future__ import annotations

from dataclasses import dataclass

from tokensmith.server.services import admin_audience

from .conftest import ISSUER, PASSWORD, Server

ADMIN_CLIENT = "tokensmith-admin"
ADMIN_PASSWORD = "admin " + PASSWORD


@dataclass
class Admin:
    server: Server
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def login(server: Server, username: str, password: str) -> str:
    form = {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": ADMIN_CLIENT,
    }
    response = await server.http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


async def make_admin(server: Server, username: str = "root") -> Admin:
    """An ADMIN user and the public client whose tokens are for the admin API."""
    await server.ctx.users.create(username, ADMIN_PASSWORD, roles=["admin"], actor="test")
    if not [c for c in await server.ctx.clients.list() if c.client_id == ADMIN_CLIENT]:
        await server.ctx.clients.create(
            ADMIN_CLIENT,
            confidential=False,
            grant_types=("password", "refresh_token"),
            audiences=(admin_audience(ISSUER),),
        )
    return Admin(server, await login(server, username, ADMIN_PASSWORD))
