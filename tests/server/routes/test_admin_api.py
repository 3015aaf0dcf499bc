"""The admin API's operations over HTTP: users, clients, keys and the audit log, each
checked by its effect on the rest of the server (logins, client auth, the JWKS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.store import DatabaseUnavailable, RefreshTokenRepository

from .admin_helpers import Admin, make_admin
from .conftest import PASSWORD, basic, running

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "another long passphrase"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert isinstance(body["error_description"], str)
    assert "Traceback" not in response.text
    return body


async def _login_status(admin: Admin, username: str, password: str) -> int:
    form = {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": "tokensmith-admin",
    }
    return (await admin.server.http.post("/oauth/token", data=form)).status_code


async def test_users_create_list_read(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        http, h = server.http, admin.headers
        made = await http.post(
            "/admin/users",
            json={
                "username": "Alice",
                "password": PASSWORD,
                "roles": ["editor", "EDITOR"],
                "profile": {"name": "Alice A.", "email": "alice@example.test"},
            },
            headers=h,
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["username"] == "alice"  # normalized
        assert body["roles"] == ["EDITOR"]
        assert body["profile"] == {"email": "alice@example.test", "name": "Alice A."}
        assert "password" not in made.text and "argon2" not in made.text
        assert await _login_status(admin, "alice", PASSWORD) == 200

        _error(
            await http.post(
                "/admin/users", json={"username": "ALICE", "password": PASSWORD}, headers=h
            ),
            409,
            "username_taken",
        )
        _error(
            await http.post(
                "/admin/users", json={"username": "bob", "password": "short"}, headers=h
            ),
            400,
            "weak_password",
        )
        _error(
            await http.post(
                "/admin/users",
                json={"username": "bob", "password": PASSWORD, "roles": ["R" * 65]},
                headers=h,
            ),
            400,
            "invalid_user_data",
        )
        # Checked before upper-casing: a dotless i would otherwise make "adm\u0131n" ADMIN.
        for role in ("adm\u0131n", "\u0007", "A\u202eB", "ED ITOR"):
            response = await http.put("/admin/users/alice/roles", json={"roles": [role]}, headers=h)
            _error(response, 400, "invalid_user_data")
        alice = (await http.get("/admin/users/alice", headers=h)).json()
        assert "ADMIN" not in alice["roles"]
        _error(
            await http.post(
                "/admin/users", json={"username": "bo\u200bb", "password": PASSWORD}, headers=h
            ),
            400,
            "invalid_username",
        )
        assert (await http.get("/admin/users/ALICE", headers=h)).json()["id"] == body["id"]
        _error(await http.get("/admin/users/nobody", headers=h), 404, "unknown_user")


async def test_users_list_pages(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        for name in ("a1", "a2", "a3"):
            await server.add_user(name)
        seen: list[str] = []
        after: str | None = None
        while True:
            params = {"limit": "2"} | ({"after": after} if after else {})
            page = (
                await server.http.get("/admin/users", params=params, headers=admin.headers)
            ).json()
            assert len(page["users"]) <= 2
            seen += [u["username"] for u in page["users"]]
            after = page["next_after"]
            if after is None:
                break
        assert seen == ["a1", "a2", "a3", "root"]
        for bad in ({"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"other": "1"}):
            response = await server.http.get("/admin/users", params=bad, headers=admin.headers)
            _error(response, 400, "oauth_invalid_request")


async def test_a_disable_that_fails_half_way_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        await server.http.post(
            "/admin/users", json={"username": "alice", "password": PASSWORD}, headers=admin.headers
        )

        async def unreachable(*args: object, **kwargs: object) -> None:
            raise DatabaseUnavailable()

        # The user row is changed first; revoking the tokens then fails.
        monkeypatch.setattr(RefreshTokenRepository, "revoke_user", unreachable)
        failed = await server.http.post("/admin/users/alice/disable", headers=admin.headers)
        assert failed.status_code == 503
        monkeypatch.undo()
        # Not disabled with its tokens still working: not disabled at all.
        assert await _login_status(admin, "alice", PASSWORD) == 200


async def test_disable_enable_password_and_revoke(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        http, h = server.http, admin.headers
        await http.post("/admin/users", json={"username": "alice", "password": PASSWORD}, headers=h)
        client = await server.add_client()
        token = (await server.login(client)).json()["access_token"]
        assert client.secret is not None
        auth = basic("web", client.secret)

        async def active() -> bool:
            response = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
            return bool(response.json()["active"])

        assert await active()
        server.clock.advance(1)
        disabled = await http.post("/admin/users/alice/disable", headers=h)
        assert disabled.json()["disabled"] is True
        assert not await active()  # disabling revokes the tokens already issued
        assert await _login_status(admin, "alice", PASSWORD) == 400
        enabled = await http.post("/admin/users/alice/enable", headers=h)
        assert enabled.json()["disabled"] is False
        # Tokens of the second of the disable stay revoked: a login now is told to retry.
        assert await _login_status(admin, "alice", PASSWORD) == 503
        server.clock.advance(1)
        assert await _login_status(admin, "alice", PASSWORD) == 200

        changed = await http.put(
            "/admin/users/alice/password", json={"password": NEW_PASSWORD}, headers=h
        )
        assert changed.status_code == 204
        assert await _login_status(admin, "alice", PASSWORD) == 400
        assert await _login_status(admin, "alice", NEW_PASSWORD) == 200
        _error(
            await http.put("/admin/users/alice/password", json={"password": "x"}, headers=h),
            400,
            "weak_password",
        )

        token = (await server.login(client, password=NEW_PASSWORD)).json()["access_token"]
        assert await active()
        server.clock.advance(1)
        revoked = await http.post("/admin/users/alice/revoke-tokens", headers=h)
        assert revoked.status_code == 200
        assert not await active()
        _error(await http.post("/admin/users/ghost/disable", headers=h), 404, "unknown_user")


async def test_clients(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        http, h = server.http, admin.headers
        made = await http.post(
            "/admin/clients",
            json={
                "client_id": "svc",
                "grant_types": ["client_credentials"],
                "scopes": ["read"],
                "audiences": ["https://api.example.test"],
                "access_token_lifetime": 120,
            },
            headers=h,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["client_secret"]
        assert made.json()["access_token_lifetime"] == 120

        async def token_status(secret: str) -> int:
            response = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers=basic("svc", secret),
            )
            return response.status_code

        assert await token_status(secret) == 200
        listed = await http.get("/admin/clients", headers=h)
        assert "svc" in [c["client_id"] for c in listed.json()["clients"]]
        assert secret not in listed.text and "sha256$" not in listed.text
        assert (await http.get("/admin/clients/svc", headers=h)).json()["public"] is False

        new_secret = (await http.post("/admin/clients/svc/secret", headers=h)).json()[
            "client_secret"
        ]
        assert await token_status(secret) == 401
        assert await token_status(new_secret) == 200
        await http.post("/admin/clients/svc/disable", headers=h)
        assert await token_status(new_secret) == 401
        await http.post("/admin/clients/svc/enable", headers=h)
        assert await token_status(new_secret) == 200

        spa = await http.post(
            "/admin/clients",
            json={"client_id": "spa", "public": True, "grant_types": ["password"]},
            headers=h,
        )
        assert spa.status_code == 201 and "client_secret" not in spa.json()
        _error(
            await http.post("/admin/clients/spa/secret", headers=h), 400, "invalid_client_metadata"
        )
        duplicate = {"client_id": "svc", "grant_types": ["client_credentials"]}
        _error(await http.post("/admin/clients", json=duplicate, headers=h), 409, "client_id_taken")
        for bad in (
            {"client_id": "x", "grant_types": ["implicit"]},
            {"client_id": "x", "public": True, "grant_types": ["client_credentials"]},
            {"client_id": "123", "grant_types": ["password"]},
            {"client_id": "x", "grant_types": ["password"], "audiences": ["a" * 300]},
            {"client_id": "x", "grant_types": ["password"], "audiences": ["\u0000"]},
            {"client_id": "x", "grant_types": ["password"], "audiences": ["api\u202e"]},
        ):
            response = await http.post("/admin/clients", json=bad, headers=h)
            _error(response, 400, "invalid_client_metadata")
        bad_lifetime = {"client_id": "x", "grant_types": ["password"], "access_token_lifetime": 0}
        response = await http.post("/admin/clients", json=bad_lifetime, headers=h)
        _error(response, 400, "oauth_invalid_request")
        _error(await http.get("/admin/clients/ghost", headers=h), 404, "unknown_client")
        ghost_secret = await http.post("/admin/clients/ghost/secret", headers=h)
        _error(ghost_secret, 404, "unknown_client")


async def test_keys_rotate_retire_revoke(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        http, h = server.http, admin.headers

        async def published() -> set[str]:
            jwks = (await http.get("/.well-known/jwks.json")).json()
            return {key["kid"] for key in jwks["keys"]}

        keys = (await http.get("/admin/keys", headers=h)).json()["keys"]
        [current] = [k for k in keys if k["state"] == "current"]
        assert all(set(k) >= {"kid", "alg", "state", "deleted_after"} for k in keys)
        assert '"d"' not in (await http.get("/admin/keys", headers=h)).text

        rotated = (await http.post("/admin/keys/rotate", headers=h)).json()
        assert rotated["actions"] == [{"action": "create", "alg": "ES256", "state": "next"}]
        [upcoming] = [k for k in rotated["keys"] if k["state"] == "next"]
        assert upcoming["kid"] in await published()  # published before it signs
        _error(await http.post("/admin/keys/rotate", headers=h), 409, "rotation_too_early")
        forced = (await http.post("/admin/keys/rotate", json={"force": True}, headers=h)).json()
        states = {k["kid"]: k["state"] for k in forced["keys"]}
        assert states[upcoming["kid"]] == "current" and states[current["kid"]] == "retired"
        assert server.ctx.keyring.signer().kid == upcoming["kid"]

        _error(
            await http.post(f"/admin/keys/{current['kid']}/retire", headers=h),
            409,
            "not_current_key",
        )
        retired = (await http.post(f"/admin/keys/{upcoming['kid']}/retire", headers=h)).json()
        assert {k["kid"]: k["state"] for k in retired["keys"]}[upcoming["kid"]] == "retired"

        revoked = await http.post(f"/admin/keys/{current['kid']}/revoke", headers=h)
        assert revoked.status_code == 200
        assert current["kid"] not in await published()
        # The revoked key signed the admin's own token: it stops working too.
        assert (await http.get("/admin/keys", headers=h)).status_code == 401
        h = (await make_admin(server, "root2")).headers
        _error(await http.post("/admin/keys/nope/revoke", headers=h), 404, "unknown_key")
        _error(await http.post("/admin/keys/nope/retire", headers=h), 404, "unknown_key")
        # A message that quotes the request does not grow with it.
        long_kid = await http.post(f"/admin/keys/{'k' * 5000}/retire", headers=h)
        _error(long_kid, 404, "unknown_key")
        assert len(long_kid.json()["error_description"]) <= 200
        bad_alg = {"alg": "RS256"}
        response = await http.post("/admin/keys/rotate", json=bad_alg, headers=h)
        _error(response, 400, "algorithm_not_configured")


async def test_audit_log_pages_newest_first(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        http, h = server.http, admin.headers
        for name in ("u1", "u2", "u3"):
            await http.post(
                "/admin/users", json={"username": name, "password": PASSWORD}, headers=h
            )
        first = (await http.get("/admin/audit", params={"limit": "2"}, headers=h)).json()
        assert [e["detail"]["username"] for e in first["entries"]] == ["u3", "u2"]
        assert all(e["actor"] == "admin:root" for e in first["entries"])
        assert all(e["event"] == "user_created" for e in first["entries"])
        before = str(first["next_before"])
        second = (await http.get("/admin/audit", params={"before": before}, headers=h)).json()
        ids = [e["id"] for e in first["entries"] + second["entries"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        assert second["entries"][0]["detail"]["username"] == "u1"
        assert second["next_before"] is None
        since = str(int(server.clock.now()) + 1)
        later = (await http.get("/admin/audit", params={"since": since}, headers=h)).json()
        assert later["entries"] == []


_BAD_BODIES = [
    pytest.param({"Content-Type": "text/plain"}, b'{"roles": []}', id="wrong-type"),
    pytest.param({"Content-Type": "application/json; charset=latin-1"}, b"{}", id="charset"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": [], "roles": []}', id="dup"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": [], "x": 1}', id="extra"),
    pytest.param({"Content-Type": "application/json"}, b"{}", id="missing"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": "ADMIN"}', id="not-a-list"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": [1]}', id="not-strings"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": [NaN]}', id="nan"),
    pytest.param({"Content-Type": "application/json"}, b"[]", id="array"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": [', id="truncated"),
    pytest.param({"Content-Type": "application/json"}, b'{"roles": ["\xff"]}', id="not-utf8"),
    pytest.param({"Content-Type": "application/json"}, b"[" * 100_000, id="too-large"),
    pytest.param({"Content-Type": "application/json"}, b"[" * 60_000, id="deep"),
    pytest.param({}, b"", id="no-body"),
    pytest.param({"Content-Type": "application/json"}, b"", id="empty-json"),
]


async def test_an_operation_without_members_takes_an_empty_json_body(tmp_path: Path) -> None:
    # What curl -X POST -H 'Content-Type: application/json' sends: no member, as {}.
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        headers = {**admin.headers, "Content-Type": "application/json"}
        response = await server.http.post(
            "/admin/clients/tokensmith-admin/disable", headers=headers
        )
        assert response.status_code == 200, response.text
        client = await server.http.get("/admin/clients/tokensmith-admin", headers=admin.headers)
        assert client.json()["disabled"] is True


@pytest.mark.parametrize(("headers", "body"), _BAD_BODIES)
async def test_bad_bodies_are_invalid_request(
    tmp_path: Path, headers: dict[str, str], body: bytes
) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        response = await server.http.put(
            "/admin/users/root/roles", content=body, headers={**admin.headers, **headers}
        )
        _error(response, 400, "oauth_invalid_request")
        still = await server.http.get("/admin/users/root", headers=admin.headers)
        assert still.json()["roles"] == ["ADMIN"]  # nothing half-written


@pytest.mark.parametrize(
    "path",
    [
        "/admin/users/root/disable",
        "/admin/users/root/revoke-tokens",
        "/admin/clients/tokensmith-admin/disable",
        "/admin/clients/tokensmith-admin/secret",
    ],
)
async def test_an_operation_without_members_refuses_a_body_with_some(
    tmp_path: Path, path: str
) -> None:
    # "Only the members the operation takes": none here, so a member is a mistake (a
    # client that believes it sent {"reason": ...} or {"force": true} is told).
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        response = await server.http.post(path, json={"force": True}, headers=admin.headers)
        _error(response, 400, "oauth_invalid_request")
        still = await server.http.get("/admin/users/root", headers=admin.headers)
        assert still.json()["disabled"] is False  # nothing done
