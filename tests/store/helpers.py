"""Sample rows for the store tests."""

from __future__ import annotations

from collections.abc import Mapping

from conftest import NOW
from tokensmith.store import Client, Database, Repositories, User

# A well-formed argon2id string (of no password anyone uses): the store checks only
# the prefix. The test that looks for secrets in the file hashes a real password.
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"


async def add_user(
    db: Database,
    username: str = "alice",
    *,
    roles: tuple[str, ...] = (),
    profile: Mapping[str, str] | None = None,
) -> User:
    async with db.transaction() as session:
        users = Repositories(session).users
        return await users.add(username, PASSWORD_HASH, now=NOW, roles=roles, profile=profile)


async def add_client(db: Database, client_id: str = "web") -> Client:
    async with db.transaction() as session:
        return await Repositories(session).clients.add(
            client_id,
            secret_hash=None,
            grant_types=["password", "refresh_token"],
            audiences=["api"],
            now=NOW,
        )
