"""The concurrent-refresh race against a real ``tokensmith serve`` process, over sockets.

Twenty clients present the same refresh token at once (``httpx.AsyncClient``, one
connection each). The design (``server/services/tokens_refresh.py``): exactly one rotation
happens, and every use inside ``refresh_reuse_grace`` (10 s by default) gets that
rotation's pair, the access token byte for byte (the default RS256 is deterministic).
The server's own audit log, read with ``tokensmith audit``, counts the rotations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from cli._server_cli import PASSWORD, Cli
from tokensmith.jose import JWKSet, JWTPolicy, decode_unverified, verify_jwt

from .helpers import free_port, serve_process

pytestmark = pytest.mark.anyio

AUDIENCE = "race-api"
RACERS = 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Deployment:
    base: str
    client_secret: str
    cli: Cli

    def rotations(self) -> list[dict[str, Any]]:
        """The audited refresh_token issuances (one per rotation), from the database."""
        entries = self.cli.json("audit", "--limit", "10000")
        return [
            e
            for e in entries
            if e["event"] == "token_issued" and e["detail"]["grant_type"] == "refresh_token"
        ]

    def reuse_detections(self) -> list[dict[str, Any]]:
        entries = self.cli.json("audit", "--limit", "10000")
        return [e for e in entries if e["event"] == "refresh_reuse_detected"]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli = Cli(tmp_path_factory.mktemp("e2e-race") / "var")
    cli.env["TOKENSMITH_ISSUER"] = base
    cli.ok("init")
    cli.ok("users", "add", "john", "--role", "EDITOR", stdin=PASSWORD + "\n")
    secret = cli.ok(
        "clients", "add", "app", "--grant", "password", "--grant", "refresh_token",
        "--scope", "api", "--audience", AUDIENCE,
    ).strip()  # fmt: skip
    with serve_process(cli, port):
        yield Deployment(base, secret, cli)


async def _race(http: httpx.AsyncClient, refresh_token: str) -> list[httpx.Response]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return list(
        await asyncio.gather(*(http.post("/oauth/token", data=form) for _ in range(RACERS)))
    )


def _verify(deployment: Deployment, token: str, jwks: bytes) -> dict[str, Any]:
    policy = JWTPolicy(
        algorithms=["RS256"], issuer=deployment.base, audience=AUDIENCE, typ="at+jwt"
    )
    return verify_jwt(token, JWKSet.from_json(jwks), policy)


async def test_concurrent_refreshes_over_sockets_rotate_once(deployment: Deployment) -> None:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(
        base_url=deployment.base,
        auth=("app", deployment.client_secret),
        timeout=60,
        limits=limits,
    ) as http:
        login = await http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "john", "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        first = login.json()
        assert deployment.rotations() == []

        responses = await _race(http, first["refresh_token"])

        # No racer is refused, and all got the one rotation's pair.
        assert [r.status_code for r in responses] == [200] * RACERS, [r.text for r in responses]
        bodies = [r.json() for r in responses]
        assert len({b["refresh_token"] for b in bodies}) == 1
        assert len({b["access_token"] for b in bodies}) == 1  # RS256: byte-identical
        pair = bodies[0]
        assert pair["refresh_token"] != first["refresh_token"]
        assert all(r.headers["cache-control"] == "no-store" for r in responses)
        # Exactly one rotation happened on the server, and no reuse was suspected.
        rotations = deployment.rotations()
        assert len(rotations) == 1
        assert (
            rotations[0]["detail"]["jti"] == decode_unverified(pair["access_token"]).claims["jti"]
        )
        assert deployment.reuse_detections() == []

        # The pair is a working pair: its access token verifies against the served JWKS
        # (the core and PyJWT) and is active; its refresh token rotates, once, again.
        jwks = (await http.get("/.well-known/jwks.json")).content
        claims = _verify(deployment, pair["access_token"], jwks)
        assert claims["roles"] == ["EDITOR"]
        signing_key = await asyncio.to_thread(
            pyjwt.PyJWKClient(f"{deployment.base}/.well-known/jwks.json").get_signing_key_from_jwt,
            pair["access_token"],
        )
        decoded = pyjwt.decode(
            pair["access_token"],
            signing_key.key,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=deployment.base,
        )
        assert decoded["jti"] == claims["jti"]
        looked = await http.post("/oauth/introspect", data={"token": pair["access_token"]})
        assert looked.json()["active"] is True

        again = await _race(http, pair["refresh_token"])
        assert {r.status_code for r in again} == {200}, [r.text for r in again]
        assert len({r.json()["refresh_token"] for r in again}) == 1
        assert len({r.json()["access_token"] for r in again}) == 1
        third = again[0].json()
        assert third["refresh_token"] not in (first["refresh_token"], pair["refresh_token"])
        assert _verify(deployment, third["access_token"], jwks)["sub"] == claims["sub"]
        assert len(deployment.rotations()) == 2
        assert deployment.reuse_detections() == []
