"""A token server's services over a real SQLite file, for the token and client tests.

Not a conftest (that one belongs to the password and throttle tests): the token test
modules import ``env`` from here as a fixture.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tokensmith.clock import FixedClock
from tokensmith.jose import JWTPolicy, verify_jwt
from tokensmith.keys import MasterKey
from tokensmith.server.services.clients import ClientService, NewClient
from tokensmith.server.services.keyring import KeyRing
from tokensmith.server.services.passwords import PasswordHasher
from tokensmith.server.services.throttle import Throttle
from tokensmith.server.services.throttle_policy import ThrottlePolicy
from tokensmith.server.services.throttle_store import MemoryThrottleStore
from tokensmith.server.services.tokens import TokenService, throttle_auditor
from tokensmith.server.services.tokens_access import TokenResponse, derive_refresh_secret
from tokensmith.server.settings import Settings
from tokensmith.server.settings_model import Algorithm
from tokensmith.store import AuditEntry, AuditEvent, Database, Repositories, User, sqlite_url
from tokensmith.store import upgrade as upgrade_db

from .conftest import CHEAP

START = 1_750_000_000
ISSUER = "https://auth.example.test"
AUDIENCE = "https://api.example.test"
PASSWORD = "correct horse battery staple"
ADDRESS = "203.0.113.7"


@dataclass
class Env:
    db: Database
    clock: FixedClock
    settings: Settings
    keyring: KeyRing
    hasher: PasswordHasher
    throttle: Throttle
    client_throttle: Throttle
    tokens: TokenService
    clients: ClientService

    async def add_user(
        self,
        username: str = "alice",
        password: str = PASSWORD,
        *,
        roles: tuple[str, ...] = ("EDITOR",),
        profile: dict[str, str] | None = None,
        disabled: bool = False,
        password_hash: str | None = None,
    ) -> User:
        stored = password_hash or self.hasher.hash(password)
        async with self.db.transaction() as session:
            return await Repositories(session).users.add(
                username,
                stored,
                now=int(self.clock.now()),
                roles=roles,
                profile=profile,
                disabled=disabled,
            )

    async def add_client(
        self,
        client_id: str = "web",
        *,
        confidential: bool = True,
        grant_types: tuple[str, ...] = ("password", "refresh_token"),
        scopes: tuple[str, ...] = ("read", "write"),
        audiences: tuple[str, ...] = (AUDIENCE,),
        access_token_lifetime: int | None = None,
    ) -> NewClient:
        return await self.clients.create(
            client_id,
            confidential=confidential,
            grant_types=grant_types,
            scopes=scopes,
            audiences=audiences,
            access_token_lifetime=access_token_lifetime,
        )

    async def audit(self, event: AuditEvent | None = None) -> list[AuditEntry]:
        async with self.db.read() as session:
            entries = await Repositories(session).audit.page(limit=1000)
        return [e for e in entries if event is None or e.event is event]

    async def count_refresh_rows(self) -> int:
        async with self.db.read() as session:
            result = await session.execute(text("SELECT count(*) FROM refresh_tokens"))
            return int(result.scalar_one())

    def verify(self, response: TokenResponse, audience: str = AUDIENCE) -> dict[str, Any]:
        """The access token's claims, checked as a resource server would."""
        alg = self.keyring.default_alg
        policy = JWTPolicy(
            algorithms=[alg], issuer=ISSUER, audience=audience, typ="at+jwt", clock=self.clock
        )
        return verify_jwt(response.access_token, self.keyring.verification_keys(alg), policy)


@asynccontextmanager
async def make_env(
    tmp_path: Path,
    *,
    alg: Algorithm = "ES256",
    throttle_policy: ThrottlePolicy | None = None,
    **settings: Any,
) -> AsyncIterator[Env]:
    clock = FixedClock(START)
    config = Settings(issuer=ISSUER, data_dir=tmp_path, signing_algorithms=(alg,), **settings)
    db = Database.open(sqlite_url(tmp_path))
    await upgrade_db(db)
    master = MasterKey.generate()
    keyring = await KeyRing.load(db, master, config, clock)
    await keyring.maintain(db)
    hasher = PasswordHasher(CHEAP, max_concurrency=4)
    policy = throttle_policy or ThrottlePolicy()
    throttle = Throttle(
        MemoryThrottleStore(), policy, clock=clock, on_throttled=throttle_auditor(db)
    )
    client_throttle = Throttle(
        MemoryThrottleStore(),
        policy,
        clock=clock,
        kind="client",
        on_throttled=throttle_auditor(db),
    )
    tokens = TokenService(
        db,
        keyring,
        hasher,
        throttle,
        config,
        refresh_secret=derive_refresh_secret(master),
        clock=clock,
    )
    clients = ClientService(db, client_throttle, clock=clock)
    try:
        yield Env(db, clock, config, keyring, hasher, throttle, client_throttle, tokens, clients)
    finally:
        await db.dispose()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with make_env(tmp_path) as value:
        yield value


@pytest.fixture
async def rsa_env(tmp_path: Path) -> AsyncIterator[Env]:
    """RS256 signatures are deterministic: the grace window's repeat is byte-identical."""
    async with make_env(tmp_path, alg="RS256") as value:
        yield value


def random_token() -> str:
    return secrets.token_urlsafe(32)
