"""A real `tokensmith serve` process on 127.0.0.1, driven over HTTP like a client would.

Login -> the access token verifies against the served JWKS through the JOSE core and
through PyJWT's PyJWKClient (a real client nobody here wrote); refresh rotation and
reuse detection; revocation, then introspection says inactive and the feed lists it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt as pyjwt
import pytest

from cli._server_cli import PASSWORD, Cli
from tokensmith.jose import JWKSet, JWTPolicy, verify_jwt

from .helpers import free_port, serve_process

AUDIENCE = "e2e-api"


@dataclass
class Server:
    base: str
    client_secret: str
    cli: Cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = Cli(tmp_path_factory.mktemp("e2e") / "var")
    cli.env["TOKENSMITH_ISSUER"] = base
    cli.ok("init")
    cli.ok("users", "add", "john", "--role", "EDITOR", stdin=PASSWORD + "\n")
    secret = cli.ok(
        "clients", "add", "app",
        "--grant", "password", "--grant", "refresh_token", "--grant", "client_credentials",
        "--scope", "api", "--audience", AUDIENCE,
    ).strip()  # fmt: skip
    with serve_process(cli, port):
        yield Server(base, secret, cli)


def login(server: Server) -> dict[str, str]:
    response = httpx.post(
        f"{server.base}/oauth/token",
        data={"grant_type": "password", "username": "john", "password": PASSWORD},
        auth=("app", server.client_secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, str] = response.json()
    assert body["token_type"] == "Bearer"
    return body


def test_login_token_verifies_with_the_served_jwks(server: Server) -> None:
    token = login(server)["access_token"]
    jwks = httpx.get(f"{server.base}/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200
    assert "max-age" in jwks.headers["cache-control"]
    claims = verify_jwt(
        token,
        JWKSet.from_json(jwks.content),
        JWTPolicy(algorithms=["RS256"], issuer=server.base, audience=AUDIENCE, typ="at+jwt"),
    )
    assert claims["roles"] == ["EDITOR"] and claims["client_id"] == "app"
    # A cached JWKS is revalidated with its ETag.
    again = httpx.get(
        f"{server.base}/.well-known/jwks.json",
        headers={"If-None-Match": jwks.headers["etag"]},
        timeout=10,
    )
    assert again.status_code == 304


def test_login_token_verifies_with_pyjwt_pyjwkclient(server: Server) -> None:
    token = login(server)["access_token"]
    client = pyjwt.PyJWKClient(f"{server.base}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(token)
    claims = pyjwt.decode(
        token, signing_key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=server.base
    )
    assert claims["sub"] and claims["roles"] == ["EDITOR"]


def test_refresh_rotates_and_reuse_is_refused_after_the_grace(server: Server) -> None:
    first = login(server)
    auth = ("app", server.client_secret)
    rotated = httpx.post(
        f"{server.base}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=30,
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != first["refresh_token"]
    # Within the grace window the same old token returns the same new pair.
    repeat = httpx.post(
        f"{server.base}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=30,
    )
    assert repeat.status_code == 200
    assert repeat.json()["refresh_token"] == rotated.json()["refresh_token"]


def test_revoked_token_is_inactive_and_in_the_feed(server: Server) -> None:
    token = login(server)["access_token"]
    auth = ("app", server.client_secret)
    active = httpx.post(f"{server.base}/oauth/introspect", data={"token": token}, auth=auth)
    assert active.json()["active"] is True
    revoked = httpx.post(f"{server.base}/oauth/revoke", data={"token": token}, auth=auth)
    assert revoked.status_code == 200
    inactive = httpx.post(f"{server.base}/oauth/introspect", data={"token": token}, auth=auth)
    assert inactive.json() == {"active": False}
    feed = httpx.get(f"{server.base}/oauth/revocations", params={"after": 0}, auth=auth)
    assert feed.status_code == 200
    jti = pyjwt.decode(token, options={"verify_signature": False})["jti"]
    assert jti in {entry["jti"] for entry in feed.json()["revoked"]}


def test_bad_client_secret_is_401_json(server: Server) -> None:
    response = httpx.post(
        f"{server.base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("app", "wrong"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_clients_x_forwarded_for_is_not_believed(server: Server) -> None:
    # uvicorn believes this header from 127.0.0.1 unless told otherwise: a client of a
    # TLS terminator on the same host would pick the address the throttle counts.
    forged = "198.51.100.77"
    response = httpx.post(
        f"{server.base}/oauth/token",
        data={"grant_type": "password", "username": "nobody-xff", "password": "wrong"},
        auth=("app", server.client_secret),
        headers={"X-Forwarded-For": forged, "X-Forwarded-Proto": "https"},
        timeout=30,
    )
    assert response.status_code == 400
    entries = json.loads(server.cli.ok("audit", "--json", "--limit", "50"))  # newest first
    failed = next(e for e in entries if e["event"] == "login_failed")
    assert failed["detail"] == {"reason": "unknown_user"}
    assert failed["client_address"] == "127.0.0.1"
    assert forged not in json.dumps(entries)


def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = Cli(tmp_path_factory.mktemp("proxied") / "var")
    cli.env.update(TOKENSMITH_ISSUER=base, TOKENSMITH_TRUSTED_PROXIES="10.9.9.9,127.0.0.0/8")
    cli.ok("init")
    secret = cli.ok("clients", "add", "app", "--grant", "password", "--audience", AUDIENCE)
    with serve_process(cli, port):
        response = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "password", "username": "nobody", "password": "wrong"},
            auth=("app", secret.strip()),
            headers={"X-Forwarded-For": "198.51.100.78"},
            timeout=30,
        )
    assert response.status_code == 400
    entries = json.loads(cli.ok("audit", "--json", "--limit", "50"))
    failed = next(e for e in entries if e["event"] == "login_failed")
    assert failed["client_address"] == "198.51.100.78"  # the proxy (this host) said so


def test_a_key_revoked_from_the_cli_stops_signing_at_once(server: Server) -> None:
    # The CLI is another process: the running server learns of the revocation by
    # reading the ring again (every second), not at its next maintenance (a minute).
    compromised = pyjwt.get_unverified_header(login(server)["access_token"])["kid"]
    server.cli.ok("keys", "revoke", "--yes", "--", compromised)
    deadline = time.monotonic() + 5
    while True:
        kid = pyjwt.get_unverified_header(login(server)["access_token"])["kid"]
        jwks = httpx.get(f"{server.base}/.well-known/jwks.json", timeout=10).json()
        if kid != compromised and compromised not in {k["kid"] for k in jwks["keys"]}:
            break
        assert time.monotonic() < deadline, "the revoked key still signs or is published"
        time.sleep(0.2)
    assert kid in {k["kid"] for k in jwks["keys"]}
