"""Every bad request answers its documented status and an OAuth JSON body, never a 500."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tokensmith.server.forms import MAX_BODY

from .conftest import FORM, PASSWORD, Server, assert_oauth_error, basic, running

pytestmark = pytest.mark.anyio


async def _setup(server: Server) -> dict[str, str]:
    await server.add_user()
    client = await server.add_client()
    assert client.secret is not None
    return basic("web", client.secret)


def _login(**extra: str) -> str:
    return f"grant_type=password&username=alice&password={PASSWORD.replace(' ', '+')}" + "".join(
        f"&{k}={v}" for k, v in extra.items()
    )


_BAD_BODIES = [
    pytest.param(_login(scope="read") + "&scope=write", id="repeated"),
    pytest.param(_login(extra="1"), id="unknown-parameter"),
    pytest.param(_login(refresh_token="x"), id="parameter-of-another-grant"),
    pytest.param(_login(scope="%FF"), id="non-utf8-escape"),
    pytest.param(_login(scope="%zz"), id="broken-escape"),
    pytest.param(_login() + "&", id="empty-field"),
    pytest.param(_login() + "&scope", id="field-without-value"),
    pytest.param(_login(scope="a" * 4097), id="over-long-value"),
    pytest.param("username=alice", id="missing-grant-type"),
    pytest.param("grant_type=", id="empty-grant-type"),
    pytest.param("grant_type=password&password=x", id="missing-username"),
    pytest.param("&".join(f"a{i}=1" for i in range(60)), id="too-many-fields"),
]


@pytest.mark.parametrize("body", _BAD_BODIES)
async def test_malformed_forms_are_invalid_request(tmp_path: Path, body: str) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        response = await server.http.post(
            "/oauth/token", content=body, headers={**auth, "Content-Type": FORM}
        )
        assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/form-data; boundary=x", f"{FORM}; charset=latin-1"],
)
async def test_wrong_content_type(tmp_path: Path, content_type: str | None) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        headers = dict(auth)
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await server.http.post("/oauth/token", content=_login(), headers=headers)
        assert_oauth_error(response, 400, "invalid_request")
        ok = await server.http.post(
            "/oauth/token",
            content=_login(),
            headers={**auth, "Content-Type": f"{FORM}; charset=UTF-8"},
        )
        assert ok.status_code == 200


async def test_raw_non_utf8_body(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        body = _login().encode() + b"&scope=\xff"
        response = await server.http.post(
            "/oauth/token", content=body, headers={**auth, "Content-Type": FORM}
        )
        assert_oauth_error(response, 400, "invalid_request")


async def test_body_over_64_kib(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        body = _login() + "&scope=" + "a" * (65 * 1024)
        response = await server.http.post(
            "/oauth/token", content=body, headers={**auth, "Content-Type": FORM}
        )
        assert_oauth_error(response, 400, "invalid_request")

        # Without a Content-Length (chunked), reading stops past the cap all the same.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(80):
                yield b"a" * 1024

        streamed = await server.http.post(
            "/oauth/token", content=chunks(), headers={**auth, "Content-Type": FORM}
        )
        assert_oauth_error(streamed, 400, "invalid_request")
        assert MAX_BODY == 64 * 1024


async def test_basic_and_post_auth_together(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        response = await server.http.post(
            "/oauth/token", content=_login(client_id="web"), headers={**auth, "Content-Type": FORM}
        )
        assert_oauth_error(response, 400, "invalid_request")


async def test_repeated_content_type_or_authorization(tmp_path: Path) -> None:
    # Which of two a proxy or a framework reads is anyone's guess: neither is chosen.
    async with running(tmp_path) as server:
        auth = await _setup(server)
        wrong = basic("web", "wrong")
        for headers in (
            [("Content-Type", FORM), ("Content-Type", "application/json")],
            [("Content-Type", FORM), ("Authorization", wrong["Authorization"])],
            [("Content-Type", FORM), ("Authorization", "Basic !!")],
        ):
            response = await server.http.post(
                "/oauth/token",
                content=_login(),
                headers=httpx.Headers([("Authorization", auth["Authorization"]), *headers]),
            )
            assert_oauth_error(response, 400, "invalid_request")


async def test_unsupported_grant(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        response = await server.http.post(
            "/oauth/token", data={"grant_type": "authorization_code", "code": "x"}, headers=auth
        )
        assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"web:wrong").decode(),
        "Basic " + base64.b64encode(b"nobody:wrong").decode(),
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "Basic " + base64.b64encode(b"web:%FF").decode(),
        "Bearer abc",
    ],
)
async def test_client_authentication_failures(tmp_path: Path, authorization: str | None) -> None:
    async with running(tmp_path) as server:
        await _setup(server)
        headers = {"Content-Type": FORM}
        if authorization is not None:
            headers["Authorization"] = authorization
        for path, body in (
            ("/oauth/token", _login()),
            ("/oauth/revoke", "token=x"),
            ("/oauth/introspect", "token=x"),
        ):
            response = await server.http.post(path, content=body, headers=headers)
            assert_oauth_error(response, 401, "invalid_client")
            assert response.headers["www-authenticate"].startswith("Basic")


async def test_wrong_password_is_invalid_grant(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        form = {"grant_type": "password", "username": "alice", "password": "wrong"}
        response = await server.http.post("/oauth/token", data=form, headers=auth)
        assert_oauth_error(response, 400, "invalid_grant")


async def test_throttled_at_one_address_not_at_another(tmp_path: Path) -> None:
    async with running(tmp_path, login_free_failures=0) as server:
        auth = await _setup(server)
        form = {"grant_type": "password", "username": "alice", "password": "wrong"}
        await server.http.post("/oauth/token", data=form, headers=auth)
        throttled = await server.http.post("/oauth/token", data=form, headers=auth)
        assert_oauth_error(throttled, 429, "slow_down")
        assert int(throttled.headers["retry-after"]) >= 1
        good = {**form, "password": PASSWORD}
        still = await server.http.post("/oauth/token", data=good, headers=auth)
        assert still.status_code == 429  # the credential is not even checked

        elsewhere = httpx.ASGITransport(app=server.app, client=("198.51.100.9", 40000))
        async with httpx.AsyncClient(transport=elsewhere, base_url=str(server.http.base_url)) as c:
            response = await c.post("/oauth/token", data=good, headers=auth)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=x",
        "limit=0",
        "limit=1001",
        "after=1&after=2",
        "since=1",
        "after=%FF",
        "after=" + "9" * 19,
    ],
)
async def test_revocation_feed_bad_query(tmp_path: Path, query: str) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        response = await server.http.get(f"/oauth/revocations?{query}", headers=auth)
        assert_oauth_error(response, 400, "invalid_request")


async def test_revocation_feed_needs_client_auth(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        await _setup(server)
        response = await server.http.get("/oauth/revocations")
        assert_oauth_error(response, 401, "invalid_client")


async def test_long_tokens_for_revoke_and_introspect(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        near_cap = {"token": "a.b." + "c" * 8000}
        response = await server.http.post("/oauth/introspect", data=near_cap, headers=auth)
        assert response.status_code == 200 and response.json() == {"active": False}
        over = {"token": "a" * 8193}
        response = await server.http.post("/oauth/revoke", data=over, headers=auth)
        assert_oauth_error(response, 400, "invalid_request")
        missing = await server.http.post("/oauth/revoke", data={}, headers=auth)
        assert_oauth_error(missing, 400, "invalid_request")
