"""ANCHORS.md section 3, the token server's rows: GHSA-cq42-vhv7-xr7p and CVE-2026-9798.

- GHSA-cq42-vhv7-xr7p (Keycloak): "attacker can lock any account by failing its
  password". The test that would have caught it: "failures from IP A must not block a
  correct login from IP B beyond a delay; lock keyed on user+IP".
- CVE-2026-9798 (Keycloak): "lockout not enforced on the CIBA grant". The test: "every
  grant that checks a credential (password, client_credentials, refresh) honours the lock".

Every test drives the real ASGI app (its lifespan runs ``build_services``) over httpx's
ASGI transport, on a real SQLite file in ``tmp_path``, with the server's default throttle
settings; the client address is the transport's peer, so each address is its own
``httpx.AsyncClient``. Time is a ``FixedClock`` walked through the delays and locks.
The throttle counters live in memory or in the database (``throttle_store``), as with
one worker or several: both are run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tokensmith.jose import JWKSet, JWTPolicy, verify_jwt
from tokensmith.server.services import clients as clients_module

from .routes.conftest import AUDIENCE, ISSUER, PASSWORD, Server, basic, running

pytestmark = pytest.mark.anyio

HOME = "203.0.113.7"  # the real user's address: ``running``'s default peer
ATTACKERS = ["198.51.100.66", "198.51.100.67", "2001:db8:bad::1"]
ELSEWHERE = ["192.0.2.44", "2001:db8:600d::1"]  # other addresses of legitimate callers
STORES = ["memory", "database"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def at(server: Server, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests reach the app from ``address`` (the ASGI peer)."""
    transport = httpx.ASGITransport(app=server.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


def password_form(username: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def fail_until_locked(
    server: Server, senders: list[Callable[[], Any]], failures: int, failed_status: int
) -> None:
    """Each sender fails until ``failures`` were counted for it, waiting out every delay.

    The senders go in turns, as attackers working at once: their locks come within
    seconds of each other, so all of them hold together afterwards. A 429 with a
    Retry-After up to ``login_max_delay`` is a delay; when every sender still going is
    delayed, the clock moves on by the shortest wait, as a patient attacker would wait.
    A longer one is a lock: that sender is done (early, if failures from elsewhere were
    counted with its own; what the lock binds is for the caller to check). Each
    sender's next answer must then be a lock.
    """
    counted = [0] * len(senders)
    while min(counted) < failures:
        waits = []
        for i, send in enumerate(senders):
            if counted[i] == failures:
                continue
            response = await send()
            if response.status_code == 429:
                retry_after = int(response.headers["retry-after"])
                if retry_after > server.ctx.settings.login_max_delay:
                    counted[i] = failures  # locked already
                else:
                    waits.append(retry_after)
                continue
            assert response.status_code == failed_status, response.text
            counted[i] += 1
        if waits and len(waits) == sum(1 for n in counted if n < failures):
            server.clock.advance(min(waits))
    for send in senders:
        assert_locked(server, await send())


def assert_locked(server: Server, response: httpx.Response) -> None:
    """429 slow_down for the lock itself (longer than any delay), not a 200 or a 400."""
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "slow_down"
    retry_after = int(response.headers["retry-after"])
    assert server.ctx.settings.login_max_delay < retry_after
    assert retry_after <= server.ctx.settings.login_lock_seconds


async def verified_subject(server: Server, response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    jwks = JWKSet.from_json((await server.http.get("/.well-known/jwks.json")).text)
    policy = JWTPolicy(algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, clock=server.clock)
    subject: str = verify_jwt(response.json()["access_token"], jwks, policy)["sub"]
    return subject


# -- GHSA-cq42-vhv7-xr7p ------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
async def test_ghsa_cq42_vhv7_xr7p_failures_elsewhere_never_lock_the_user_out(
    tmp_path: Path, store: str
) -> None:
    """GHSA-cq42-vhv7-xr7p (Keycloak): an attacker locks any account by failing its password.

    Three attacker addresses (one IPv6) at once fail alice's password until each pair is
    locked, in every spelling of her name and with forwarding headers naming her address;
    the first also sprays other names until the address itself is locked. While all those
    locks hold, alice logs in at her own address or any other at the first try: not even
    a delay. The locks bind only where they were made.
    """
    async with running(tmp_path, throttle_store=store) as server:
        settings = server.ctx.settings
        alice = await server.add_user("alice")
        await server.add_user("bob")
        web = await server.add_client()
        assert web.secret is not None
        auth = basic("web", web.secret)
        spellings = ["alice", "ALICE", "Alice", "\uff41\uff4c\uff49\uff43\uff45"]  # fullwidth
        forged = {**auth, "X-Forwarded-For": HOME, "X-Real-IP": HOME, "Forwarded": f"for={HOME}"}

        async with AsyncExitStack() as stack:
            attackers = [await stack.enter_async_context(at(server, a)) for a in ATTACKERS]
            guesses = iter(range(100_000))

            def guesser(attacker: httpx.AsyncClient) -> Callable[[], Any]:
                async def guess() -> httpx.Response:
                    i = next(guesses)
                    form = password_form(spellings[i % len(spellings)], f"guess {i}")
                    return await attacker.post("/oauth/token", data=form, headers=forged)

                return guess

            senders = [guesser(attacker) for attacker in attackers]
            await fail_until_locked(server, senders, settings.login_lock_threshold, 400)
            # The first attacker sprays other usernames until its address is locked whole.
            for i in range(settings.login_ip_threshold - settings.login_lock_threshold):
                form = password_form(f"user{i}", "guess")
                sprayed = await attackers[0].post("/oauth/token", data=form, headers=forged)
                assert sprayed.status_code == 400, sprayed.text

            # Alice at home: her right password works at once, no 429, no Retry-After.
            home = await server.http.post("/oauth/token", data=password_form(), headers=auth)
            assert "retry-after" not in home.headers
            assert await verified_subject(server, home) == str(alice.id)
            # Her own typos at home get the full allowance: the attacker's failures are
            # not hers.
            for i in range(settings.login_free_failures):
                form = password_form("alice", f"typo {i}")
                typo = await server.http.post("/oauth/token", data=form, headers=auth)
                assert typo.status_code == 400 and typo.json()["error"] == "invalid_grant"
            again = await server.http.post("/oauth/token", data=password_form(), headers=auth)
            assert await verified_subject(server, again) == str(alice.id)
            # Any other address, IPv4 or IPv6, and any spelling of her name: the same.
            for address in ELSEWHERE:
                async with at(server, address) as elsewhere:
                    for spelling in spellings:
                        response = await elsewhere.post(
                            "/oauth/token", data=password_form(spelling), headers=auth
                        )
                        assert await verified_subject(server, response) == str(alice.id)
                    bob = await elsewhere.post(
                        "/oauth/token", data=password_form("bob"), headers=auth
                    )
                    assert bob.status_code == 200, bob.text

            # All this while, the attack held where it was made: alice's right password is
            # refused at every attacker address, and bob's at the one locked as a whole.
            for attacker in attackers:
                still = await attacker.post("/oauth/token", data=password_form(), headers=auth)
                assert_locked(server, still)
            bob_there = await attackers[0].post(
                "/oauth/token", data=password_form("bob"), headers=auth
            )
            assert_locked(server, bob_there)


# -- CVE-2026-9798 -----------------------------------------------------------------------------

LOCKS = ["client and address", "address, by passwords", "address, by client secrets", "user"]


class Spies:
    """Counts the credential comparisons the server makes (the real ones run)."""

    def __init__(self, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
        self.passwords = 0
        self.secrets = 0
        hasher = server.ctx.passwords
        verify_async = hasher.verify_async
        secret_matches = clients_module._secret_matches

        async def counting_verify(stored: str | None, password: str) -> Any:
            self.passwords += 1
            return await verify_async(stored, password)

        def counting_matches(stored: str, secret: str) -> bool:
            self.secrets += 1
            return secret_matches(stored, secret)

        monkeypatch.setattr(hasher, "verify_async", counting_verify)
        monkeypatch.setattr(clients_module, "_secret_matches", counting_matches)


@dataclass(frozen=True)
class Grant:
    """One way to ask for a token with the right credentials."""

    grant: str  # password, refresh_token, client_credentials
    client: str  # web (confidential) or spa (public)
    form: dict[str, str]
    headers: dict[str, str]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("lock", LOCKS)
async def test_cve_2026_9798_every_grant_that_checks_a_credential_honours_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lock: str, store: str
) -> None:
    """CVE-2026-9798 (Keycloak): lockout not enforced on one grant (CIBA).

    With a lock in place at address A, every grant that checks a credential the lock
    binds (password with a confidential or a public client, refresh_token with either,
    client_credentials, client authentication by Basic or in the body) is refused 429
    there with the right credentials, and the credential is not even compared; a
    refresh token presented meanwhile is not used up. At another address, or once the
    lock ends, the same requests succeed. Locks: on the client web at A (wrong secrets),
    on A as a whole (wrong passwords or wrong client secrets for many names), on alice
    at A (wrong passwords: it binds her password, whichever client or spelling carries it).
    """
    attacker_address, other_address = ATTACKERS[0], ELSEWHERE[0]
    async with running(tmp_path, throttle_store=store) as server:
        settings = server.ctx.settings
        await server.add_user("alice")
        web = await server.add_client(
            "web", grant_types=("password", "refresh_token", "client_credentials")
        )
        await server.add_client("spa", confidential=False)
        assert web.secret is not None
        web_basic = basic("web", web.secret)
        web_body = {"client_id": "web", "client_secret": web.secret}
        spa_body = {"client_id": "spa"}

        async def login(body: dict[str, str], headers: dict[str, str]) -> str:
            form = {**password_form(), **body}
            response = await server.http.post("/oauth/token", data=form, headers=headers)
            assert response.status_code == 200, response.text
            token: str = response.json()["refresh_token"]
            return token

        # Sessions alice started before the attack: one per client to present at A while
        # it is locked, one per client to use at the other address meanwhile.
        at_a = {"web": await login({}, web_basic), "spa": await login(spa_body, {})}
        at_b = {"web": await login({}, web_basic), "spa": await login(spa_body, {})}

        def grants(refresh: dict[str, str]) -> dict[str, Grant]:
            """Every grant that checks a credential, with the right credentials."""
            refresh_web = {"grant_type": "refresh_token", "refresh_token": refresh["web"]}
            refresh_spa = {"grant_type": "refresh_token", "refresh_token": refresh["spa"]}
            cc = {"grant_type": "client_credentials"}
            return {
                "password, Basic": Grant("password", "web", password_form(), web_basic),
                "password, body": Grant("password", "web", {**password_form(), **web_body}, {}),
                "password, public": Grant("password", "spa", {**password_form(), **spa_body}, {}),
                "password, ALICE": Grant("password", "web", password_form("ALICE"), web_basic),
                "refresh_token, Basic": Grant("refresh_token", "web", refresh_web, web_basic),
                "refresh_token, public": Grant(
                    "refresh_token", "spa", {**refresh_spa, **spa_body}, {}
                ),
                "client_credentials, Basic": Grant("client_credentials", "web", cc, web_basic),
                "client_credentials, body": Grant(
                    "client_credentials", "web", {**cc, **web_body}, {}
                ),
            }

        def binds(grant: Grant) -> bool:
            """What the lock under test covers (it must cover no less)."""
            if lock == "client and address":
                return grant.client == "web"  # every use of web's secret at A
            if lock == "user":
                return grant.grant == "password"  # alice's password, with any client
            return True  # the address: every credential from A

        async def asked(http: httpx.AsyncClient, grant: Grant) -> httpx.Response:
            response = await http.post("/oauth/token", data=grant.form, headers=grant.headers)
            if response.status_code == 200 and grant.grant == "refresh_token":
                # A legitimate rotation: the successor is the session's token now.
                refresh = at_a if http is a else at_b
                refresh[grant.client] = response.json()["refresh_token"]
            return response

        async with at(server, attacker_address) as a:
            if lock == "client and address":

                async def wrong_secret() -> httpx.Response:
                    form = {"grant_type": "client_credentials"}
                    return await a.post("/oauth/token", data=form, headers=basic("web", "guess"))

                await fail_until_locked(server, [wrong_secret], settings.login_lock_threshold, 401)
            elif lock == "user":
                guesses = iter(range(10_000))

                async def wrong_password() -> httpx.Response:
                    form = password_form("alice", f"guess {next(guesses)}")
                    return await a.post("/oauth/token", data=form, headers=web_basic)

                await fail_until_locked(
                    server, [wrong_password], settings.login_lock_threshold, 400
                )
            else:
                for i in range(settings.login_ip_threshold):
                    if lock == "address, by passwords":
                        form = password_form(f"user{i}", "guess")
                        answer = await a.post("/oauth/token", data=form, headers=web_basic)
                        assert answer.status_code == 400, answer.text
                    else:
                        form = {"grant_type": "client_credentials"}
                        client = basic(f"client{i}", "guess")
                        answer = await a.post("/oauth/token", data=form, headers=client)
                        assert answer.status_code == 401, answer.text

            # Locked: every grant the lock binds is refused with the right credentials,
            # before any of them is compared; what it does not bind still works at A.
            spies = Spies(server, monkeypatch)
            covered = set()
            for name, grant in grants(at_a).items():
                before = spies.passwords, spies.secrets
                response = await asked(a, grant)
                if binds(grant):
                    covered.add(grant.grant)
                    assert_locked(server, response)
                    compared = spies.passwords - before[0], spies.secrets - before[1]
                    if lock == "user":  # web's secret is checked (and right); her password not
                        assert compared[0] == 0, name
                    else:
                        assert compared == (0, 0), name
                else:
                    assert response.status_code == 200, (name, response.text)
            if lock == "user":
                assert covered == {"password"}
            else:
                assert covered == {"password", "refresh_token", "client_credentials"}
                # web's secret guards its other endpoints too.
                for path in ("/oauth/introspect", "/oauth/revoke"):
                    response = await a.post(path, data={"token": "x"}, headers=web_basic)
                    assert_locked(server, response)
                assert_locked(server, await a.get("/oauth/revocations", headers=web_basic))

            # Elsewhere, at the same moment, the same requests succeed.
            async with at(server, other_address) as b:
                for name, grant in grants(at_b).items():
                    response = await asked(b, grant)
                    assert response.status_code == 200, (name, response.text)

            # Once the lock has run out, A gets through too; the refresh tokens presented
            # at A during the lock were not used up: they rotate now (a used one would be
            # reuse: refused, and its family revoked).
            server.clock.advance(settings.login_lock_seconds)
            for name, grant in grants(at_a).items():
                response = await asked(a, grant)
                assert response.status_code == 200, (name, response.text)
