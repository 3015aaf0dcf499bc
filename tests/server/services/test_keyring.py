"""The key ring over a real SQLite file: JWKS, signing, rotation timeline, revocation, restarts."""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from tokensmith.clock import FixedClock
from tokensmith.jose import JWTPolicy, KeyNotFound, encode_jwt, verify_jwt
from tokensmith.keys import (
    DAY,
    CreateKey,
    KeyState,
    MasterKey,
    RotationTooEarly,
    SealError,
    UnknownKey,
    deletion_time,
)
from tokensmith.server.services.keyring import (
    HS256_KID,
    AlgorithmNotConfigured,
    KeyRing,
    NoSigningKey,
    SigningKeys,
)
from tokensmith.server.services.keyring_jobs import run_maintenance, run_reload
from tokensmith.server.settings import Settings
from tokensmith.store import (
    AuditEvent,
    AuditRepository,
    ConcurrentChange,
    Database,
    KeyRepository,
    Repositories,
    sqlite_url,
    upgrade,
)

pytestmark = pytest.mark.anyio

START = 1_750_000_000
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database.open(sqlite_url(tmp_path))
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def jwks_doc(ring: KeyRing) -> dict[str, Any]:
    body, _ = ring.jwks()
    doc: dict[str, Any] = json.loads(body)
    return doc


def jwks_kids(ring: KeyRing) -> set[str]:
    return {key["kid"] for key in jwks_doc(ring)["keys"]}


def issue(ring: KeyRing, clock: FixedClock, alg: str | None = None) -> str:
    return encode_jwt({"sub": "alice"}, ring.signer(alg), expires_in=900, clock=clock)


def check(ring: KeyRing, token: str, clock: FixedClock, alg: str = "RS256") -> dict[str, Any]:
    policy = JWTPolicy(algorithms=[alg], clock=clock, leeway=60)
    return verify_jwt(token, ring.verification_keys(alg), policy)


async def audit_events(db: Database) -> list[tuple[AuditEvent, str | None]]:
    async with db.read() as session:
        entries = await Repositories(session).audit.page(limit=1000)
    return [(e.event, e.subject) for e in reversed(entries)]


