"""Races and throttling over HTTP, against the real app and a real SQLite file.

Concurrent requests are ``asyncio.gather``-ed over the ASGI transport, so they interleave
inside one event loop the way a server's requests do. The design under test
(``services/tokens_refresh.py``): of concurrent uses of one refresh token exactly one rotates, and
every use inside ``refresh_reuse_grace`` gets that rotation's pair (byte-identical under
RS256); any later use revokes the whole family. The login throttle counts per (username,
address) and per address (``docs/server.md``), so two ASGI transports with different
client addresses over one app stand for an attacker and the real user.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from tokensmith.clock import FixedClock
from tokensmith.jose import JWKSet, JWTPolicy, decode_unverified, verify_jwt
from tokensmith.server.app import create_app
from tokensmith.server.settings import Settings
from tokensmith.store import AuditEntry, AuditEvent, Repositories

from .conftest import (
    AUDIENCE,
    CHEAP,
    ISSUER,
    PASSWORD,
    START,
    Server,
    assert_oauth_error,
    basic,
    running,
)

pytestmark = pytest.mark.anyio

ATTACKER = "203.0.113.7"  # running()'s default address
USER_ADDRESS = "198.51.100.9"
RACERS = 20


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the same app, seen by it as coming from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


@asynccontextmanager
async def running_rs256(tmp_path: Path, **settings: Any) -> AsyncIterator[Server]:
    """``running`` with RS256 (deterministic signatures: a repeated pair is byte-identical)."""
    clock = FixedClock(START)
    config = Settings(issuer=ISSUER, data_dir=tmp_path, signing_algorithms=("RS256",), **settings)
    app = create_app(config, clock=clock, password_parameters=CHEAP)
    async with app.router.lifespan_context(app):
        async with client_at(app, ATTACKER) as http:
            yield Server(http, app.state.ctx, clock, app)


async def _verify(server: Server, token: str) -> dict[str, Any]:
    jwks = await server.http.get("/.well-known/jwks.json")
    alg = server.ctx.keyring.default_alg
    policy = JWTPolicy(
        algorithms=[alg], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt", clock=server.clock
    )
    return verify_jwt(token, JWKSet.from_json(jwks.text), policy)


async def _audit(server: Server, event: AuditEvent) -> list[AuditEntry]:
    async with server.ctx.db.read() as session:
        entries = await Repositories(session).audit.page(limit=1000)
    return [entry for entry in entries if entry.event is event]


async def _refresh_rows(server: Server) -> int:
    async with server.ctx.db.read() as session:
        return int(
            (await session.execute(text("SELECT count(*) FROM refresh_tokens"))).scalar_one()
        )


async def _rotations(server: Server) -> int:
    issued = await _audit(server, AuditEvent.TOKEN_ISSUED)
    return sum(1 for entry in issued if entry.detail["grant_type"] == "refresh_token")


async def _setup(server: Server) -> dict[str, str]:
    await server.add_user()
    client = await server.add_client()
    assert client.secret is not None
    return basic("web", client.secret)


async def _login(http: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """alice logs in with her right password; the answer must be 200."""
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = await http.post("/oauth/token", data=form, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refresh_form(token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token}


async def _race(
    http: httpx.AsyncClient, auth: dict[str, str], token: str, n: int = RACERS
) -> list[httpx.Response]:
    form = _refresh_form(token)
    return list(
        await asyncio.gather(
            *(http.post("/oauth/token", data=form, headers=auth) for _ in range(n))
        )
    )


# -- (g) concurrent refreshes of one token -------------------------------------------------


async def test_concurrent_refreshes_rotate_once_and_all_get_the_same_pair(tmp_path: Path) -> None:
    async with running_rs256(tmp_path) as server:
        auth = await _setup(server)
        first = await _login(server.http, auth)
        responses = await _race(server.http, auth, first["refresh_token"])

        # All inside the grace window (the clock does not move): none is refused, and
        # every answer is the one rotation's pair, access token byte for byte (RS256).
        assert [r.status_code for r in responses] == [200] * RACERS, [r.text for r in responses]
        bodies = [r.json() for r in responses]
        assert len({b["refresh_token"] for b in bodies}) == 1
        assert len({b["access_token"] for b in bodies}) == 1
        pair = bodies[0]
        assert pair["refresh_token"] != first["refresh_token"]
        assert all(r.headers["cache-control"] == "no-store" for r in responses)
        claims = await _verify(server, pair["access_token"])
        assert claims["jti"] != (await _verify(server, first["access_token"]))["jti"]

        # Exactly one rotation reached the database, and no reuse was detected.
        assert await _refresh_rows(server) == 2
        assert await _rotations(server) == 1
        assert await _audit(server, AuditEvent.REFRESH_REUSE_DETECTED) == []

        # The family stays usable: the new access token is active, and the new refresh
        # token rotates (again once, under another race).
        looked = await server.http.post(
            "/oauth/introspect", data={"token": pair["access_token"]}, headers=auth
        )
        assert looked.json()["active"] is True and looked.json()["jti"] == claims["jti"]
        server.clock.advance(60)
        again = await _race(server.http, auth, pair["refresh_token"])
        assert {r.status_code for r in again} == {200}
        assert len({r.json()["refresh_token"] for r in again}) == 1
        third = again[0].json()
        assert third["refresh_token"] not in (pair["refresh_token"], first["refresh_token"])
        assert (await _verify(server, third["access_token"]))["iat"] == START + 60
        assert await _refresh_rows(server) == 3
        assert await _rotations(server) == 2


async def test_concurrent_reuse_after_the_grace_revokes_the_family_once(tmp_path: Path) -> None:
    async with running_rs256(tmp_path) as server:
        auth = await _setup(server)
        old = await _login(server.http, auth)
        rotated = await server.http.post(
            "/oauth/token", data=_refresh_form(old["refresh_token"]), headers=auth
        )
        assert rotated.status_code == 200
        new = rotated.json()
        server.clock.advance(server.ctx.settings.refresh_reuse_grace + 1)

        responses = await _race(server.http, auth, old["refresh_token"])
        for response in responses:
            assert_oauth_error(response, 400, "invalid_grant")
        # One reuse detection, not one per racer; the family's access tokens are
        # denylisted once each.
        detected = await _audit(server, AuditEvent.REFRESH_REUSE_DETECTED)
        assert len(detected) == 1 and detected[0].detail["access_tokens_revoked"] == 2
        feed = await server.http.get("/oauth/revocations?after=0", headers=auth)
        jtis = [entry["jti"] for entry in feed.json()["revoked"]]
        expected = {decode_unverified(t["access_token"]).claims["jti"] for t in (old, new)}
        assert sorted(jtis) == sorted(expected)
        # The legitimate holder's successor died with the family.
        gone = await server.http.post(
            "/oauth/token", data=_refresh_form(new["refresh_token"]), headers=auth
        )
        assert_oauth_error(gone, 400, "invalid_grant")
        for token in (old["access_token"], new["access_token"]):
            looked = await server.http.post(
                "/oauth/introspect", data={"token": token}, headers=auth
            )
            assert looked.json() == {"active": False}


# -- (h) throttling from one address does not block the user at another --------------------


def _wrong(username: str = "alice") -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": "wrong password"}


async def test_a_pair_locked_at_one_address_leaves_the_user_free_at_another(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, address=ATTACKER) as server:
        auth = await _setup(server)
        settings = server.ctx.settings
        failures = 0
        waits: list[int] = []
        first_refusal_after: int | None = None
        async with client_at(server.app, USER_ADDRESS) as user:
            # A patient attacker at A: every refusal's Retry-After is obeyed, until locked.
            while True:
                attempt = await server.http.post("/oauth/token", data=_wrong(), headers=auth)
                if attempt.status_code == 400:
                    assert_oauth_error(attempt, 400, "invalid_grant")
                    failures += 1
                    continue
                body = assert_oauth_error(attempt, 429, "slow_down")
                assert body["code"] == "oauth_too_many_requests"
                assert attempt.headers["cache-control"] == "no-store"
                retry_after = int(attempt.headers["retry-after"])
                assert retry_after >= 1
                if first_refusal_after is None:
                    first_refusal_after = failures
                # Whatever A has done so far, the real user logs in from B.
                await _login(user, auth)
                if retry_after == settings.login_lock_seconds:
                    break
                waits.append(retry_after)
                assert len(waits) < 100, "never locked"
                server.clock.advance(retry_after)
            # The free failures cost nothing; from the next one on, each makes A wait.
            assert first_refusal_after == settings.login_free_failures + 1
            assert failures == settings.login_lock_threshold
            assert waits == sorted(waits) and max(waits) <= settings.login_max_delay

            # The lock refuses even the right password at A, without checking it ...
            locked = await server.http.post(
                "/oauth/token",
                data={**_wrong(), "password": PASSWORD},
                headers=auth,
            )
            assert_oauth_error(locked, 429, "slow_down")
            assert int(locked.headers["retry-after"]) == settings.login_lock_seconds
            # ... while B is not even delayed: a wrong password there is a plain 400.
            assert_oauth_error(
                await user.post("/oauth/token", data=_wrong(), headers=auth), 400, "invalid_grant"
            )
            await _login(user, auth)

            server.clock.advance(settings.login_lock_seconds - 1)
            still = await server.http.post("/oauth/token", data=_wrong(), headers=auth)
            assert_oauth_error(still, 429, "slow_down")
            assert still.headers["retry-after"] == "1"
            server.clock.advance(1)
        await _login(server.http, auth)  # the lock ran out: A may log in again


async def test_an_address_spraying_usernames_is_locked_and_others_are_not(
    tmp_path: Path,
) -> None:
    limits = {"login_free_failures": 2, "login_lock_threshold": 5, "login_ip_threshold": 10}
    async with running(tmp_path, address=ATTACKER, **limits) as server:
        auth = await _setup(server)
        lock_seconds = server.ctx.settings.login_lock_seconds
        # One guess per username (unknown usernames count like known ones) ...
        for i in range(9):
            guess = await server.http.post("/oauth/token", data=_wrong(f"user{i}"), headers=auth)
            assert_oauth_error(guess, 400, "invalid_grant")
        # ... and a success in between does not clear the address counter.
        await _login(server.http, auth)
        tenth = await server.http.post("/oauth/token", data=_wrong("user9"), headers=auth)
        assert_oauth_error(tenth, 400, "invalid_grant")

        for username in ("alice", "user10", "user0"):
            refused = await server.http.post(
                "/oauth/token", data={**_wrong(username), "password": PASSWORD}, headers=auth
            )
            assert_oauth_error(refused, 429, "slow_down")
            assert int(refused.headers["retry-after"]) == lock_seconds

        async with client_at(server.app, USER_ADDRESS) as user:
            await _login(user, auth)
            # B's counters are its own: a sprayed username there is an ordinary failure.
            other = await user.post("/oauth/token", data=_wrong("user0"), headers=auth)
            assert_oauth_error(other, 400, "invalid_grant")
        # An IPv4-mapped IPv6 form of A is A.
        async with client_at(server.app, f"::ffff:{ATTACKER}") as mapped:
            refused = await mapped.post(
                "/oauth/token", data={**_wrong(), "password": PASSWORD}, headers=auth
            )
            assert_oauth_error(refused, 429, "slow_down")

        server.clock.advance(lock_seconds)
        await _login(server.http, auth)


async def test_ipv6_addresses_are_throttled_per_64(tmp_path: Path) -> None:
    limits = {"login_free_failures": 2, "login_lock_threshold": 5, "login_ip_threshold": 10}
    sprayer = "2001:db8:1:2::7"
    async with running(tmp_path, address=sprayer, **limits) as server:
        auth = await _setup(server)
        for i in range(10):
            guess = await server.http.post("/oauth/token", data=_wrong(f"user{i}"), headers=auth)
            assert_oauth_error(guess, 400, "invalid_grant")
        # Another host of the same /64 is the same address to the throttle ...
        async with client_at(server.app, "2001:db8:1:2:ffff:ffff:ffff:1") as neighbour:
            refused = await neighbour.post(
                "/oauth/token", data={**_wrong(), "password": PASSWORD}, headers=auth
            )
            assert_oauth_error(refused, 429, "slow_down")
        # ... the next /64 is not.
        async with client_at(server.app, "2001:db8:1:3::7") as elsewhere:
            await _login(elsewhere, auth)


async def test_wrong_client_secrets_lock_the_client_at_that_address_only(tmp_path: Path) -> None:
    async with running(tmp_path, address=ATTACKER) as server:
        auth = await _setup(server)
        settings = server.ctx.settings
        guessed = basic("web", "not-the-secret")
        login = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        for _ in range(settings.login_free_failures + 1):
            response = await server.http.post("/oauth/token", data=login, headers=guessed)
            assert_oauth_error(response, 401, "invalid_client")
            assert response.headers["www-authenticate"].startswith("Basic")
        refused = await server.http.post("/oauth/token", data=login, headers=guessed)
        body = assert_oauth_error(refused, 429, "slow_down")
        assert body["code"] == "oauth_too_many_requests"
        assert int(refused.headers["retry-after"]) >= 1
        # The right secret is not even compared at A during the delay ...
        right = await server.http.post("/oauth/token", data=login, headers=auth)
        assert_oauth_error(right, 429, "slow_down")
        # ... and works from B.
        async with client_at(server.app, USER_ADDRESS) as user:
            await _login(user, auth)


async def test_a_burst_of_concurrent_guesses_gets_no_more_checks_than_the_lock_allows(
    tmp_path: Path,
) -> None:
    limits = {"login_max_delay": 0, "login_free_failures": 0, "login_lock_threshold": 5}
    async with running(tmp_path, address=ATTACKER, **limits) as server:
        auth = await _setup(server)
        threshold = server.ctx.settings.login_lock_threshold
        responses = await asyncio.gather(
            *(server.http.post("/oauth/token", data=_wrong(), headers=auth) for _ in range(30))
        )
        statuses = [r.status_code for r in responses]
        # As if sequential: the pair locks at its 5th failure, and every later attempt is
        # a 429 whose credential is never checked (checked means answered 400).
        assert statuses.count(400) == threshold, statuses
        assert statuses.count(429) == 30 - threshold, statuses
        for response in responses:
            if response.status_code == 429:
                assert_oauth_error(response, 429, "slow_down")
        # The lock holds for the right password at A, and the user logs in from B.
        locked = await server.http.post(
            "/oauth/token", data={**_wrong(), "password": PASSWORD}, headers=auth
        )
        assert_oauth_error(locked, 429, "slow_down")
        async with client_at(server.app, USER_ADDRESS) as user:
            await _login(user, auth)


async def test_a_concurrent_spray_gets_no_more_checks_than_the_address_allows(
    tmp_path: Path,
) -> None:
    limits = {"login_free_failures": 2, "login_lock_threshold": 5, "login_ip_threshold": 10}
    async with running(tmp_path, address=ATTACKER, **limits) as server:
        auth = await _setup(server)
        threshold = server.ctx.settings.login_ip_threshold
        responses = await asyncio.gather(
            *(
                server.http.post("/oauth/token", data=_wrong(f"user{i}"), headers=auth)
                for i in range(30)
            )
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {400, 429}, statuses
        # As if sequential: ten failures lock the address, whatever the usernames.
        assert statuses.count(400) == threshold, statuses
        async with client_at(server.app, USER_ADDRESS) as user:
            await _login(user, auth)


async def test_wrong_client_secrets_and_passwords_share_the_address_counter(
    tmp_path: Path,
) -> None:
    limits = {"login_free_failures": 2, "login_lock_threshold": 5, "login_ip_threshold": 10}
    async with running(tmp_path, address=ATTACKER, **limits) as server:
        auth = await _setup(server)
        for i in range(9):
            guess = await server.http.post("/oauth/token", data=_wrong(f"user{i}"), headers=auth)
            assert_oauth_error(guess, 400, "invalid_grant")
        # The address's tenth failed credential check is a client secret: locked.
        secret_guess = await server.http.post(
            "/oauth/token", data=_wrong("user9"), headers=basic("web", "guessed-secret")
        )
        assert_oauth_error(secret_guess, 401, "invalid_client")
        refused = await server.http.post(
            "/oauth/token", data={**_wrong(), "password": PASSWORD}, headers=auth
        )
        assert_oauth_error(refused, 429, "slow_down")
        async with client_at(server.app, USER_ADDRESS) as user:
            await _login(user, auth)


async def test_concurrent_right_credentials_from_one_address_are_never_throttled(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, address=ATTACKER, login_ip_threshold=20) as server:
        headers = []
        for i in range(60):
            service = await server.add_client(f"svc{i}", grant_types=("client_credentials",))
            assert service.secret is not None
            headers.append(basic(f"svc{i}", service.secret))
        form = {"grant_type": "client_credentials"}
        responses = await asyncio.gather(
            *(server.http.post("/oauth/token", data=form, headers=auth) for auth in headers)
        )
        statuses = [r.status_code for r in responses]
        assert await _audit(server, AuditEvent.THROTTLED) == []
        assert statuses == [200] * len(headers), statuses


# -- (f) error answers of the token endpoint not covered by test_errors.py -----------------


async def test_grants_the_client_may_not_use_are_unauthorized_client(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)  # "web": password and refresh_token only
        cc = await server.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=auth
        )
        body = assert_oauth_error(cc, 400, "unauthorized_client")
        assert body["code"] == "oauth_unauthorized_client"

        service = await server.add_client("svc", grant_types=("client_credentials",))
        assert service.secret is not None
        svc_auth = basic("svc", service.secret)
        password = await server.http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            headers=svc_auth,
        )
        assert_oauth_error(password, 400, "unauthorized_client")

        # A public client, authenticated by its id alone, may not use a grant it lacks.
        await server.add_client("spa", confidential=False, grant_types=("password",))
        public = await server.http.post(
            "/oauth/token", data={**_refresh_form("A" * 43), "client_id": "spa"}
        )
        assert_oauth_error(public, 400, "unauthorized_client")


async def test_scope_errors_are_invalid_scope_and_consume_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        login = {"grant_type": "password", "username": "alice", "password": PASSWORD}
        beyond = await server.http.post(
            "/oauth/token", data={**login, "scope": "read admin"}, headers=auth
        )
        body = assert_oauth_error(beyond, 400, "invalid_scope")
        assert body["code"] == "oauth_invalid_scope"

        narrow = await server.http.post(
            "/oauth/token", data={**login, "scope": "read"}, headers=auth
        )
        assert narrow.status_code == 200
        refresh = narrow.json()["refresh_token"]
        # A refresh may narrow the login's scope, never widen it ...
        wider = await server.http.post(
            "/oauth/token", data={**_refresh_form(refresh), "scope": "read write"}, headers=auth
        )
        assert_oauth_error(wider, 400, "invalid_scope")
        # ... and the refused request rotated nothing: the token still works, once.
        assert await _rotations(server) == 0
        ok = await server.http.post("/oauth/token", data=_refresh_form(refresh), headers=auth)
        assert ok.status_code == 200 and ok.json()["scope"] == "read"
        assert await _rotations(server) == 1


async def test_a_refresh_token_of_another_client_is_invalid_grant_and_stays_valid(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as server:
        auth = await _setup(server)
        tokens = await _login(server.http, auth)
        other = await server.add_client("other")
        assert other.secret is not None
        stolen = await server.http.post(
            "/oauth/token",
            data=_refresh_form(tokens["refresh_token"]),
            headers=basic("other", other.secret),
        )
        body = assert_oauth_error(stolen, 400, "invalid_grant")
        assert body["code"] == "oauth_invalid_grant"
        unknown = await server.http.post("/oauth/token", data=_refresh_form("A" * 43), headers=auth)
        assert_oauth_error(unknown, 400, "invalid_grant")
        # Neither consumed nor revoked the family.
        own = await server.http.post(
            "/oauth/token", data=_refresh_form(tokens["refresh_token"]), headers=auth
        )
        assert own.status_code == 200, own.text
        assert await _audit(server, AuditEvent.REFRESH_REUSE_DETECTED) == []
