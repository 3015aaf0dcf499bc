"""The signing key ring in memory: who signs, what verifies, the JWKS document, and rotation.

    ring = await KeyRing.load(db, master, settings, clock)
    await ring.maintain(db)                      # at start, then every interval (run_maintenance)
    token = encode_jwt(claims, ring.signer())    # the current key of default_alg
    body, etag = ring.jwks()                     # rendered once per ring change, not per request

The rows live in the database (``tokensmith.store.KeyRepository``); the lifecycle is
``tokensmith.keys`` (``plan``, ``rotate_now``, ``revoke``). Every change is planned from
the rows inside one transaction, applied there with its audit entries, and followed by a
reload, so two instances never both rotate and nothing is half-written. A ring signs only
with a ``current`` row, which is the first key of a fresh ring or a ``next`` key that was
published for ``prepublish``: a restarted server never signs with a key its JWKS did not
already publish. HS256 signs with the configured secret, which never enters the database
or the JWKS.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import anyio
import anyio.to_thread

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import TokensmithError
from tokensmith.jose import JWK, JWKSet
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
    deletion_time,
    is_published_alg,
    now_seconds,
    plan,
    published,
    revoke,
    rotate_now,
    seal_jwk,
    signing_key,
    unseal_jwk,
)
from tokensmith.store import (
    AuditEvent,
    AuditRepository,
    ConcurrentChange,
    Database,
    KeyRepository,
    NewKey,
    Repositories,
    TokenRetentionRepository,
)

__all__ = [
    "HS256_KID",
    "AlgorithmNotConfigured",
    "KeyRing",
    "KeyRingSettings",
    "NoSigningKey",
    "NotCurrentKey",
    "SigningKeys",
    "key_summary",
]

logger = logging.getLogger(__name__)

HS256_KID = "hs256"
_UNSEALED = (KeyState.CURRENT, KeyState.NEXT)
_EVENTS = {
    CreateKey: AuditEvent.KEY_CREATED,
    Activate: AuditEvent.KEY_ACTIVATED,
    Retire: AuditEvent.KEY_RETIRED,
    Revoke: AuditEvent.KEY_REVOKED,
    Delete: AuditEvent.KEY_DELETED,
}


class NoSigningKey(TokensmithError):
    """Nothing may sign with that algorithm now (not configured, or the ring has no current key)."""

    code = "no_signing_key"
    description = "No key may sign with that algorithm."


class NotCurrentKey(TokensmithError):
    """Retiring a key that does not sign now (only the current key of a ring retires)."""

    code = "not_current_key"
    description = "Only the current key of a ring can be retired."


class AlgorithmNotConfigured(TokensmithError):
    """A rotation asked for a ring the server does not run (HS256 is a configured secret)."""

    code = "algorithm_not_configured"
    description = "The key ring has no rotating keys for that algorithm."


class SigningKeys(Protocol):
    """What token issuing and checking need from the ring."""

    @property
    def default_alg(self) -> str: ...

    def signer(self, alg: str | None = None) -> JWK: ...

    def verification_keys(self, alg: str | None = None) -> JWKSet: ...


class KeyRingSettings(Protocol):
    """What the ring needs from ``tokensmith.server.settings.Settings``."""

    @property
    def signing_algorithms(self) -> Sequence[str]: ...

    def rotation_policy(self) -> RotationPolicy: ...

    def hs256_secret_bytes(self) -> bytes | None: ...


def key_summary(record: KeyRecord, policy: RotationPolicy) -> dict[str, object]:
    """What the CLI's ``--json`` and the admin API show of a key: public metadata only."""
    return {
        "kid": record.kid,
        "alg": record.alg,
        "state": record.state.value,
        "created_at": record.created_at,
        "activated_at": record.activated_at,
        "retired_at": record.retired_at,
        "revoked_at": record.revoked_at,
        "deleted_after": deletion_time(record, policy),
    }


@dataclass(frozen=True, slots=True)
class _View:
    """Everything requests read, rendered from one set of records; swapped whole on change."""

    records: tuple[KeyRecord, ...]
    signers: Mapping[str, JWK]
    public: JWKSet  # published asymmetric keys
    hmac: JWKSet  # the configured HS256 secret, if any
    body: bytes
    etag: str
    # The next time a retired or revoked key drops out by itself (its deletion time):
    # the view is rendered again then, even before the row is deleted.
    valid_until: int | None