async def fresh_ring(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> KeyRing:
    ring = await KeyRing.load(db, master, settings, clock)
    await ring.maintain(db)
    return ring


async def test_fresh_db_gets_a_current_rs256_key_published_without_private_members(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await KeyRing.load(db, master, settings, clock)
    with pytest.raises(NoSigningKey) as caught:
        ring.signer()
    assert caught.value.code == "no_signing_key"
    assert jwks_doc(ring) == {"keys": []}

    actions = await ring.maintain(db)
    assert actions == [CreateKey("RS256", KeyState.CURRENT)]
    signer = ring.signer()
    assert signer.is_private and signer.alg == "RS256"
    (key,) = jwks_doc(ring)["keys"]
    assert key["kid"] == signer.kid
    assert key["alg"] == "RS256" and key["use"] == "sig" and key["kty"] == "RSA"
    assert not PRIVATE_MEMBERS & set(key)
    assert [r.kid for r in ring.records] == [signer.kid]
    assert await audit_events(db) == [(AuditEvent.KEY_CREATED, signer.kid)]
    # Planning again finds nothing to do.
    assert await ring.maintain(db) == []


async def test_jwks_body_is_compact_and_etag_is_stable_until_the_ring_changes(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    body, etag = ring.jwks()
    assert ring.jwks() == (body, etag)
    assert b" " not in body and b"\n" not in body
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    await ring.reload(db)
    assert ring.jwks() == (body, etag)

    clock.advance(DAY)
    await ring.rotate(db, "RS256")  # creates the next key
    new_body, new_etag = ring.jwks()
    assert new_etag != etag and new_body != body
    assert len(jwks_kids(ring)) == 2
    # The same document is byte-identical across instances (shared caches, ETags).
    other = await KeyRing.load(db, master, settings, clock)
    assert other.jwks() == (new_body, new_etag)


async def test_sixty_day_walk_publishes_before_signing_and_deletes_old_keys(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    policy = settings.rotation_policy()
    ring = await KeyRing.load(db, master, settings, clock)
    first_seen: dict[str, int] = {}
    signers: list[str] = []
    tokens: list[tuple[str, str]] = []  # (kid, token)
    for day in range(61):
        clock.set(START + day * DAY)
        await ring.maintain(db)
        now = int(clock.now())
        for kid in jwks_kids(ring):
            first_seen.setdefault(kid, now)
        kid = ring.signer().kid
        if kid not in signers:
            signers.append(kid)
        if len(signers) > 1:
            # Every key but the very first was published prepublish before it signed.
            assert now - first_seen[kid] >= policy.prepublish
        tokens.append((kid, issue(ring, clock)))
        # Every token issued today verifies today.
        assert check(ring, tokens[-1][1], clock)["sub"] == "alice"
        # Deleted keys are neither published nor usable for verification.
        live = {r.kid for r in ring.records}
        assert jwks_kids(ring) <= live
    assert len(signers) == 3  # day 0, day 30, day 60
    assert first_seen[signers[1]] == START + 29 * DAY
    assert first_seen[signers[2]] == START + 59 * DAY
    # The first key is deleted after its retention; the second is retired, the third current.
    states = {r.kid: r.state for r in ring.records}
    assert signers[0] not in states
    assert states[signers[1]] is KeyState.RETIRED and states[signers[2]] is KeyState.CURRENT
    events = [e for e, _ in await audit_events(db)]
    assert events.count(AuditEvent.KEY_ACTIVATED) == 2
    assert events.count(AuditEvent.KEY_RETIRED) == 2
    assert events.count(AuditEvent.KEY_DELETED) == 1


async def test_old_tokens_verify_until_their_key_is_deleted(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    policy = settings.rotation_policy()
    ring = await fresh_ring(db, master, settings, clock)
    old_kid = ring.signer().kid
    clock.set(START + 29 * DAY)
    await ring.maintain(db)  # next key published
    clock.set(START + 30 * DAY)
    old_token = issue(ring, clock)  # signed just before the rotation
    await ring.maintain(db)  # rotation: the old key retires now
    assert ring.signer().kid != old_kid
    retired_at = int(clock.now())
    new_token = issue(ring, clock)
    assert check(ring, new_token, clock)["sub"] == "alice"
    assert check(ring, old_token, clock)["sub"] == "alice"

    # The last second of retention (exp + leeway not yet passed): still verifies.
    clock.set(retired_at + policy.retention - 1)
    assert check(ring, old_token, clock)["sub"] == "alice"
    assert old_kid in jwks_kids(ring)
    # At the deletion time the key drops out, before any job deleted the row.
    clock.set(retired_at + policy.retention)
    assert old_kid in {r.kid for r in ring.records}
    assert old_kid not in jwks_kids(ring)
    with pytest.raises(KeyNotFound):
        verify_jwt(old_token, ring.verification_keys(), JWTPolicy(algorithms=["RS256"]))
    await ring.maintain(db)
    assert old_kid not in {r.kid for r in ring.records}


async def test_hs256_secret_verifies_but_is_never_published(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    secret = secrets.token_urlsafe(48)
    settings = Settings(
        data_dir=tmp_path, signing_algorithms=("RS256", "HS256"), hs256_secret=secret
    )
    ring = await fresh_ring(db, master, settings, clock)
    assert ring.default_alg == "RS256"
    hs_keys = ring.verification_keys("HS256")
    assert [key.kid for key in hs_keys] == [HS256_KID]
    assert HS256_KID not in ring.verification_keys("RS256")
    with pytest.raises(ValueError, match="alg"):
        ring.verification_keys()  # the core refuses one set mixing secrets and public keys
    token = issue(ring, clock, "HS256")
    assert check(ring, token, clock, "HS256")["sub"] == "alice"
    body, _ = ring.jwks()
    assert b"oct" not in body and secret.encode() not in body
    assert {k["kty"] for k in jwks_doc(ring)["keys"]} == {"RSA"}
    # The secret never reaches the database.
    assert {r.alg for r in ring.records} == {"RS256"}
    with pytest.raises(AlgorithmNotConfigured):
        await ring.rotate(db, "HS256")


async def test_hs256_only_creates_no_keys(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    secret = secrets.token_urlsafe(48)
    settings = Settings(data_dir=tmp_path, signing_algorithms=("HS256",), hs256_secret=secret)
    ring = await fresh_ring(db, master, settings, clock)
    assert ring.records == ()
    assert jwks_doc(ring) == {"keys": []}
    assert [key.kid for key in ring.verification_keys()] == [HS256_KID]
    assert ring.signer().kid == HS256_KID
    token = issue(ring, clock)
    assert check(ring, token, clock, "HS256")["sub"] == "alice"


async def test_a_ring_dropped_for_hs256_alone_retires(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    rs256 = (await fresh_ring(db, master, settings, clock)).signer().kid
    secret = secrets.token_urlsafe(48)
    hs_only = Settings(data_dir=tmp_path, signing_algorithms=("HS256",), hs256_secret=secret)
    restarted = await fresh_ring(db, master, hs_only, clock)
    assert restarted.signer().kid == HS256_KID
    states = {r.kid: r.state for r in restarted.records}
    assert states[rs256] is KeyState.RETIRED  # not current for ever, its private key held
    clock.set(START + restarted.policy.retention)
    await restarted.maintain(db)
    assert restarted.records == ()


async def test_an_hs256_deployment_adding_rs256_publishes_it_before_it_signs(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    secret = secrets.token_urlsafe(48)
    hs_only = Settings(data_dir=tmp_path, signing_algorithms=("HS256",), hs256_secret=secret)
    await fresh_ring(db, master, hs_only, clock)
    async with db.transaction() as session:  # the deployment has issued tokens
        await Repositories(session).clients.add(
            "svc", secret_hash=None, grant_types=["client_credentials"], now=START
        )
    both = Settings(data_dir=tmp_path, signing_algorithms=("RS256", "HS256"), hs256_secret=secret)
    ring = await fresh_ring(db, master, both, clock)
    (first,) = ring.records
    assert first.state is KeyState.NEXT and jwks_kids(ring) == {first.kid}
    assert ring.signer().kid == HS256_KID  # the secret signs meanwhile
    with pytest.raises(RotationTooEarly):
        await ring.rotate(db, "RS256")
    clock.set(START + ring.policy.prepublish)
    await ring.maintain(db)
    assert ring.signer().kid == first.kid
    assert check(ring, issue(ring, clock), clock)["sub"] == "alice"


async def test_replacing_rs256_beside_hs256_never_hands_signing_to_hs256(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    secret = secrets.token_urlsafe(48)
    before = Settings(data_dir=tmp_path, signing_algorithms=("RS256", "HS256"), hs256_secret=secret)
    rs256 = (await fresh_ring(db, master, before, clock)).signer().kid
    assert rs256 != HS256_KID  # a fresh install (no client yet): RS256 signs at once
    after = Settings(data_dir=tmp_path, signing_algorithms=("ES256", "HS256"), hs256_secret=secret)
    ring = await fresh_ring(db, master, after, clock)
    assert ring.signer().kid == rs256  # not the HS256 secret, while ES256 is published
    clock.set(START + ring.policy.prepublish)
    await ring.maintain(db)
    assert ring.signer().alg == "ES256"
    assert {r.kid: r.state for r in ring.records}[rs256] is KeyState.RETIRED


async def test_revoking_the_current_key_unpublishes_it_at_once(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    old_kid = ring.signer().kid
    old_token = issue(ring, clock)
    clock.advance(60)
    await ring.revoke(db, old_kid, actor="admin")
    assert old_kid not in jwks_kids(ring)
    assert old_kid not in ring.verification_keys()
    with pytest.raises(KeyNotFound):
        check(ring, old_token, clock)
    new_kid = ring.signer().kid
    assert new_kid != old_kid and new_kid in jwks_kids(ring)
    assert check(ring, issue(ring, clock), clock)["sub"] == "alice"
    events = await audit_events(db)
    assert (AuditEvent.KEY_REVOKED, old_kid) in events
    assert events[-1] == (AuditEvent.KEY_CREATED, new_kid)
    with pytest.raises(UnknownKey):
        await ring.revoke(db, old_kid)
    # Another instance sees the revocation on its next load.
    other = await KeyRing.load(db, master, settings, clock)
    assert old_kid not in other.verification_keys()


async def test_revoking_the_current_key_promotes_the_published_next_key(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    old_kid = ring.signer().kid
    await ring.rotate(db, "RS256")
    (next_kid,) = jwks_kids(ring) - {old_kid}
    await ring.revoke(db, old_kid)
    assert ring.signer().kid == next_kid
    assert jwks_kids(ring) == {next_kid}


async def test_operator_rotation_waits_for_prepublish_unless_forced(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    first = ring.signer().kid
    await ring.rotate(db, "RS256")
    assert ring.signer().kid == first
    clock.advance(60)
    with pytest.raises(RotationTooEarly):
        await ring.rotate(db, "RS256")
    await ring.rotate(db, "RS256", force=True)
    second = ring.signer().kid
    assert second != first and second in jwks_kids(ring) and first in jwks_kids(ring)
    with pytest.raises(AlgorithmNotConfigured):
        await ring.rotate(db, "ES256")


async def test_restart_signs_with_the_key_published_before(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    clock.set(START + 29 * DAY)
    await ring.maintain(db)  # a next key is published, not yet signing
    before_signer = ring.signer().kid
    before_jwks = ring.jwks()
    token = issue(ring, clock)

    restarted_db = Database.open(sqlite_url(tmp_path))
    try:
        restarted = await KeyRing.load(restarted_db, master, settings, clock)
        assert restarted.signer().kid == before_signer
        assert restarted.jwks() == before_jwks
        assert check(restarted, token, clock)["sub"] == "alice"
        # A start-up maintain before prepublish has passed changes nothing.
        assert await restarted.maintain(restarted_db) == []
        assert restarted.signer().kid == before_signer
        # Once it rotates, the new signer is one the old JWKS already published.
        clock.set(START + 30 * DAY)
        await restarted.maintain(restarted_db)
        assert restarted.signer().kid in {k["kid"] for k in json.loads(before_jwks[0])["keys"]}
    finally:
        await restarted_db.dispose()


async def test_an_algorithm_added_on_restart_signs_only_once_published(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    rs256 = ring.signer().kid
    before = jwks_kids(ring)
    added = Settings(data_dir=tmp_path, signing_algorithms=("ES256", "RS256"))

    restarted = await KeyRing.load(db, master, added, clock)
    await restarted.maintain(db)
    # ES256 comes first now, but its key is new: published, not signing; RS256 signs.
    assert restarted.signer().kid == rs256 and rs256 in before
    es256 = {r.kid for r in restarted.records if r.alg == "ES256"}
    assert len(es256) == 1 and es256 <= jwks_kids(restarted)
    with pytest.raises(NoSigningKey):
        restarted.signer("ES256")
    assert check(restarted, issue(restarted, clock), clock)["sub"] == "alice"

    clock.set(START + settings.key_prepublish - 1)
    assert await restarted.maintain(db) == []
    clock.set(START + settings.key_prepublish)
    await restarted.maintain(db)
    assert restarted.signer().kid in es256  # published for prepublish, now it signs
    assert restarted.signer("RS256").kid == rs256


async def test_an_algorithm_replacing_another_on_restart_signs_only_once_published(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    rs256 = ring.signer().kid
    replaced = Settings(data_dir=tmp_path, signing_algorithms=("ES256",))

    restarted = await KeyRing.load(db, master, replaced, clock)
    await restarted.maintain(db)
    # RS256 is no longer configured, but its key is the only one verifiers know.
    assert restarted.signer().kid == rs256
    [es256] = [r.kid for r in restarted.records if r.alg == "ES256"]
    assert es256 in jwks_kids(restarted)
    clock.set(START + settings.key_prepublish - 1)
    assert await restarted.maintain(db) == []
    clock.set(START + settings.key_prepublish)
    await restarted.maintain(db)
    assert restarted.signer().kid == es256
    states = {r.kid: r.state for r in restarted.records}
    assert states[rs256] is KeyState.RETIRED and rs256 in jwks_kids(restarted)


async def test_a_lowered_token_lifetime_keeps_old_keys_until_their_tokens_expire(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    long = Settings(data_dir=tmp_path, access_token_lifetime=DAY, leeway=60)
    ring = await fresh_ring(db, master, long, clock)
    old = ring.signer().kid
    token = encode_jwt({"sub": "alice"}, ring.signer(), expires_in=DAY, clock=clock)
    clock.set(START + 3600)
    await ring.rotate(db, "RS256", force=True)
    assert ring.signer().kid != old

    # Restarted with 15-minute tokens: retention alone would delete the old key at
    # 3600 + 900 + 60, while the token it signed lives until 86400 (+ leeway).
    short = Settings(data_dir=tmp_path, access_token_lifetime=900, leeway=60)
    restarted = await KeyRing.load(db, master, short, clock)
    assert restarted.policy.keep_until == START + 3600 + DAY + 60
    clock.set(START + 7200)
    await restarted.maintain(db)
    assert old in jwks_kids(restarted)
    assert check(restarted, token, clock)["sub"] == "alice"
    clock.set(START + 3600 + DAY + 60)
    await restarted.maintain(db)
    assert old not in jwks_kids(restarted)
    assert old not in {r.kid for r in restarted.records}


class SlowFirstRead:
    """A database whose next read, once armed, holds its snapshot until released."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.armed = False
        self.inside = anyio.Event()
        self.release = anyio.Event()

    def transaction(self) -> Any:
        return self.db.transaction()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        slow, self.armed = self.armed, False
        async with self.db.read() as session:
            yield session
            if slow:
                self.inside.set()
                await self.release.wait()


async def test_a_reload_that_read_before_a_change_does_not_undo_it(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    first = ring.signer().kid
    slow = SlowFirstRead(db)
    slow.armed = True
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ring.reload, slow)  # the periodic reload, slow after its read
        await slow.inside.wait()
        tasks.start_soon(ring.revoke, slow, first)
        await anyio.sleep(0.1)  # the revocation is committed and waits to reload
        slow.release.set()
    assert ring.signer().kid != first
    assert first not in jwks_kids(ring)


async def test_wrong_master_key_refuses_to_load(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    await fresh_ring(db, master, settings, clock)
    with pytest.raises(SealError):
        await KeyRing.load(db, MasterKey.generate(), settings, clock)


async def test_concurrent_maintain_applies_one_set_of_actions(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    second_db = Database.open(sqlite_url(tmp_path))  # another process's engine
    try:
        rings = [
            await KeyRing.load(db, master, settings, clock),
            await KeyRing.load(second_db, master, settings, clock),
        ]
        results: dict[int, list[Any]] = {}

        async def run(index: int, database: Database) -> None:
            results[index] = await rings[index].maintain(database)

        async with anyio.create_task_group() as group:
            group.start_soon(run, 0, db)
            group.start_soon(run, 1, second_db)
        applied = [r for r in results.values() if r]
        assert len(applied) == 1
        assert applied[0] == [CreateKey("RS256", KeyState.CURRENT)]
        assert len(rings[0].records) == 1
        assert rings[0].signer().kid == rings[1].signer().kid
        assert rings[0].jwks() == rings[1].jwks()
        assert [e for e, _ in await audit_events(db)] == [AuditEvent.KEY_CREATED]
    finally:
        await second_db.dispose()


async def test_private_keys_are_sealed_in_the_database(
    tmp_path: Path, db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = await fresh_ring(db, master, settings, clock)
    await ring.rotate(db, "RS256")
    private = ring.signer().to_dict(private=True)
    pem = ring.signer().to_pem(private=True)
    with sqlite3.connect(tmp_path / "tokensmith.db") as raw:
        rows = raw.execute("SELECT kid, public_jwk, sealed_private FROM signing_keys").fetchall()
    assert len(rows) == 2
    for _, public_jwk, sealed in rows:
        assert not PRIVATE_MEMBERS & set(json.loads(public_jwk))
        blob = bytes(sealed)
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            assert private[member].encode() not in blob
        assert b"PRIVATE KEY" not in blob and pem[40:80] not in blob
        assert b'"d"' not in blob


async def test_signing_keys_protocol_is_met(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring: SigningKeys = await fresh_ring(db, master, settings, clock)
    assert ring.default_alg == "RS256"
    assert ring.signer().kid in ring.verification_keys()


class _CountingRing(KeyRing):
    """Fails its first pass, then stops the loop on its second."""

    calls = 0
    stop: anyio.Event

    async def maintain(self, db: Database, now: int | None = None, **kw: Any) -> list[Any]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database down")
        self.stop.set()
        return await super().maintain(db, now, **kw)


async def test_run_maintenance_survives_a_failure_and_stops_on_the_event(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    ring = _CountingRing(master, settings, clock)
    ring.stop = anyio.Event()
    # interval 0: the loop never waits, so the test does not sleep.
    with anyio.fail_after(30):
        await run_maintenance(ring, db, 0, ring.stop)
    assert ring.calls == 2
    assert ring.signer().alg == "RS256"


async def test_a_revocation_by_another_process_reaches_a_running_ring_within_a_reload(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    served = await fresh_ring(db, master, settings, clock)  # the running server's ring
    compromised = served.signer().kid
    cli = await KeyRing.load(db, master, settings, clock)  # `tokensmith keys revoke`
    await cli.revoke(db, compromised, actor="cli")
    assert served.signer().kid == compromised  # not yet read
    stop = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run_reload, served, db, 0.05, stop)
            while served.signer().kid == compromised:
                await anyio.sleep(0.01)
            stop.set()
    assert compromised not in jwks_kids(served)
    assert served.signer().kid == cli.signer().kid


class _FailingReloads(KeyRing):
    failures = 0

    async def reload(self, db: Database) -> None:
        if self.failures < 5:
            self.failures += 1
            raise RuntimeError("database down")
        await super().reload(db)
        self.stop.set()

    stop: anyio.Event


async def test_run_reload_logs_a_failure_once_and_its_end_once(
    db: Database,
    master: MasterKey,
    settings: Settings,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith.server.services.keyring")
    ring = _FailingReloads(master, settings, clock)
    ring.stop = anyio.Event()
    with anyio.fail_after(10):
        await run_reload(ring, db, 0.01, ring.stop)
    messages = [r.getMessage() for r in caplog.records]
    assert ring.failures == 5
    assert messages.count("reading the key ring failed; serving the last one read") == 1
    assert messages.count("reading the key ring works again") == 1
    with pytest.raises(ValueError):
        await run_reload(ring, db, 0, ring.stop)


class _HeldRing(KeyRing):
    """Holds its pass open until released, to be cancelled half-way."""

    started: anyio.Event
    release: anyio.Event
    finished = False

    async def maintain(self, db: Database, now: int | None = None, **kw: Any) -> list[Any]:
        self.started.set()
        await self.release.wait()
        result = await super().maintain(db, now, **kw)
        self.finished = True
        return result


async def test_cancelled_maintenance_finishes_the_pass_it_is_in(
    db: Database, master: MasterKey, settings: Settings, clock: FixedClock
) -> None:
    # A pass cancelled mid-transaction once left SQLAlchemy an unreturned connection
    # whose close ran as an orphan task and hung the event loop's shutdown.
    ring = _HeldRing(master, settings, clock)
    ring.started, ring.release = anyio.Event(), anyio.Event()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            scope = anyio.CancelScope()

            async def job() -> None:
                with scope:
                    await run_maintenance(ring, db, 3600, anyio.Event())

            group.start_soon(job)
            await ring.started.wait()
            scope.cancel()
            await anyio.sleep(0)
            ring.release.set()
    assert ring.finished
    assert ring.signer().alg == "RS256"


async def test_concurrent_change_reloads_and_returns_nothing(
    db: Database,
    master: MasterKey,
    settings: Settings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a server database under READ COMMITTED reports when another instance won.
    ring = await KeyRing.load(db, master, settings, clock)
    other = await fresh_ring(db, master, settings, clock)

    async def lost_race(*args: Any, **kwargs: Any) -> list[Any]:
        raise ConcurrentChange("another instance rotated first")

    # SQLite serializes writers, so the loss is simulated: the plan always has work and
    # applying it reports that another instance changed the rows first.
    monkeypatch.setattr(KeyRepository, "apply", lost_race)
    monkeypatch.setattr(
        "tokensmith.server.services.keyring_changes.plan",
        lambda records, algs, now, policy, **_: [CreateKey("RS256", KeyState.NEXT)],
    )
    assert await ring.maintain(db) == []
    assert ring.signer().kid == other.signer().kid


async def test_a_failure_midway_leaves_keys_and_audit_unchanged(
    db: Database,
    master: MasterKey,
    settings: Settings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ring = await KeyRing.load(db, master, settings, clock)

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(AuditRepository, "record", broken)
    with pytest.raises(RuntimeError):
        await ring.maintain(db)
    monkeypatch.undo()
    async with db.read() as session:
        assert await KeyRepository(session).list_records() == []
    assert await audit_events(db) == []
    with pytest.raises(NoSigningKey):
        ring.signer()


async def counter_rows(db: Database) -> dict[str, int]:
    async with db.read() as session:
        rows = await session.execute(text("SELECT name, value FROM counters"))
        return {str(name): int(value) for name, value in rows}


async def test_a_ring_loaded_without_recording_reads_the_retention_and_writes_nothing(
    tmp_path: Path, db: Database, master: MasterKey, clock: FixedClock
) -> None:
    long = Settings(data_dir=tmp_path, access_token_lifetime=DAY, leeway=60)
    ring = await fresh_ring(db, master, long, clock)
    old = ring.signer().kid
    clock.set(START + 3600)
    await ring.rotate(db, "RS256", force=True)
    recorded = await counter_rows(db)
    assert recorded["token_retention"] == DAY + 60

    # Settings that are not the deployment's (the CLI without the server's config): a
    # lower lifetime is not noted, yet the keys are kept for the stored one's tokens,
    # as a server would: keep_until is what recording would give.
    short = Settings(data_dir=tmp_path, access_token_lifetime=900, leeway=60)
    clock.set(START + 7200)
    reader = await KeyRing.load(db, master, short, clock, record_retention=False)
    assert reader.policy.keep_until == START + 7200 + DAY + 60
    (retired,) = [r for r in reader.records if r.kid == old]
    assert deletion_time(retired, reader.policy) >= deletion_time(retired, ring.policy)
    higher = Settings(data_dir=tmp_path, access_token_lifetime=DAY, leeway=300)
    raised = await KeyRing.load(db, master, higher, clock, record_retention=False)
    assert raised.policy.keep_until == 0
    assert await counter_rows(db) == recorded
    # Nor does loading plan anything: the caller maintains, or not.
    es256 = Settings(data_dir=tmp_path, signing_algorithms=["ES256"])
    before = await audit_events(db)
    dropped = await KeyRing.load(db, master, es256, clock, record_retention=False)
    assert {r.alg for r in dropped.records} == {"RS256"}
    assert await audit_events(db) == before
    assert await counter_rows(db) == recorded
