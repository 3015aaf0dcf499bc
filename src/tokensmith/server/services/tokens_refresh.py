"""The refresh_token grant (RFC 6749 section 6): rotation, the grace window, reuse detection.

A mixin of ``TokenService``: the methods share its database, key ring, settings, clock and
refresh secret, and sign with its ``_grant``/``_respond``.

Refresh tokens are 256 random bits, stored only as their SHA-256 (``hash_token``), in
families (one per login). Every use rotates: the presented token is marked used (a
conditional update, so of concurrent uses exactly one rotates) and its successor issued.
The successor is ``successor_token(secret, old)`` (HMAC-SHA256), and the access token
issued beside it is fixed by the ``access_jti``/``access_expires_at`` of its row and its
``issued_at``. So presenting the used token again within ``refresh_reuse_grace`` returns
the same pair (two tabs refreshing at once stay logged in) without storing a token in
clear. Later, the reuse means the token leaked: the whole family and the access tokens
issued with it are revoked, and the event is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tokensmith.store import (
    AuditEvent,
    Client,
    ConcurrentChange,
    Database,
    RefreshToken,
    Repositories,
    User,
    hash_token,
)

from .audit_log import audit_address
from .client_rules import check_grant_type, parse_scope
from .keyring import SigningKeys
from .oauth_errors import InvalidGrant, InvalidScope
from .tokens_access import (
    AccessGrant,
    TokenResponse,
    TokenSettings,
    scope_tokens,
    successor_token,
)
from .tokens_revocation import refresh_hash, revoke_family

__all__ = ["RefreshGrantMixin"]

# A lost race is retried once it committed; SQLite serializes writers, so more than one
# retry would mean something else is wrong.
_ROTATION_ATTEMPTS = 3


class _LostRace(Exception):
    """Another request rotated the token between our read and our write: read again."""


@dataclass(frozen=True, slots=True)
class _Rotation:
    grant: AccessGrant
    refresh_token: str


class RefreshGrantMixin:
    db: Database
    keyring: SigningKeys
    settings: TokenSettings
    _refresh_secret: bytes
    _now: Callable[[], int]
    _grant: Callable[[str, Client, tuple[str, ...], int, User | None], AccessGrant]
    _respond: Callable[[AccessGrant, str | None], TokenResponse]
    _audit_issued: Callable[[Repositories, AccessGrant, str, str | None], Awaitable[None]]

    async def refresh_grant(
        self,
        client: Client,
        refresh_token: str,
        scope: str | None,
        *,
        client_address: str | None = None,
    ) -> TokenResponse:
        """RFC 6749 section 6, with rotation, the grace window and reuse detection.

        ``client_address``: the requesting peer, for the ``token_issued`` row and, above
        all, the ``refresh_reuse_detected`` one (where the stolen token was played).
        """
        check_grant_type(client, "refresh_token")
        requested = parse_scope(scope)
        token_hash = refresh_hash(refresh_token)
        if token_hash is None:
            raise InvalidGrant()
        self.keyring.signer()  # NoSigningKey before anything is rotated
        for _ in range(_ROTATION_ATTEMPTS):
            try:
                rotation = await self._rotate(
                    client, refresh_token, token_hash, requested, client_address
                )
            except (_LostRace, ConcurrentChange):
                continue  # the winner has committed: the next read sees its rotation
            if rotation is None:
                raise InvalidGrant()  # reuse: the family was revoked and that committed
            return self._respond(rotation.grant, rotation.refresh_token)
        raise InvalidGrant()

    async def _rotate(
        self,
        client: Client,
        token: str,
        token_hash: str,
        requested: tuple[str, ...] | None,
        address: str | None,
    ) -> _Rotation | None:
        """One attempt in one transaction; None when reuse was detected (and committed)."""
        now = self._now()
        successor = successor_token(self._refresh_secret, token)
        async with self.db.transaction() as session:
            repos = Repositories(session)
            row = await repos.refresh_tokens.get_by_hash(token_hash)
            if row is None or row.client_id != client.client_id or row.revoked_at is not None:
                raise InvalidGrant()
            if row.used_at is not None:
                grace = self.settings.refresh_reuse_grace
                if grace > 0 and now - row.used_at <= grace:  # 0: no grace at all
                    repeat = await self._repeat(repos, row, successor, client, requested, now)
                    if repeat is not None:
                        return repeat
                await self._reuse_detected(repos, row, client, now, address)
                return None
            if row.expired(now):
                raise InvalidGrant()
            user = await self._active_user(repos, row)
            granted = self._narrow(row, client, requested)
            grant = self._grant(str(user.id), client, granted, now, user)
            new = await repos.refresh_tokens.add(
                token_hash=hash_token(successor),
                family_id=row.family_id,
                user_id=row.user_id,
                client_id=row.client_id,
                scope=row.scope,  # section 6: the new refresh token keeps the old scope
                issued_at=now,
                expires_at=now + self.settings.refresh_token_idle_lifetime,
                family_expires_at=row.family_expires_at,
                access_jti=grant.jti,
                access_expires_at=grant.exp,
                access_scope=" ".join(grant.scope),
            )
            if not await repos.refresh_tokens.mark_used(row.id, now, new.id):
                raise _LostRace()  # rolls the successor back
            await self._audit_issued(repos, grant, "refresh_token", address)
        return _Rotation(grant, successor)

    async def _repeat(
        self,
        repos: Repositories,
        row: RefreshToken,
        successor: str,
        client: Client,
        requested: tuple[str, ...] | None,
        now: int,
    ) -> _Rotation | None:
        """The pair the first use of ``row`` returned, if it can be given again."""
        new = await repos.refresh_tokens.get_by_hash(hash_token(successor))
        if (
            new is None
            or new.id != row.replaced_by
            or new.revoked_at is not None
            or new.expired(now)
            or new.access_jti is None
            or new.access_expires_at is None
            or new.access_expires_at <= now
        ):
            # Not reproducible (the secret changed, or the family is gone): not a
            # concurrent twin we can serve, so it counts as reuse.
            return None
        user = await self._active_user(repos, row)
        if new.access_scope is None:  # a row from before revision 0003
            granted = self._narrow(row, client, requested)
        else:
            # The scope the first answer carried: the same jti must never name two
            # different tokens. A twin that asks for another scope is not a twin.
            granted = tuple(scope_tokens(new.access_scope))
            if requested is not None and set(requested) != set(granted):
                raise InvalidGrant()
        subject = str(user.id)
        grant = AccessGrant(
            subject, client, granted, new.issued_at, new.access_expires_at, new.access_jti, user
        )
        return _Rotation(grant, successor)

    async def _reuse_detected(
        self, repos: Repositories, row: RefreshToken, client: Client, now: int, address: str | None
    ) -> None:
        refs = await revoke_family(repos, row, now, self.settings.leeway)
        await repos.audit.record(
            AuditEvent.REFRESH_REUSE_DETECTED,
            at=now,
            actor=client.client_id,
            subject=str(row.user_id),
            client_address=audit_address(address),
            detail={"family_id": row.family_id, "access_tokens_revoked": len(refs)},
        )

    async def _active_user(self, repos: Repositories, row: RefreshToken) -> User:
        user = await repos.users.get(row.user_id)
        if user is None or user.disabled:
            raise InvalidGrant()
        return user

    def _narrow(
        self, row: RefreshToken, client: Client, requested: tuple[str, ...] | None
    ) -> tuple[str, ...]:
        """The access token's scope: at most the login's, and what the client still has."""
        allowed = [s for s in scope_tokens(row.scope) if s in client.scopes]
        if requested is None:
            return tuple(allowed)
        if not set(requested) <= set(allowed):
            raise InvalidScope()
        return requested
