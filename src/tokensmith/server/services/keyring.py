"""The signing key ring in memory: who signs, what verifies, the JWKS document, and rotation.

    ring = await KeyRing.load(db, master, settings, clock)
    await ring.maintain(db)                      # at start, then every interval (run_maintenance)
    token = encode_jwt(claims, ring.signer())    # the current key of default_alg
    body, etag = ring.jwks()                     # rendered once per ring change, not per request

The rows live in the database (``tokensmith.store.KeyRepository``); the lifecycle is
``tokensmith.keys`` (``plan``, ``rotate_now``, ``revoke``); changes (``maintain``,
``rotate``, ``retire``, ``revoke``) are in ``keyring_changes.py``. A ring signs only
with a ``current`` row, which is the first key of a fresh ring or a ``next`` key that was
published for ``prepublish``: a restarted server never signs with a key its JWKS did not
already publish. HS256 signs with the configured secret, which never enters the database
or the JWKS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import anyio

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import TokensmithError
from tokensmith.jose import JWK, JWKSet
from tokensmith.keys import (
    KeyRecord,
    KeyState,
    MasterKey,
    RotationPolicy,
    deletion_time,
    is_published_alg,
    now_seconds,
    published,
    signing_key,
    unseal_jwk,
)
from tokensmith.store import Database, KeyRepository, TokenRetentionRepository

from .keyring_changes import AlgorithmNotConfigured, KeyRingChanges, NotCurrentKey

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

HS256_KID = "hs256"
_UNSEALED = (KeyState.CURRENT, KeyState.NEXT)


class NoSigningKey(TokensmithError):
    """Nothing may sign with that algorithm now (not configured, or the ring has no current key)."""

    code = "no_signing_key"
    description = "No key may sign with that algorithm."


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
    default: JWK | None  # what signs when no algorithm is asked for (KeyRing.signer)
    public: JWKSet  # published asymmetric keys
    hmac: JWKSet  # the configured HS256 secret, if any
    body: bytes
    etag: str
    # The next time a retired or revoked key drops out by itself (its deletion time):
    # the view is rendered again then, even before the row is deleted.
    valid_until: int | None


class KeyRing(KeyRingChanges):
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
        *,
        record_retention: bool = True,
    ) -> KeyRing:
        """The ring as stored. Creates nothing: ``maintain`` gives a fresh ring its first key.

        Notes the configured token lifetime in the database first: after it was lowered,
        retired keys stay published until the tokens signed under the former one expire
        (``RotationPolicy.keep_until``). ``record_retention=False`` (settings that are
        not the deployment's: the CLI's commands other than ``init`` and ``serve``) only
        reads: ``keep_until`` is what recording would give, so a lifetime lower than the
        stored one still keeps keys for the tokens issued under the stored one, and no
        deletion time is earlier than the server's.
        """
        ring = cls(master, settings, clock)
        retention, now = ring._policy.retention, now_seconds(ring._clock)
        if record_retention:
            async with db.transaction() as session:
                keep_until = await TokenRetentionRepository(session).record(retention, now)
        else:
            async with db.read() as session:
                keep_until = await TokenRetentionRepository(session).expire_by(retention, now)
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
        view = self._fresh()
        key = view.default if alg is None else view.signers.get(alg)
        if key is None:
            raise NoSigningKey(f"no key signs {alg or self.default_alg} now")
        return key

    def _default_signer(self, signers: Mapping[str, JWK]) -> JWK | None:
        """``signer()``'s key: the first configured algorithm that signs.

        A dropped ring (``keys.plan`` keeps it signing) stands in for a configured ring
        still being published, ahead of the HS256 secret: replacing RS256 by ES256 beside
        HS256 must not make every token HS256, which JWKS verifiers cannot check.
        """
        dropped = next((key for alg, key in signers.items() if alg not in self._algs), None)
        for configured in self._algs:
            key = signers.get(configured)
            if key is not None:
                return key
            if dropped is not None and is_published_alg(configured):
                return dropped
        return dropped

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
            default=self._default_signer(signers),
            public=public,
            hmac=JWKSet([self._hmac] if self._hmac is not None else []),
            body=body,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            valid_until=min(ends, default=None),
        )
