"""The admin API's bearer check against tokens this server would never issue, and the
identity questions a real deployment runs into (a client named like an admin, a
disabled admin's live token, who the audit log names).

Tokens that no grant produces are signed here with the server's own current key: they
stand for what a holder of a configured HS256 secret (shared with verifiers) could
sign, and for claims a future change to the token service might let through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.jose import encode_jwt
from tokensmith.server.services import admin_audience

from .admin_helpers import ADMIN_PASSWORD, Admin, login, make_admin
from .conftest import ISSUER, START, Server, basic, running

pytestmark = pytest.mark.anyio


def _forged(server: Server, **claims: Any) -> dict[str, str]:
    """An Authorization header with a token signed by the server's own key: the claims of
    an admin token of user 1, changed (None removes a claim)."""
    key = server.ctx.keyring.signer()
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "1",
        "aud": admin_audience(ISSUER),
        "exp": START + 600,
        "iat": START,
        "jti": "forged-jti-0123456789",
        "client_id": "tokensmith-admin",
        "roles": ["ADMIN"],
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    token = encode_jwt(payload, key, alg=key.alg, typ="at+jwt")
    return {"Authorization": f"Bearer {token}"}


def _refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert f'error="{error}"' in response.headers["www-authenticate"]
    assert "Traceback" not in response.text


async def test_the_forged_baseline_is_accepted(tmp_path: Path) -> None:
    # So that each refusal below is due to the one claim it changes.
    async with running(tmp_path) as server:
        await make_admin(server)
        assert (await server.http.get("/admin/users", headers=_forged(server))).status_code == 200


@pytest.mark.parametrize(
    "subject",
    [
        "9" * 30,  # past a 64-bit id: the database lookup overflowed (a 500)
        "9" * 5000,  # past int()'s digit limit
        "01",  # user 1 written another way: not the subject any token of user 1 has
        "+1",
        "1 ",
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        "root",  # a name, not an id
    ],
)
async def test_a_subject_that_is_not_a_user_id_is_invalid_token(
    tmp_path: Path, subject: str
) -> None:
    async with running(tmp_path) as server:
        await make_admin(server)
        response = await server.http.get("/admin/users", headers=_forged(server, sub=subject))
        _refused(response, 401, "invalid_token")


@pytest.mark.parametrize(
    "roles",
    [
        "ADMIN",  # a string, not a list
        {"ADMIN": True},
        [1, "ADMIN"],  # a list holding a non-string
        ["ADMIN", None],
        [["ADMIN"]],
    ],
)
async def test_a_roles_claim_that_is_not_a_list_of_strings_is_invalid_token(
    tmp_path: Path, roles: object
) -> None:
    # tokensmith.verify refuses such a token as malformed (invalid_claim); so does the API.
    async with running(tmp_path) as server:
        await make_admin(server)
        response = await server.http.get("/admin/users", headers=_forged(server, roles=roles))
        _refused(response, 401, "invalid_token")


@pytest.mark.parametrize("roles", [["admin"], ["Admin"], ["ADMIN "], [], None])
async def test_roles_are_compared_exactly(tmp_path: Path, roles: list[str] | None) -> None:
    async with running(tmp_path) as server:
        await make_admin(server)
        response = await server.http.get("/admin/users", headers=_forged(server, roles=roles))
        _refused(response, 403, "insufficient_scope")


async def test_only_a_token_for_the_admin_api_alone_is_accepted(tmp_path: Path) -> None:
    # A token that names another service too is held by that service, which could replay
    # it here: the admin audience must be the token's only one.
    async with running(tmp_path) as server:
        await make_admin(server)
        alone = _forged(server, aud=[admin_audience(ISSUER)])
        assert (await server.http.get("/admin/users", headers=alone)).status_code == 200
        for aud in (
            ["https://api.example.test", admin_audience(ISSUER)],
            [admin_audience(ISSUER), admin_audience(ISSUER)],
            ["https://api.example.test"],
        ):
            headers = _forged(server, aud=aud)
            response = await server.http.get("/admin/users", headers=headers)
            _refused(response, 401, "invalid_token")


async def test_a_client_named_like_an_admin_gets_no_admin_access(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server, "root")
        # A confidential client whose id is the admin's username, for the admin audience.
        made = await server.http.post(
            "/admin/clients",
            json={
                "client_id": "root",
                "grant_types": ["client_credentials"],
                "audiences": [admin_audience(ISSUER)],
            },
            headers=admin.headers,
        )
        assert made.status_code == 201, made.text
        secret = made.json()["client_secret"]
        issued = await server.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("root", secret)
        )
        token = issued.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        _refused(await server.http.get("/admin/users", headers=headers), 403, "insufficient_scope")
        # A client id cannot be a user id (user tokens carry sub = the numeric id).
        digits = await server.http.post(
            "/admin/clients",
            json={"client_id": "1", "grant_types": ["client_credentials"]},
            headers=admin.headers,
        )
        assert digits.status_code == 400
        assert digits.json()["code"] == "invalid_client_metadata"


async def _admin_token_works(admin: Admin, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return (await admin.server.http.get("/admin/users", headers=headers)).status_code


async def test_a_disabled_admin_loses_access_at_once_and_enabling_does_not_restore_it(
    tmp_path: Path,
) -> None:
    # As with Keycloak: a disabled account's unexpired tokens stop working (its sessions
    # end), and enabling it again does not revive them: the admin logs in again.
    async with running(tmp_path) as server:
        root = await make_admin(server, "root")
        ops = await make_admin(server, "ops")
        server.clock.advance(1)
        disabled = await server.http.post("/admin/users/ops/disable", headers=root.headers)
        assert disabled.status_code == 200
        assert await _admin_token_works(root, ops.token) == 401
        await server.http.post("/admin/users/ops/enable", headers=root.headers)
        assert await _admin_token_works(root, ops.token) == 401
        server.clock.advance(1)
        assert await _admin_token_works(root, await login(server, "ops", ADMIN_PASSWORD)) == 200


async def test_an_admin_that_disables_itself_is_out_with_that_request(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        root = await make_admin(server, "root")
        server.clock.advance(1)
        response = await server.http.post("/admin/users/root/disable", headers=root.headers)
        assert response.status_code == 200
        assert await _admin_token_works(root, root.token) == 401


async def test_a_revoked_admin_token_and_a_refresh_token_are_invalid_token(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as server:
        await make_admin(server, "root")
        form = {
            "grant_type": "password",
            "username": "root",
            "password": ADMIN_PASSWORD,
            "client_id": "tokensmith-admin",
        }
        issued = (await server.http.post("/oauth/token", data=form)).json()
        access, refresh = issued["access_token"], issued["refresh_token"]
        admin = Admin(server, access)
        assert await _admin_token_works(admin, access) == 200
        assert await _admin_token_works(admin, refresh) == 401
        revoked = await server.http.post(
            "/oauth/revoke", data={"token": access, "client_id": "tokensmith-admin"}
        )
        assert revoked.status_code == 200
        assert await _admin_token_works(admin, access) == 401


async def test_every_change_names_the_acting_admin(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server, "Root")
        http, h = server.http, admin.headers
        changes = [
            ("POST", "/admin/users", {"username": "bob", "password": ADMIN_PASSWORD}),
            ("PUT", "/admin/users/bob/roles", {"roles": ["EDITOR"]}),
            ("PUT", "/admin/users/bob/password", {"password": ADMIN_PASSWORD + "!"}),
            ("POST", "/admin/users/bob/revoke-tokens", None),
            ("POST", "/admin/users/bob/disable", None),
            ("POST", "/admin/users/bob/enable", None),
            ("POST", "/admin/clients", {"client_id": "svc", "grant_types": ["password"]}),
            ("POST", "/admin/clients/svc/secret", None),
            ("POST", "/admin/clients/svc/disable", None),
            ("POST", "/admin/clients/svc/enable", None),
            ("POST", "/admin/keys/rotate", {"force": True}),
        ]
        before = (await http.get("/admin/audit", headers=h)).json()["entries"][0]["id"]
        for method, path, body in changes:
            response = await http.request(method, path, json=body, headers=h)
            assert response.status_code < 300, (path, response.text)
        entries = (await http.get("/admin/audit?limit=500", headers=h)).json()["entries"]
        made = [e for e in entries if e["id"] > before]
        assert {e["actor"] for e in made} == {"admin:root"}
        assert {e["event"] for e in made} >= {
            "user_created",
            "user_changed",
            "token_revoked",
            "client_created",
            "client_changed",
            "key_created",
        }
        assert ADMIN_PASSWORD not in str(made)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/admin/users/" + "a" * 5000, "unknown_user"),
        ("/admin/users/%2e%2e", "unknown_user"),
        ("/admin/users/caf%C3%A9", "unknown_user"),
        ("/admin/users/%ED%A0%80", "unknown_user"),  # a surrogate's UTF-8: replaced, not kept
        ("/admin/users/a%00b", "unknown_user"),
        ("/admin/clients/" + "c" * 5000, "unknown_client"),
        ("/admin/users/..%2Fclients", None),  # decoded to another path: the router's 404
        ("/admin/users/a%2Fb", None),
    ],
)
async def test_odd_path_parameters_are_404_json(
    tmp_path: Path, path: str, code: str | None
) -> None:
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        response = await server.http.get(path, headers=admin.headers)
        assert response.status_code == 404, response.text
        body = response.json()
        if code is None:
            assert body == {"error": "not_found"}
        else:
            assert body["code"] == code
            assert len(body["error_description"]) <= 200  # not the whole path back
