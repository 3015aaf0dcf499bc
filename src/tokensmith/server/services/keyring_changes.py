"""Changes to the key ring: the scheduled plan, the operator's rotation, retirement, revocation.

Every change is planned from the rows inside one transaction, applied there with its
audit entries, and followed by a reload, so two instances never both rotate and
nothing is half-written. ``KeyRing`` (keyring.py) inherits these methods; what they
read of it is declared below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import anyio
import anyio.to_thread

from tokensmith.clock import Clock
from tokensmith.errors import TokensmithError
from tokensmith.jose import JWK
from tokensmith.keys import (
    Action,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    KeyState,
    MasterKey,
    Retire,
    Revoke,
    RotationPolicy,
    UnknownKey,
    now_seconds,
    plan,
    revoke,
    rotate_now,
    seal_jwk,
)
from tokensmith.store import (
    AuditEvent,
    AuditRepository,
    ConcurrentChange,
    Database,
    KeyRepository,
    NewKey,
    Repositories,
)

from .audit_log import audit_address

__all__ = ["AlgorithmNotConfigured", "KeyRingChanges", "NotCurrentKey"]

# The key ring's one logger name, whichever half of it logs.
logger = logging.getLogger("tokensmith.server.services.keyring")

_EVENTS = {
    CreateKey: AuditEvent.KEY_CREATED,
    Activate: AuditEvent.KEY_ACTIVATED,
    Retire: AuditEvent.KEY_RETIRED,
    Revoke: AuditEvent.KEY_REVOKED,
    Delete: AuditEvent.KEY_DELETED,
}


class NotCurrentKey(TokensmithError):
    """Retiring a key that does not sign now (only the current key of a ring retires)."""

    code = "not_current_key"
    description = "Only the current key of a ring can be retired."


class AlgorithmNotConfigured(TokensmithError):
    """A rotation asked for a ring the server does not run (HS256 is a configured secret)."""

    code = "algorithm_not_configured"
    description = "The key ring has no rotating keys for that algorithm."


class _OtherSigners(TypedDict):
    other_signer: bool
    hmac_has_signed: bool


class KeyRingChanges:
    """The changing half of ``KeyRing``; see the module docstring."""

    _master: MasterKey
    _clock: Clock
    _rotating: tuple[str, ...]
    _policy: RotationPolicy
    _hmac: JWK | None
    _private: dict[str, JWK]
    _hmac_signed: bool = False  # the HS256 secret may have issued tokens (sticky)

    @property
    def records(self) -> tuple[KeyRecord, ...]:
        raise NotImplementedError

    async def reload(self, db: Database) -> None:
        raise NotImplementedError

    async def maintain(
        self, db: Database, now: int | None = None, *, actor: str | None = None
    ) -> list[Action]:
        """The scheduled job: apply ``plan`` if it has anything to do; returns what was applied.

        When another instance changed the ring first, the ring reloads and returns [].
        """
        at = now_seconds(self._clock) if now is None else now
        rotating, policy = self._rotating, self._policy
        signers = await self._other_signers(db)

        def planner(records: Sequence[KeyRecord]) -> list[Action]:
            return plan(records, rotating, at, policy, **signers)

        try:
            return await self._change(db, planner, at, actor, None, "scheduled")
        except ConcurrentChange:
            logger.info("key ring changed by another instance; reloaded")
            await self.reload(db)
            return []

    async def rotate(
        self,
        db: Database,
        alg: str,
        *,
        force: bool = False,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> list[Action]:
        """The operator's rotation (``keys.rotate_now``); ``RotationTooEarly`` as there.

        ``client_address``: the admin API request's peer, written on the audit rows.
        """
        if alg not in self._rotating:
            raise AlgorithmNotConfigured(f"no rotating {alg} ring is configured")
        at = now_seconds(self._clock)
        policy = self._policy
        reason = "forced_rotation" if force else "rotation"
        signers = await self._other_signers(db)

        def planner(records: Sequence[KeyRecord]) -> list[Action]:
            return rotate_now(records, alg, at, policy, force=force, **signers)

        return await self._change(db, planner, at, actor, client_address, reason)

    async def _other_signers(self, db: Database) -> _OtherSigners:
        """What signs beside the rings, for ``plan`` and ``rotate_now``.

        Clients are never deleted, so once one is registered the answer stays yes: the
        database is asked until then, not on every maintenance run.
        """
        if self._hmac is not None and not self._hmac_signed:
            self._hmac_signed = await self._hmac_has_signed(db)
        return _OtherSigners(other_signer=self._hmac is not None, hmac_has_signed=self._hmac_signed)

    async def _hmac_has_signed(self, db: Database) -> bool:
        """Whether the configured HS256 secret may have issued tokens verifiers hold.

        Every grant needs a client, so with none registered nothing was ever issued:
        that tells a fresh install naming HS256 beside RS256 (RS256 may sign at once)
        from an HS256 deployment adding RS256 (its first key is published first).
        """
        async with db.read() as session:
            return await Repositories(session).clients.any_registered()

    async def retire(
        self,
        db: Database,
        kid: str,
        *,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> list[Action]:
        """Retire ``kid``, the current key of its ring, now: a forced rotation of that ring.

        It stays published, verifying only, until every token it signed has expired.
        """
        await self.reload(db)
        record = next((r for r in self.records if r.kid == kid), None)
        if record is None:
            raise UnknownKey(f"no live key has the kid {kid!r}")
        if record.state is not KeyState.CURRENT:
            raise NotCurrentKey(f"{kid!r} is not a current key (it is {record.state.value})")
        return await self.rotate(
            db, record.alg, force=True, actor=actor, client_address=client_address
        )

    async def revoke(
        self,
        db: Database,
        kid: str,
        *,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> list[Action]:
        """Unpublish a compromised key now (``tokensmith.keys.revoke``); ``UnknownKey`` as there."""
        at = now_seconds(self._clock)
        return await self._change(
            db, lambda records: revoke(records, kid), at, actor, client_address, "revocation"
        )

    async def _change(
        self,
        db: Database,
        planner: Callable[[Sequence[KeyRecord]], list[Action]],
        at: int,
        actor: str | None,
        address: str | None,
        reason: str,
    ) -> list[Action]:
        # Plan from a snapshot first, to generate keys (RSA: tens of ms) before the
        # transaction: on SQLite it holds the database's one write lock.
        async with db.read() as session:
            preview = planner(await KeyRepository(session).list_records())
        if not preview:
            await self.reload(db)
            return []
        pool: dict[str, list[JWK]] = {}
        for action in preview:
            if isinstance(action, CreateKey):
                pool.setdefault(action.alg, []).append(await _generate(action.alg))
        made: dict[str, JWK] = {}

        async def make_key(alg: str) -> NewKey:
            spare = pool.get(alg)
            key = spare.pop() if spare else await _generate(alg)
            made[key.kid] = key
            return NewKey(key.kid, key.public().to_dict(), seal_jwk(self._master, key))

        async with db.transaction() as session:
            repos = Repositories(session)
            records = await repos.keys.list_records()
            # The plan that counts is made from the rows under the write lock.
            actions = planner(records)
            if actions:
                created = await repos.keys.apply(actions, at, make_key)
                await _audit(repos.audit, records, actions, created, at, actor, address, reason)
        self._private.update(made)
        await self.reload(db)
        return actions


async def _generate(alg: str) -> JWK:
    return await anyio.to_thread.run_sync(JWK.generate, alg)


async def _audit(
    audit: AuditRepository,
    records: Sequence[KeyRecord],
    actions: Sequence[Action],
    created: Sequence[KeyRecord],
    at: int,
    actor: str | None,
    address: str | None,
    reason: str,
) -> None:
    client_address = audit_address(address)
    alg_of = {r.kid: r.alg for r in records}
    new = iter(created)
    for action in actions:
        detail: dict[str, Any] = {"reason": reason}
        if isinstance(action, CreateKey):
            record = next(new)
            kid = record.kid
            detail.update(alg=record.alg, state=record.state.value)
        else:
            kid = action.kid
            detail["alg"] = alg_of[kid]
        await audit.record(
            _EVENTS[type(action)],
            at=at,
            actor=actor,
            subject=kid,
            client_address=client_address,
            detail=detail,
        )