class KeyRing:
    """The server's signing keys; implements ``SigningKeys``. Build it with ``KeyRing.load``."""

    def __init__(
        self, master: MasterKey, settings: KeyRingSettings, clock: Clock | None = None
    ) -> None:
        self._master = master
        self._clock: Clock = clock or SystemClock()
        self._algs = tuple(settings.signing_algorithms)
        if not self._algs:
            raise ValueError("at least one signing algorithm is needed")
        # Only asymmetric rings live in the database; HS256 is the configured secret.
        self._rotating = tuple(alg for alg in self._algs if is_published_alg(alg))
        self._policy = settings.rotation_policy()
        secret = settings.hs256_secret_bytes()
        self._hmac: JWK | None = None
        if "HS256" in self._algs:
            if secret is None:
                raise ValueError("HS256 is configured without a secret")
            self._hmac = JWK.from_secret(secret, alg="HS256", kid=HS256_KID)
        self._public: dict[str, JWK] = {}
        self._private: dict[str, JWK] = {}
        self._reloading = anyio.Lock()
        self._view = self._render(())

    @classmethod
    async def load(
        cls,
        db: Database,
        master: MasterKey,
        settings: KeyRingSettings,
        clock: Clock | None = None,
    ) -> KeyRing:
        """The ring as stored. Creates nothing: ``maintain`` gives a fresh ring its first key.

        Notes the configured token lifetime in the database first: after it was lowered,
        retired keys stay published until the tokens signed under the former one expire
        (``RotationPolicy.keep_until``).
        """
        ring = cls(master, settings, clock)
        async with db.transaction() as session:
            keep_until = await TokenRetentionRepository(session).record(
                ring._policy.retention, now_seconds(ring._clock)
            )
        ring._policy = replace(ring._policy, keep_until=keep_until)
        await ring.reload(db)
        return ring

    # -- what requests read ------------------------------------------------------

    @property
    def default_alg(self) -> str:
        return self._algs[0]

    @property
    def policy(self) -> RotationPolicy:
        """The rotation policy in force, ``keep_until`` from the database included."""
        return self._policy

    @property
    def records(self) -> tuple[KeyRecord, ...]:
        return self._fresh().records

    def signer(self, alg: str | None = None) -> JWK:
        """The private key that signs ``alg`` now; ``NoSigningKey`` if none.

        Without ``alg``: the first configured algorithm whose ring signs. An algorithm
        added to a running deployment signs only once its first key has been published
        for the prepublication period; until then the others sign, and when it replaced
        an algorithm no longer configured, that one's ring signs until then.
        """
        signers = self._fresh().signers
        if alg is not None:
            key = signers.get(alg)
            if key is None:
                raise NoSigningKey(f"no key signs {alg} now")
            return key
        for configured in self._algs:
            key = signers.get(configured)
            if key is not None:
                return key
        winding_down = next(iter(signers.values()), None)  # a dropped ring (keys.plan)
        if winding_down is not None:
            return winding_down
        raise NoSigningKey(f"no key signs {self.default_alg} now")

    def verification_keys(self, alg: str | None = None) -> JWKSet:
        """Every key a token of ``alg`` may verify against now.

        HMAC secrets and public keys never share a set (the JOSE core refuses the mix:
        algorithm confusion), so with HS256 beside an asymmetric algorithm the caller
        passes the token's header ``alg`` (checked again by the policy) to pick one.
        """
        view = self._fresh()
        if alg is not None:
            return view.public if is_published_alg(alg) else view.hmac
        if len(view.hmac) and len(view.public):
            raise ValueError("HS256 and public keys are both live: pass the token's alg")
        return view.hmac if len(view.hmac) else view.public

    def jwks(self) -> tuple[bytes, str]:
        """The JWKS document (compact JSON, public members only) and its strong ETag."""
        view = self._fresh()
        return view.body, view.etag

    # -- loading ------------------------------------------------------------------

    async def reload(self, db: Database) -> None:
        """Read the rows again (another instance may have rotated) and swap the view."""
        # One at a time: a reload that read the rows before a change, finishing after
        # the change's own reload, would put the older view back (and drop the new
        # current key's private half).
        async with self._reloading:
            await self._reload(db)

    async def _reload(self, db: Database) -> None:
        async with db.read() as session:
            repo = KeyRepository(session)
            stored = await repo.list_keys()
            wanted = [
                s.record.kid
                for s in stored
                if s.record.state in _UNSEALED and s.record.kid not in self._private
            ]
            blobs = {kid: await repo.load_private(kid) for kid in wanted}
        for kid, blob in blobs.items():
            self._private[kid] = unseal_jwk(self._master, blob, kid)
        records = tuple(s.record for s in stored)
        for item in stored:
            record = item.record
            if item.public_jwk is not None and record.kid not in self._public:
                parsed = JWK.from_dict(item.public_jwk)
                # The row's kid and alg are the truth; the JWK is normalized to them.
                self._public[record.kid] = JWK(
                    parsed.crypto_key(), kid=record.kid, alg=record.alg, use="sig"
                )
        live = {r.kid for r in records}
        unsealed = {r.kid for r in records if r.state in _UNSEALED}
        self._public = {kid: key for kid, key in self._public.items() if kid in live}
        self._private = {kid: key for kid, key in self._private.items() if kid in unsealed}
        if records != self._view.records:
            self._view = self._render(records)

    def _fresh(self) -> _View:
        view = self._view
        if view.valid_until is not None and now_seconds(self._clock) >= view.valid_until:
            view = self._view = self._render(view.records)
        return view

    def _render(self, records: tuple[KeyRecord, ...]) -> _View:
        now = now_seconds(self._clock)
        shown = published(records, now, self._policy)
        public = JWKSet(self._public[r.kid] for r in shown)
        document = {"keys": [key.to_dict() for key in public]}
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")
        signers: dict[str, JWK] = {}
        winding_down = sorted({r.alg for r in records} - set(self._rotating))
        for alg in (*self._rotating, *winding_down):
            record = signing_key(records, alg)
            if record is not None:
                private = self._private[record.kid]
                signers[alg] = JWK(private.crypto_key(), kid=record.kid, alg=alg, use="sig")
        if self._hmac is not None:
            signers["HS256"] = self._hmac
        ends = [t for t in (deletion_time(r, self._policy) for r in shown) if t is not None]
        return _View(
            records=records,
            signers=signers,
            public=public,
            hmac=JWKSet([self._hmac] if self._hmac is not None else []),
            body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            valid_until=min(ends, default=None),
        )

    # -- changes ------------------------------------------------------------------

    async def maintain(
        self, db: Database, now: int | None = None, *, actor: str | None = None
    ) -> list[Action]:
        """The scheduled job: apply ``plan`` if it has anything to do; returns what was applied.

        When another instance changed the ring first, the ring reloads and returns [].
        """
        at = now_seconds(self._clock) if now is None else now
        rotating = self._rotating
        policy = self._policy
        hmac_signs = self._hmac is not None
        hmac_has_signed = await self._hmac_has_signed(db)

        def planner(records: Sequence[KeyRecord]) -> list[Action]:
            return plan(
                records,
                rotating,
                at,
                policy,
                other_signer=hmac_signs,
                hmac_has_signed=hmac_has_signed,
            )

        try:
            return await self._change(db, planner, at, actor, "scheduled")
        except ConcurrentChange:
            logger.info("key ring changed by another instance; reloaded")
            await self.reload(db)
            return []

    async def rotate(
        self, db: Database, alg: str, *, force: bool = False, actor: str | None = None
    ) -> list[Action]:
        """The operator's rotation (``keys.rotate_now``); ``RotationTooEarly`` as there."""
        if alg not in self._rotating:
            raise AlgorithmNotConfigured(f"no rotating {alg} ring is configured")
        at = now_seconds(self._clock)
        policy = self._policy
        reason = "forced_rotation" if force else "rotation"
        hmac_signs = self._hmac is not None
        hmac_has_signed = await self._hmac_has_signed(db)

        def planner(records: Sequence[KeyRecord]) -> list[Action]:
            return rotate_now(
                records,
                alg,
                at,
                policy,
                force=force,
                other_signer=hmac_signs,
                hmac_has_signed=hmac_has_signed,
            )

        return await self._change(db, planner, at, actor, reason)

    async def _hmac_has_signed(self, db: Database) -> bool:
        """Whether the HS256 secret may have issued tokens verifiers hold.

        Every grant needs a client, so with none registered nothing was ever issued:
        that tells a fresh install naming HS256 beside RS256 (RS256 may sign at once)
        from an HS256 deployment adding RS256 (its first key is published first).
        """
        if self._hmac is None:
            return False
        async with db.read() as session:
            return await Repositories(session).clients.any_registered()

    async def retire(self, db: Database, kid: str, *, actor: str | None = None) -> list[Action]:
        """Retire ``kid``, the current key of its ring, now: a forced rotation of that ring.

        It stays published, verifying only, until every token it signed has expired.
        """
        await self.reload(db)
        record = next((r for r in self.records if r.kid == kid), None)
        if record is None:
            raise UnknownKey(f"no live key has the kid {kid!r}")
        if record.state is not KeyState.CURRENT:
            raise NotCurrentKey(f"{kid!r} is not a current key (it is {record.state.value})")
        return await self.rotate(db, record.alg, force=True, actor=actor)

    async def revoke(self, db: Database, kid: str, *, actor: str | None = None) -> list[Action]:
        """Unpublish a compromised key now (``tokensmith.keys.revoke``); ``UnknownKey`` as there."""
        at = now_seconds(self._clock)
        return await self._change(db, lambda records: revoke(records, kid), at, actor, "revocation")

    async def _change(
        self,
        db: Database,
        planner: Callable[[Sequence[KeyRecord]], list[Action]],
        at: int,
        actor: str | None,
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
                await _audit(repos.audit, records, actions, created, at, actor, reason)
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
    reason: str,
) -> None:
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
        await audit.record(_EVENTS[type(action)], at=at, actor=actor, subject=kid, detail=detail)
