"""The token server's ASGI app over a real SQLite file, driven through httpx.

The app's lifespan really runs (``app.router.lifespan_context``), so every test goes
through ``build_services``: migration, master key file, key ring, services. Tests enter
``running(tmp_path)`` themselves rather than through an async generator fixture: with
the anyio pytest plugin, a lifespan (task group, worker threads) set up in a fixture
left a task the event-loop runner could not cancel at the end of the test.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import argon2
import httpx
import pytest
from argon2.low_level import Type

from tokensmith.clock import FixedClock
from tokensmith.server.app import ServerContext, create_app
from tokensmith.server.services import NewClient
from tokensmith.server.settings import Settings
from tokensmith.store import Repositories, User

CHEAP = argon2.Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=8, parallelism=1
)
START = 1_750_000_000
ISSUER = "https://auth.example.test"
AUDIENCE = "https://api.example.test"
PASSWORD = "correct horse battery staple"
FORM = "application/x-www-form-urlencoded"


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


@dataclass
class Server:
    http: httpx.AsyncClient
    ctx: ServerContext
    clock: FixedClock
    app: Any

    async def add_user(self, username: str = "alice", password: str = PASSWORD) -> User:
        async with self.ctx.db.transaction() as session:
            return await Repositories(session).users.add(
                username,
                self.ctx.passwords.hash(password),
                now=int(self.clock.now()),
                roles=("EDITOR",),
                profile={"name": "Alice"},
            )

    async def add_client(
        self,
        client_id: str = "web",
        *,
        confidential: bool = True,
        grant_types: tuple[str, ...] = ("password", "refresh_token"),
    ) -> NewClient:
        return await self.ctx.clients.create(
            client_id,
            confidential=confidential,
            grant_types=grant_types,
            scopes=("read", "write"),
            audiences=(AUDIENCE,),
        )

    async def login(self, client: NewClient, **extra: str) -> httpx.Response:
        assert client.secret is not None
        form = {"grant_type": "password", "username": "alice", "password": PASSWORD, **extra}
        return await self.http.post(
            "/oauth/token", data=form, headers=basic(client.client.client_id, client.secret)
        )


@asynccontextmanager
async def running(
    tmp_path: Path, *, address: str = "203.0.113.7", **settings: Any
) -> AsyncIterator[Server]:
    clock = FixedClock(START)
    config = Settings(issuer=ISSUER, data_dir=tmp_path, signing_algorithms=("ES256",), **settings)
    app = create_app(config, clock=clock, password_parameters=CHEAP)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield Server(http, app.state.ctx, clock, app)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body.get("error_description"), str)
    assert isinstance(body.get("code"), str)
    assert "Traceback" not in response.text
    return body
