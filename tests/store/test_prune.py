"""prune(): one pass over every table with expiring rows."""

from __future__ import annotations

import pytest

from conftest import NOW
from tokensmith.store import (
    Database,
    LoginFailure,
    PruneCounts,
    Repositories,
    hash_token,
    prune,
)

from .helpers import add_client, add_user

pytestmark = pytest.mark.anyio


async def test_prune_removes_only_what_expired(db: Database) -> None:
    await add_client(db, "web")
    user = await add_user(db, "alice")
    async with db.transaction() as session:
        repos = Repositories(session)
        for name, expires in (("old", NOW + 10), ("live", NOW + 10_000)):
            await repos.refresh_tokens.add(
                token_hash=hash_token(name),
                family_id=name,
                user_id=user.id,
                client_id="web",
                scope="",
                issued_at=NOW,
                expires_at=expires,
                family_expires_at=expires,
            )
            await repos.revocations.add(f"jti-{name}", "alice", expires, NOW)
        await repos.revocations.set_not_before("alice", NOW)
        await repos.audit.record("login_ok", at=NOW - 100)
        await repos.audit.record("login_ok", at=NOW + 50)
        # Failure counters go by the expiry the throttle gave them (NOW + 100 is due).
        for key, expires in (("ip:192.0.2.1", NOW + 100), ("ip:192.0.2.2", NOW + 100.5)):
            await repos.login_failures.put(LoginFailure(key, 1, NOW, NOW, None, expires))
    async with db.transaction() as session:
        counts = await prune(
            session, NOW + 100, audit_retention=60, token_lifetime=99, login_failures=True
        )
    assert counts == PruneCounts(refresh_tokens=1, revocations=2, audit_entries=1, login_failures=1)
    async with db.read() as session:
        repos = Repositories(session)
        assert await repos.refresh_tokens.get_by_hash(hash_token("live")) is not None
        assert await repos.refresh_tokens.get_by_hash(hash_token("old")) is None
        assert await repos.revocations.is_revoked("jti-live")
        assert not await repos.revocations.is_revoked("jti-old")
        assert await repos.revocations.get_not_before("alice") is None
        assert [e.at for e in await repos.audit.page()] == [NOW + 50]
        assert await repos.login_failures.get("ip:192.0.2.1") is None
        assert await repos.login_failures.get("ip:192.0.2.2") is not None


async def test_prune_keeps_optional_kinds_by_default(db: Database) -> None:
    async with db.transaction() as session:
        repos = Repositories(session)
        await repos.revocations.set_not_before("alice", NOW)
        await repos.login_failures.put(LoginFailure("ip:192.0.2.1", 1, NOW, NOW, None, NOW))
    async with db.transaction() as session:
        counts = await prune(session, NOW + 10**6, audit_retention=60)
    assert counts == PruneCounts(0, 0, 0, 0)
