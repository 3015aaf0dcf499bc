"""OAuth clients: registration with a secret shown once, and authentication.

Client secrets are 256 random bits (``secrets.token_urlsafe(32)``), so they are stored as a
plain SHA-256 (``sha256$<hex>``): nothing about a random 256-bit value can be guessed from
its hash, and checking it costs microseconds. A password hash (argon2) would add tens of
milliseconds to every token request for no gain. The comparison is constant time.

Every secret check goes through a ``Throttle(kind="client")`` and asks it first: a locked
(client, address) pair is refused with 429 before the secret is looked at, as every other
credential check is (CVE-2026-9798).

``authenticate`` reads client rows through a ``ClientCache`` (``client_cache.py``): a
registered client's row is kept for ``client_cache_ttl`` seconds (the secret is still
compared every time), invalidated here on every change this service makes; a change made
by another process takes up to that long to apply here.

What may be registered, and which grant types and scopes a client may ask for, are
checked by ``client_rules``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tokensmith.clock import Clock, SystemClock
from tokensmith.store import AuditEvent, Client, Database, Repositories, UnknownClient
from tokensmith.store.audit import MAX_DETAIL

from .audit_log import audit_address
from .client_cache import ClientCache
from .client_rules import ClientConfigError, check_registration, checked_audiences
from .oauth_errors import InvalidClient, SlowDown
from .throttle import Throttle

__all__ = ["ClientService", "NewClient", "client_summary", "hash_client_secret"]

_SCHEME = "sha256$"


@dataclass(frozen=True, slots=True)
class NewClient:
    """A registered client and its secret, which is shown this once and never stored."""

    client: Client
    secret: str | None

    def __repr__(self) -> str:
        shown = "None" if self.secret is None else "<hidden>"
        return f"NewClient(client={self.client!r}, secret={shown})"


def client_summary(client: Client) -> dict[str, object]:
    """What the CLI's ``--json`` and the admin API show of a client.

    ``secret_hash`` is left out on purpose: it is not the secret, but nothing needs it.
    """
    return {
        "client_id": client.client_id,
        "public": client.is_public,
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "audiences": list(client.audiences),
        "access_token_lifetime": client.access_token_lifetime,
        "disabled": client.disabled,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }


def hash_client_secret(secret: str) -> str:
    """What is stored for a client secret: ``sha256$`` and the hex digest of its UTF-8."""
    return _SCHEME + hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Compared against when the client is unknown, so that path does the same work.
_DUMMY_HASH = hash_client_secret(secrets.token_urlsafe(32))


def _secret_matches(stored: str, secret: str) -> bool:
    try:
        candidate = hash_client_secret(secret)
    except UnicodeEncodeError:  # a lone surrogate cannot be a secret we issued
        candidate = _DUMMY_HASH + "!"
    return hmac.compare_digest(candidate.encode("ascii"), stored.encode("ascii", "replace"))


class ClientService:
    """Register and authenticate clients. ``throttle`` is a ``Throttle(kind="client")``.

    ``cache`` keeps client rows for ``authenticate`` (``build_services`` passes one with
    ``client_cache_ttl``); without one, every authentication reads the database.
    """

    def __init__(
        self,
        db: Database,
        throttle: Throttle,
        *,
        clock: Clock | None = None,
        cache: ClientCache | None = None,
    ) -> None:
        self.db = db
        self.throttle = throttle
        self.clock: Clock = clock or SystemClock()
        self.cache = cache if cache is not None else ClientCache(ttl=0)

    def _now(self) -> int:
        return int(self.clock.now())

    async def create(
        self,
        client_id: str,
        *,
        confidential: bool = True,
        grant_types: Iterable[str],
        scopes: Iterable[str] = (),
        audiences: Iterable[str] = (),
        access_token_lifetime: int | None = None,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> NewClient:
        """Register a client; a confidential one gets a secret, returned here only."""
        grants = sorted(set(grant_types))
        scope_list = list(scopes)
        check_registration(client_id, confidential, grants, scope_list)
        audiences = checked_audiences(audiences)
        secret = secrets.token_urlsafe(32) if confidential else None
        now = self._now()
        async with self._changing(client_id), self.db.transaction() as session:
            repos = Repositories(session)
            try:
                client = await repos.clients.add(
                    client_id,
                    secret_hash=None if secret is None else hash_client_secret(secret),
                    grant_types=grants,
                    scopes=scope_list,
                    audiences=audiences,
                    access_token_lifetime=access_token_lifetime,
                    now=now,
                )
            except (TypeError, ValueError) as exc:  # the store's own fixed texts
                raise ClientConfigError(str(exc)) from None
            await repos.audit.record(
                AuditEvent.CLIENT_CREATED,
                at=now,
                actor=actor,
                subject=client.client_id,
                client_address=audit_address(client_address),
                detail={"confidential": confidential, "grant_types": grants},
            )
        return NewClient(client, secret)

    async def reset_secret(
        self, client_id: str, *, actor: str | None = None, client_address: str | None = None
    ) -> NewClient:
        """A new secret for a confidential client. The old one stops working at once in this
        process, and within ``client_cache_ttl`` in other processes."""
        secret = secrets.token_urlsafe(32)
        now = self._now()
        async with self._changing(client_id), self.db.transaction() as session:
            repos = Repositories(session)
            current = await repos.clients.get(client_id)
            if current is None:
                raise UnknownClient(f"no client has the id {client_id!r}")
            if current.is_public:
                raise ClientConfigError("Only a confidential client has a secret.")
            client = await repos.clients.update(
                client_id, now=now, secret_hash=hash_client_secret(secret)
            )
            await repos.audit.record(
                AuditEvent.CLIENT_CHANGED,
                at=now,
                actor=actor,
                subject=client_id,
                client_address=audit_address(client_address),
                detail={"change": "secret_reset"},
            )
        return NewClient(client, secret)

    async def list(self) -> list[Client]:
        async with self.db.read() as session:
            return await Repositories(session).clients.list()

    async def get(self, client_id: str) -> Client:
        async with self.db.read() as session:
            client = await Repositories(session).clients.get(client_id)
        if client is None:
            raise UnknownClient(f"no client has the id {client_id!r}")
        return client

    async def set_disabled(
        self,
        client_id: str,
        disabled: bool,
        *,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> Client:
        """Switch a client off (its credentials stop working at once in this process, and
        within ``client_cache_ttl`` in other processes) or on again.

        Tokens already issued to it stay valid until they expire or are revoked.
        """
        now = self._now()
        async with self._changing(client_id), self.db.transaction() as session:
            repos = Repositories(session)
            client = await repos.clients.set_disabled(client_id, disabled, now=now)
            await repos.audit.record(
                AuditEvent.CLIENT_CHANGED,
                at=now,
                actor=actor,
                subject=client_id,
                client_address=audit_address(client_address),
                detail={"change": "disabled" if disabled else "enabled"},
            )
        return client

    async def set_audiences(
        self,
        client_id: str,
        audiences: Iterable[str],
        *,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> Client:
        """Replace the ``aud`` of the tokens issued to the client from now on (none: it is
        issued no token). Tokens issued before keep theirs. Applies at once in this
        process, and within ``client_cache_ttl`` in other processes."""
        wanted = checked_audiences(audiences)
        now = self._now()
        async with self._changing(client_id), self.db.transaction() as session:
            repos = Repositories(session)
            # Locked (PostgreSQL), so two changes at once each audit what the other left.
            current = await repos.clients.get(client_id, for_update=True)
            if current is None:
                raise UnknownClient(f"no client has the id {client_id!r}")
            try:
                client = await repos.clients.update(client_id, now=now, audiences=wanted)
            except (TypeError, ValueError) as exc:  # the store's own fixed texts
                raise ClientConfigError(str(exc)) from None
            await repos.audit.record(
                AuditEvent.CLIENT_CHANGED,
                at=now,
                actor=actor,
                subject=client_id,
                client_address=audit_address(client_address),
                detail=_audience_change(current.audiences, client.audiences),
            )
        return client

    async def authenticate(self, client_id: str, secret: str | None, address: str) -> Client:
        """The client if the credentials are right; ``InvalidClient`` (one answer) otherwise.

        Confidential clients must send their secret; public clients (no stored secret)
        must send none. The throttle is asked before anything is compared; a refusal is
        ``SlowDown`` (429) with the seconds to wait.
        """
        attempt = await self.throttle.begin(client_id, address)
        if not attempt.decision.allowed:
            raise SlowDown(attempt.decision.retry_after)
        try:
            client = await self._load(client_id)
            if client is not None and client.is_public:
                ok = secret is None
            else:
                stored = _DUMMY_HASH if client is None else client.secret_hash
                assert stored is not None
                # The comparison runs for an unknown client too, against a dummy hash.
                matches = _secret_matches(stored, secret if secret is not None else "")
                ok = client is not None and secret is not None and matches
            if not ok:
                await attempt.failed()
                await self._audit_failure(client_id if client is not None else None, address)
                raise InvalidClient()
            assert client is not None
            if client.disabled:
                # The right credentials of a switched-off client: not a guess, not counted.
                raise InvalidClient()
            await attempt.succeeded()
            return client
        finally:
            attempt.release()  # a database failure or a cancellation: no verdict

    async def _load(self, client_id: str) -> Client | None:
        """The client's row, from the cache when fresh; unknown ids are never cached."""
        client = self.cache.get(client_id)
        if client is None:
            ticket = self.cache.ticket()
            async with self.db.read() as session:
                client = await Repositories(session).clients.get(client_id)
            if client is not None:
                self.cache.put(client, ticket)
        return client

    @asynccontextmanager
    async def _changing(self, client_id: str) -> AsyncIterator[None]:
        """Around a change of a client: its cached row is dropped once the change is over
        (committed or not), and rows read while it ran are not stored."""
        try:
            yield
        finally:
            self.cache.invalidate(client_id)

    async def _audit_failure(self, known_client_id: str | None, address: str) -> None:
        async with self.db.transaction() as session:
            await Repositories(session).audit.record(
                AuditEvent.LOGIN_FAILED,
                at=self._now(),
                # A registered client's id is public. An unknown one is left out: it may be
                # a secret sent in the id's place (Basic's parts swapped, a mixed-up form).
                subject=known_client_id,
                client_address=audit_address(address),
                detail={"kind": "client"},
            )


def _audience_change(before: tuple[str, ...], after: tuple[str, ...]) -> dict[str, object]:
    """The audit detail of an audience change: what was added and removed, or only how
    many when the lists would not fit an audit row (a client may hold 100 audiences of
    255 characters; the row's detail is bounded)."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    detail: dict[str, object] = {"change": "audiences", "added": added, "removed": removed}
    if len(json.dumps(detail)) > MAX_DETAIL:
        detail = {"change": "audiences", "added_count": len(added), "removed_count": len(removed)}
    return detail
