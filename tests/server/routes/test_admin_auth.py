"""Who may use the admin API: a token of this server, for its audience, with role ADMIN,
whose user still is an enabled ADMIN. RFC 6750 401/403 answers for everyone else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from tokensmith.server.routes.admin_ops import ops_routes
from tokensmith.server.routes.admin_users import user_routes

from .admin_helpers import ADMIN_PASSWORD, login, make_admin
from .conftest import basic, running

pytestmark = pytest.mark.anyio


def _assert_challenge(response: httpx.Response, status: int, error: str | None) -> None:
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tokensmith"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error
    assert isinstance(response.json()["code"], str)
    assert response.headers["cache-control"] == "no-store"


def _admin_endpoints() -> list[tuple[str, str]]:
    found = []
    for route in [*user_routes(), *ops_routes()]:
        assert isinstance(route, Route)
        path = "/admin" + route.path.format(username="alice", client_id="web", kid="k1")
        found.extend((method, path) for method in sorted(route.methods or ()) if method != "HEAD")
    return found


@pytest.mark.parametrize(("method", "path"), _admin_endpoints())
async def test_every_endpoint_needs_a_token(tmp_path: Path, method: str, path: str) -> None:
    async with running(tmp_path) as server:
        response = await server.http.request(method, path)
        _assert_challenge(response, 401, None)
        assert response.json()["code"] == "missing_token"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer not.a.token",
        "Bearer a b",
        "Bearer:abc",
        "Bearer " + "A" * 9000,
        "Bearer \u00e9t\u00e9",
    ],
)
async def test_malformed_or_foreign_tokens_are_invalid_token(
    tmp_path: Path, authorization: str
) -> None:
    async with running(tmp_path) as server:
        response = await server.http.get(
            "/admin/users", headers={"Authorization": authorization.encode("utf-8")}
        )
        _assert_challenge(response, 401, "invalid_token")


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Token abc", "Digest x"])
async def test_another_scheme_is_no_token(tmp_path: Path, authorization: str) -> None:
    # RFC 6750 section 3.1: a client that used an unsupported method gets no error code.
    async with running(tmp_path) as server:
        response = await server.http.get("/admin/users", headers={"Authorization": authorization})
        _assert_challenge(response, 401, None)
        assert response.json()["code"] == "missing_token"


async def test_an_admin_token_works_and_an_editor_token_is_forbidden(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        assert (await server.http.get("/admin/users", headers=admin.headers)).status_code == 200
        await server.ctx.users.create("ed", ADMIN_PASSWORD, roles=["EDITOR"], actor="test")
        editor = await login(server, "ed", ADMIN_PASSWORD)
        response = await server.http.get(
            "/admin/users", headers={"Authorization": f"Bearer {editor}"}
        )
        _assert_challenge(response, 403, "insufficient_scope")


async def test_an_admin_token_for_another_audience_is_refused(tmp_path: Path) -> None:
    # A service that received the admin's token for itself must not replay it here.
    async with running(tmp_path) as server:
        await make_admin(server)
        client = await server.add_client()
        assert client.secret is not None
        form = {"grant_type": "password", "username": "root", "password": ADMIN_PASSWORD}
        response = await server.http.post(
            "/oauth/token", data=form, headers=basic("web", client.secret)
        )
        token = response.json()["access_token"]
        response = await server.http.get(
            "/admin/users", headers={"Authorization": f"Bearer {token}"}
        )
        _assert_challenge(response, 401, "invalid_token")


async def test_a_client_credentials_token_is_forbidden(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await make_admin(server)
        svc = await server.ctx.clients.create(
            "svc",
            grant_types=("client_credentials",),
            audiences=("https://auth.example.test/admin",),
        )
        assert svc.secret is not None
        response = await server.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("svc", svc.secret),
        )
        token = response.json()["access_token"]
        response = await server.http.get(
            "/admin/users", headers={"Authorization": f"Bearer {token}"}
        )
        _assert_challenge(response, 403, "insufficient_scope")


async def test_demotion_disabling_and_revocation_take_effect_at_once(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        root = await make_admin(server)
        other = await make_admin(server, "ops")
        http = server.http
        # Demoted: the token still says ADMIN, the database no longer does.
        demoted = await http.put(
            "/admin/users/ops/roles", json={"roles": ["EDITOR"]}, headers=root.headers
        )
        assert demoted.status_code == 200
        _assert_challenge(
            await http.get("/admin/users", headers=other.headers), 403, "insufficient_scope"
        )
        # Promoted again, then logged out everywhere: the old token is revoked.
        await http.put("/admin/users/ops/roles", json={"roles": ["ADMIN"]}, headers=root.headers)
        assert (await http.get("/admin/users", headers=other.headers)).status_code == 200
        server.clock.advance(1)  # a not-before in a later second than the token's iat
        await http.post("/admin/users/ops/revoke-tokens", headers=root.headers)
        _assert_challenge(
            await http.get("/admin/users", headers=other.headers), 401, "invalid_token"
        )
        # Disabled: no new token either (logging in again waits for the next second).
        server.clock.advance(1)
        fresh = await login(server, "ops", ADMIN_PASSWORD)
        await http.post("/admin/users/ops/disable", headers=root.headers)
        _assert_challenge(
            await http.get("/admin/users", headers={"Authorization": f"Bearer {fresh}"}),
            401,
            "invalid_token",
        )


async def test_an_expired_admin_token_is_refused(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        server.clock.advance(server.ctx.settings.access_token_lifetime + 1)
        _assert_challenge(
            await server.http.get("/admin/users", headers=admin.headers), 401, "invalid_token"
        )


async def test_two_authorization_headers_are_refused(tmp_path: Path) -> None:
    # As the application-server middleware does: which header a proxy saw is unknown.
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        bearer = admin.headers["Authorization"]
        response = await server.http.get(
            "/admin/users", headers=[("Authorization", bearer), ("Authorization", bearer)]
        )
        _assert_challenge(response, 401, "invalid_token")
        assert (await server.http.get("/admin/users", headers=admin.headers)).status_code == 200
